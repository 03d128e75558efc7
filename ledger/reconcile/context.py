"""What every step is given: the database, the options, the provider lookup, and the lease
helpers that write a step's outcome (each a short transaction of its own, never held open across
a provider call)."""

from __future__ import annotations

import contextlib
import logging
import random
import threading
from collections.abc import Callable
from enum import Enum
from typing import Any

from sqlalchemy.engine import Engine, Row

from adapters.base import BatchProvider
from ledger.core.states import State
from ledger.core.store import Lease, StaleWrite, release, update_leased
from ledger.reconcile.group_commit import GroupCommit
from ledger.reconcile.options import ReconcileOptions
from ledger.reconcile.progress import DeferredProgress
from ledger.spend import Budget

#: The budget of a reconciler given none: no caps but those recorded in the ledger.
_NO_BUDGET = Budget()

log = logging.getLogger("ledger.reconcile")


class StepOutcome(Enum):
    """What the engine does with a job once one of its steps returns."""

    CONTINUE = "continue"  # the job moved on; take its next step now
    DONE = "done"  # the job is released and scheduled


class StepContext:
    """Shared by every step of one reconciler, across its worker threads."""

    def __init__(
        self,
        engine: Engine,
        options: ReconcileOptions,
        provider_for: Callable[[str, str | None], BatchProvider],
        on_transition: Callable[[int, State, State], None] | None = None,
    ) -> None:
        self.engine = engine
        self.options = options
        #: Unchanged polls, written together (flushed by the engine at the end of each pass).
        self.deferred = DeferredProgress(engine)
        #: The guarded advances of the worker threads, committed in groups.
        self.group_commit = GroupCommit(engine)
        self._provider_for = provider_for
        self._providers: dict[tuple[str, str | None], BatchProvider] = {}
        self._providers_lock = threading.Lock()
        self._on_transition = on_transition
        self._transitions = 0
        self._count_lock = threading.Lock()

    @property
    def transitions(self) -> int:
        """Transitions recorded so far by every step."""
        return self._transitions

    def budget(self) -> Budget:
        """ledger.toml's budget as it is now (re-read when the file changed)."""
        if self.options.budget is None:
            return _NO_BUDGET
        return self.options.budget.current()

    def provider(self, job: Row[Any]) -> BatchProvider:
        """The job's provider at its recorded base URL (or the options' for a job not yet sent);
        one adapter per (provider, base URL), shared by the threads."""
        base_url = job.base_url or self.options.base_url
        key = (job.provider, base_url)
        with self._providers_lock:
            if key not in self._providers:
                self._providers[key] = self._provider_for(job.provider, base_url)
            return self._providers[key]

    # -- writing a step's outcome -----------------------------------------------------------

    def advance(
        self,
        lease: Lease,
        from_state: State,
        to_state: State,
        *,
        detail: dict[str, Any] | None = None,
        **fields: Any,
    ) -> None:
        """One guarded transition, committed (with those other threads ask for at the same
        time: `ledger.reconcile.group_commit`) before this returns; counted."""
        self.group_commit.advance(lease, from_state, to_state, detail=detail, **fields)
        self.count(lease.job_id, from_state, to_state)

    def fail(self, lease: Lease, from_state: State, reason: str) -> None:
        """Move the job to `failed` with `reason` on record."""
        log.error("job %s: %s", lease.job_id, reason)
        self.advance(lease, from_state, State.FAILED, detail={"error": reason}, last_error=reason)

    def count(self, job_id: int, from_state: State, to_state: State) -> None:
        """Note a transition already written (log it, tell the on_transition callback)."""
        with self._count_lock:
            self._transitions += 1
        log.info("job %s: %s -> %s", job_id, from_state, to_state)
        if self._on_transition is not None:
            self._on_transition(job_id, from_state, to_state)

    def record_problem(
        self,
        lease: Lease,
        message: str,
        retry_in: float | None,
        *,
        quiet: bool = False,
        **fields: Any,
    ) -> None:
        """Keep `message` on the job, give the lease back, and check again in `retry_in` seconds
        (None: the scheduled check stays as it is). A lease already lost is no error here."""
        (log.debug if quiet else log.warning)("job %s: %s", lease.job_id, message)
        with contextlib.suppress(StaleWrite), self.engine.begin() as connection:
            update_leased(
                connection,
                lease,
                last_error=message[:2000],
                release_lease=True,
                next_check_in=retry_in,
                **fields,
            )

    def release(self, lease: Lease, next_check_in: float | None = None) -> None:
        """Give the lease back, the job due again in `next_check_in` seconds (None: unchanged)."""
        with self.engine.begin() as connection:
            release(connection, lease, next_check_in=next_check_in)

    # -- scheduling -------------------------------------------------------------------------

    def next_interval(self, job: Row[Any]) -> float:
        """The job's polling interval after one more unchanged answer (the backoff)."""
        current = job.poll_interval or self.options.poll_min
        return min(
            max(current * self.options.poll_factor, self.options.poll_min), self.options.poll_max
        )

    def jittered(self, seconds: float) -> float:
        """`seconds` spread by the jitter option, so checks of many jobs do not bunch up."""
        spread = self.options.jitter
        return seconds * random.uniform(1 - spread, 1 + spread) if spread else seconds
