"""A heartbeat that renews a pass's leases while its steps run.

A lease must outlive the step holding it, or another reconciler takes the job over and repeats
a side effect still in flight. A fixed lease cannot promise that (an upload of a large shard on a
slow link can outlast any default), so while a pass runs a background thread extends every lease
it still holds every `lease_seconds / 3`: two renewals can fail in a row before one lapses. The
renewal is guarded by owner, fence and expiry (`ledger.core.store.renew_leases`), so a lease given
back or taken over is never extended; the thread stops when the pass ends.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from types import TracebackType

from sqlalchemy.engine import Engine

from ledger.core.store import Lease, renew_leases

log = logging.getLogger("ledger.reconcile")


class LeaseHeartbeat:
    """`with LeaseHeartbeat(engine, leases, lease_seconds):` renews the leases until the block
    ends."""

    def __init__(self, engine: Engine, leases: Sequence[Lease], lease_seconds: float) -> None:
        self._engine = engine
        self._leases = list(leases)
        self._lease_seconds = lease_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ledger-heartbeat", daemon=True)
        #: How many renewals have been written (for tests and logs).
        self.beats = 0

    def __enter__(self) -> LeaseHeartbeat:
        if self._leases:
            self._thread.start()
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._lease_seconds / 3):
            try:
                with self._engine.begin() as connection:
                    renewed = renew_leases(connection, self._leases, self._lease_seconds)
            except Exception as error:  # a missed beat is survivable: the next one may land
                log.warning("lease heartbeat failed: %s", str(error).splitlines()[0])
                continue
            self.beats += 1
            if not renewed:
                return  # every lease was given back or lost: nothing left to keep
