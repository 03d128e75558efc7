"""The group commit of unchanged polls.

Most polls change nothing but the next check time. Committing each alone would cost a disk sync
per poll (measured: most of a pass); sharing commits costs nothing in safety, since a write lost to
a crash only means the job is polled again.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Double, bindparam, update
from sqlalchemy.engine import Engine

from ledger.core.db import db_now
from ledger.core.models import Job
from ledger.core.store import Lease

log = logging.getLogger("ledger.reconcile")

#: Unchanged-poll writes committed together.
DEFERRED_BATCH = 200


class DeferredProgress:
    """Same-state progress writes queued from many threads, flushed in shared commits."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._queued: list[tuple[Lease, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def add(self, lease: Lease, **fields: Any) -> None:
        """Queue a same-state progress write (the lease is given back when it is written)."""
        with self._lock:
            self._queued.append((lease, fields))
            full = len(self._queued) >= DEFERRED_BATCH
        if full:
            self.flush()

    def flush(self) -> None:
        """Write every queued update, each its own guarded update, in one transaction."""
        with self._lock:
            batch, self._queued = self._queued, []
        if not batch:
            return
        by_fields: dict[tuple[str, ...], list[tuple[Lease, dict[str, Any]]]] = defaultdict(list)
        for lease, fields in batch:
            by_fields[tuple(sorted(fields))].append((lease, fields))
        with self._engine.begin() as connection:
            for keys, group in by_fields.items():
                # One executemany per shape: guarded like update_leased, one round trip.
                written = connection.execute(
                    deferred_progress_update(keys),
                    [
                        {"_id": lease.job_id, "_fence": lease.fence, **fields}
                        for lease, fields in group
                    ],
                ).rowcount
                if written != len(group):
                    log.warning(
                        "%d job(s) lost their lease before their progress was saved",
                        len(group) - written,
                    )


def deferred_progress_update(keys: Sequence[str]) -> Any:
    """The guarded same-state UPDATE for executemany: fields by name, `next_check_in` as a
    delay on the database clock; the lease is given back."""
    values: dict[str, Any] = {k: bindparam(k) for k in keys if k != "next_check_in"}
    if "next_check_in" in keys:
        values["next_check_at"] = db_now() + bindparam("next_check_in", type_=Double())
    values.update(updated_at=db_now(), lease_owner=None, lease_expires_at=None)
    return (
        update(Job)
        .where(
            Job.id == bindparam("_id"),
            Job.fence == bindparam("_fence"),
            Job.lease_expires_at > db_now(),
        )
        .values(values)
    )
