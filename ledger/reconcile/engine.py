"""The reconciler: moves jobs from `built` to `normalized` through a provider, one recorded step
at a time, so that a crash at any instant resumes with no duplicate batch and no lost result.

Each pass claims the due jobs (a lease and a fresh fence each), then drives every job through as
many steps as it can take right now, many jobs at once on a thread pool. The `STEPS` table says
which step a state takes; each step lives in `ledger.reconcile.steps`. A step never holds a
database transaction across a provider call: it records its intent, calls the provider, then
writes the outcome with the guarded `advance`.

Exactly one batch per job, even across crashes and retries: upload and create go through
`ledger.reconcile.adopt.adopt_or_act`, which records a submit token before the side effect and,
finding one already recorded, first looks for the object carrying it and adopts it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine, Row
from sqlalchemy.exc import OperationalError

from adapters import get_provider
from adapters.base import (
    BatchProvider,
    FatalError,
    NotFound,
    OutcomeUnknown,
    ProviderError,
    QuotaExhausted,
    Rejected,
    TransientError,
)
from ledger import settings
from ledger.artifacts import ArtifactError
from ledger.core.db import read_db_now
from ledger.core.models import Job, Run
from ledger.core.owner import process_owner
from ledger.core.states import TRANSITIONS, State
from ledger.core.store import Lease, StaleWrite, claim, expire_dead_local_leases
from ledger.errors import InputError, LedgerError, StorageError
from ledger.reconcile.context import StepContext, StepOutcome
from ledger.reconcile.heartbeat import LeaseHeartbeat
from ledger.reconcile.options import ACTIVE_STATES, ReconcileOptions
from ledger.reconcile.progress import deferred_progress_update
from ledger.reconcile.steps.create import create, pause_for_quota
from ledger.reconcile.steps.download import download
from ledger.reconcile.steps.normalize import normalize
from ledger.reconcile.steps.poll import poll
from ledger.reconcile.steps.upload import upload

log = logging.getLogger("ledger.reconcile")

#: A step: take the job one recorded move further, say whether it can go on now.
Step = Callable[[StepContext, Lease, Row[Any]], StepOutcome]

#: The step each active state takes (exactly the states of ACTIVE_STATES; a test checks it).
STEPS: dict[State, Step] = {
    State.BUILT: upload,
    State.UPLOADED: create,
    State.SUBMITTED: poll,
    State.IN_PROGRESS: poll,
    State.COMPLETED: download,
    State.FAILED: download,
    State.EXPIRED: download,
    State.CANCELLED: download,
    State.DOWNLOADED: normalize,
}


@dataclass
class PassReport:
    """What one pass did."""

    claimed: int = 0
    transitions: int = 0
    errors: list[str] = field(default_factory=list)
    paused: str | None = None


class PauseLoop(ProviderError):
    """The provider refused the credentials or the account: nothing can proceed."""


class Reconciler:
    """Steps the ledger's due jobs through their provider."""

    def __init__(
        self,
        engine: Engine,
        options: ReconcileOptions | None = None,
        *,
        provider_for: Callable[[str, str | None], BatchProvider] = get_provider,
        owner: str | None = None,
        on_transition: Callable[[int, State, State], None] | None = None,
    ) -> None:
        self.engine = engine
        self.options = options or ReconcileOptions()
        self.owner = owner or process_owner()
        self.stop_requested = threading.Event()
        self._context = StepContext(engine, self.options, provider_for, on_transition)
        self._pause_reason: str | None = None
        #: Jobs waiting because an artifact they need is unreachable or damaged: the reason.
        self._artifact_waits: dict[int, str] = {}
        self._run_id = self._resolve_run(self.options.run_name)

    # -- passes -----------------------------------------------------------------------------

    def run_pass(self) -> PassReport:
        """Claim every due job and drive each as far as it can go now."""
        report = PassReport()
        self._pause_reason = None
        with self.engine.begin() as connection:
            for owner in expire_dead_local_leases(connection):
                log.info("took over the leases of %s (process gone)", owner)
            leases = claim(
                connection,
                self.owner,
                states=self.options.states,
                limit=self.options.claim_limit,
                lease_seconds=self.options.lease_seconds,
                run_id=self._run_id,
            )
        report.claimed = len(leases)
        before = self._context.transitions
        if leases:
            workers = max(1, min(self.options.concurrency, len(leases)))
            # While the steps run, their leases are renewed: a slow step never loses its lease.
            heartbeat = LeaseHeartbeat(self.engine, leases, self.options.lease_seconds)
            try:
                with (
                    heartbeat,
                    ThreadPoolExecutor(workers, thread_name_prefix="ledger-step") as pool,
                ):
                    rows = self._load_many([lease.job_id for lease in leases])
                    firsts = [rows[lease.job_id] for lease in leases]
                    for error in pool.map(self._drive_safely, leases, firsts):
                        if error:
                            report.errors.append(error)
            finally:
                self._context.deferred.flush()
        report.transitions = self._context.transitions - before
        report.paused = self._pause_reason
        return report

    def run_loop(
        self,
        *,
        interval: float = settings.default("interval"),
        until_done: bool = False,
        on_pass: Callable[[PassReport], None] | None = None,
    ) -> None:
        """Run passes until stopped (or, with until_done, until no job is left to step)."""
        while not self.stop_requested.is_set():
            try:
                report = self.run_pass()
            except OperationalError as error:
                if not database_locked(error):
                    raise
                # Another process held SQLite's write lock past the busy timeout: nothing was
                # written, the leases this pass took (if any) lapse; try the whole pass later.
                log.warning("database is locked by another process; next pass in %.1f s", interval)
                self.stop_requested.wait(max(interval, 0.01))
                continue
            if on_pass is not None:
                on_pass(report)
            if report.paused:
                raise PauseLoop(report.paused)
            if until_done and self.pending_jobs() == 0:
                return
            if until_done:
                self._raise_if_only_artifact_waits()
            wait = interval if report.claimed == 0 else min(interval, self.seconds_to_next_due())
            self.stop_requested.wait(max(wait, 0.01))

    def pending_jobs(self) -> int:
        """Jobs of this reconciler's scope that still have a step to take (a held job has none
        until it is released, so `--until-done` does not wait for a dry run)."""
        query = (
            select(func.count())
            .select_from(Job)
            .where(Job.state.in_(self.options.states), Job.held_reason.is_(None))
        )
        if self._run_id is not None:
            query = query.where(Job.run_id == self._run_id)
        with self.engine.connect() as connection:
            return int(connection.execute(query).scalar_one())

    def _raise_if_only_artifact_waits(self) -> None:
        """End --until-done with an ArtifactError naming the jobs when every job left waits for
        an artifact it cannot have: no pass would move them, so looping would never end."""
        query = select(Job.id).where(Job.state.in_(self.options.states))
        if self._run_id is not None:
            query = query.where(Job.run_id == self._run_id)
        with self.engine.connect() as connection:
            left = set(connection.execute(query).scalars())
        waits = {job_id: why for job_id, why in self._artifact_waits.items() if job_id in left}
        if left and set(waits) == left:
            named = "; ".join(f"job {job_id}: {why}" for job_id, why in sorted(waits.items()))
            raise ArtifactError(f"{len(waits)} job(s) wait for an artifact: {named}")

    def seconds_to_next_due(self) -> float:
        """Seconds until the earliest scheduled check of a pending job (0 when one is due)."""
        query = select(func.min(Job.next_check_at)).where(
            Job.state.in_(self.options.states), Job.held_reason.is_(None)
        )
        if self._run_id is not None:
            query = query.where(Job.run_id == self._run_id)
        with self.engine.connect() as connection:
            earliest = connection.execute(query).scalar()
            now = read_db_now(connection)
        return 0.0 if earliest is None else max(0.0, float(earliest) - now)

    # -- one job ----------------------------------------------------------------------------

    def _drive_safely(self, lease: Lease, first: Row[Any] | None = None) -> str | None:
        try:
            self._drive(lease, first)
        except StaleWrite as error:
            log.warning("job %s: lost its lease (%s)", lease.job_id, error)
            return str(error)
        except Exception as error:  # one job's bug must not stop the others; it is recorded
            if isinstance(error, OperationalError) and database_locked(error):
                # Not the job's problem (and no bug): its lease lapses, a later pass resumes it.
                log.warning("job %s: database is locked by another process", lease.job_id)
                return f"job {lease.job_id}: database is locked"
            log.exception("job %s: unexpected error", lease.job_id)
            self._context.record_problem(
                lease, f"unexpected error: {error!r}", self.options.poll_max
            )
            return f"job {lease.job_id}: {error!r}"
        return None

    def _drive(self, lease: Lease, first: Row[Any] | None = None) -> None:
        """Take the job's steps until one says DONE, the job leaves this reconciler's states, or
        a provider error decides what happens next (the mapping below)."""
        context = self._context
        claimed_row = first
        while True:
            # The row as claimed serves the first step; later steps read what the last wrote.
            job = claimed_row if claimed_row is not None else self._load(lease.job_id)
            claimed_row = None
            state = State(job.state)
            step = STEPS.get(state)
            if (
                step is None
                or state not in self.options.states
                or self.stop_requested.is_set()
                or self._pause_reason
            ):
                context.release(lease)
                return
            try:
                outcome = step(context, lease, job)
                self._artifact_waits.pop(lease.job_id, None)
                if outcome is StepOutcome.DONE:
                    return
            except QuotaExhausted as error:
                pause_for_quota(context, lease, job, str(error))
                return
            except FatalError as error:
                self._pause_reason = str(error)
                context.record_problem(lease, str(error), None)
                return
            except TransientError as error:
                delay = error.retry_after or context.next_interval(job)
                context.record_problem(lease, str(error), delay, poll_interval=delay)
                return
            except (Rejected, NotFound) as error:
                if State.FAILED in TRANSITIONS[state]:
                    context.fail(lease, state, f"provider refused: {error}")
                    continue
                # For example a result file the provider already deleted: nothing to retry
                # soon, recorded for a person to look at.
                context.record_problem(lease, f"provider refused: {error}", self.options.poll_max)
                return
            except StorageError:
                # A lost lease or a forbidden move is not the job's problem: _drive_safely's.
                raise
            except LedgerError as error:
                # A problem in the ledger's own files (say, a shard edited after the build):
                # kept on the job for a person to look at, retried now and then.
                if isinstance(error, ArtifactError):
                    self._artifact_waits[lease.job_id] = str(error)
                context.record_problem(lease, str(error), self.options.poll_max)
                return

    # -- reading jobs -----------------------------------------------------------------------

    def _load_many(self, job_ids: list[int]) -> dict[int, Row[Any]]:
        rows: dict[int, Row[Any]] = {}
        with self.engine.connect() as connection:
            for start in range(0, len(job_ids), 500):
                chunk = job_ids[start : start + 500]
                query = select(Job.__table__).where(Job.id.in_(chunk))
                rows.update((row.id, row) for row in connection.execute(query))
        return rows

    def _load(self, job_id: int) -> Row[Any]:
        with self.engine.connect() as connection:
            return connection.execute(select(Job.__table__).where(Job.id == job_id)).one()

    def _resolve_run(self, run_name: str | None) -> int | None:
        if run_name is None:
            return None
        with self.engine.connect() as connection:
            run_id = connection.execute(select(Run.id).where(Run.name == run_name)).scalar()
        if run_id is None:
            raise InputError(f"no run named {run_name!r}")
        return int(run_id)


def database_locked(error: OperationalError) -> bool:
    """Whether SQLite gave up waiting for another process's write lock (the busy timeout)."""
    return "database is locked" in str(error.orig)


__all__ = [
    "ACTIVE_STATES",
    "STEPS",
    "OutcomeUnknown",
    "PassReport",
    "PauseLoop",
    "ReconcileOptions",
    "Reconciler",
    "deferred_progress_update",
]
