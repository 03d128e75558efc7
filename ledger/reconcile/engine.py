"""The reconciler: moves jobs from `built` to `normalized` through a provider, one recorded step
at a time, so that a crash at any instant resumes with no duplicate batch and no lost result.

Each pass claims the due jobs (a lease and a fresh fence each), then drives every job through as
many steps as it can take right now, many jobs at once on a thread pool. A step never holds a
database transaction across a provider call: it records its intent, calls the provider, then
writes the outcome with the guarded `advance`.

Exactly one batch per job, even across crashes and retries:
- before a side effect the job's `submit_token` is recorded; the upload's file name and the
  batch's metadata carry it;
- a step that finds a token already recorded does not repeat the side effect blindly: it first
  looks for the object carrying that token and adopts it (deleting or cancelling duplicates).
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import Enum
from hashlib import sha256
from pathlib import Path
from typing import Any

from sqlalchemy import Double, bindparam, func, select, text, update
from sqlalchemy.engine import Connection, Engine, Row

from adapters import get_provider
from adapters.base import (
    BatchProvider,
    BatchSnapshot,
    FatalError,
    NotFound,
    OutcomeUnknown,
    ProviderError,
    Rejected,
    TransientError,
)
from ledger.core.crashpoints import crash_point
from ledger.core.db import db_now, read_db_now
from ledger.core.models import Job, Run
from ledger.core.states import IN_FLIGHT, TRANSITIONS, State
from ledger.core.store import (
    DEFAULT_LEASE_SECONDS,
    Lease,
    StaleWrite,
    advance,
    claim,
    expire_dead_local_leases,
    process_owner,
    release,
    update_leased,
)
from ledger.errors import InputError, LedgerError, StorageError
from ledger.reconcile.downloads import CorruptDownload, UnsafeArchive, finish_download

log = logging.getLogger("ledger.reconcile")

#: States the reconciler has a step for.
ACTIVE_STATES: tuple[State, ...] = (
    State.BUILT,
    State.UPLOADED,
    State.SUBMITTED,
    State.IN_PROGRESS,
    State.COMPLETED,
    State.FAILED,
    State.EXPIRED,
    State.CANCELLED,
    State.DOWNLOADED,
)

#: Unchanged-poll writes committed together (see Reconciler._defer_progress).
DEFERRED_BATCH = 200

#: How far back (seconds) to look for a batch created before a crash, beyond the recorded
#: intent time: the provider's clock and the database's may disagree.
CLOCK_SKEW_MARGIN = 900


@dataclass
class ReconcileOptions:
    """Every knob of `ledger reconcile` (documented in docs/reconcile.md)."""

    run_name: str | None = None
    #: Base URL for jobs that have none recorded yet (default: the adapter's, or $OPENAI_BASE_URL).
    base_url: str | None = None
    #: Polling backoff: the first check after create waits poll_min, each unchanged answer
    #: multiplies the wait by poll_factor, up to poll_max; jitter spreads checks apart.
    poll_min: float = 10.0
    poll_max: float = 120.0
    poll_factor: float = 1.5
    jitter: float = 0.1
    #: How many jobs one process steps at once (provider calls run in parallel).
    concurrency: int = 16
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    #: Hold jobs back so that the estimated prompt tokens in flight per model stay under this.
    max_enqueued_tokens: int | None = None
    #: A batch not found right after create is looked for again within this window.
    not_found_grace: float = 600.0
    #: Only these states are stepped (`ledger submit` uses upload and create only).
    states: Sequence[State] = ACTIVE_STATES
    #: Largest number of jobs one pass claims.
    claim_limit: int = 10_000


class Outcome(Enum):
    CONTINUE = "continue"  # the job moved on; take its next step now
    DONE = "done"  # the job is released and scheduled


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
        self._provider_for = provider_for
        self._providers: dict[tuple[str, str | None], BatchProvider] = {}
        self._providers_lock = threading.Lock()
        self._pause_reason: str | None = None
        self._transitions = 0
        self._count_lock = threading.Lock()
        self._on_transition = on_transition
        self._deferred: list[tuple[Lease, dict[str, Any]]] = []
        self._deferred_lock = threading.Lock()
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
        before = self._transitions
        if leases:
            workers = max(1, min(self.options.concurrency, len(leases)))
            try:
                with ThreadPoolExecutor(workers, thread_name_prefix="ledger-step") as pool:
                    rows = self._load_many([lease.job_id for lease in leases])
                    firsts = [rows[lease.job_id] for lease in leases]
                    for error in pool.map(self._drive_safely, leases, firsts):
                        if error:
                            report.errors.append(error)
            finally:
                self._flush_deferred()
        report.transitions = self._transitions - before
        report.paused = self._pause_reason
        return report

    def run_loop(
        self,
        *,
        interval: float = 5.0,
        until_done: bool = False,
        on_pass: Callable[[PassReport], None] | None = None,
    ) -> None:
        """Run passes until stopped (or, with until_done, until no job is left to step)."""
        while not self.stop_requested.is_set():
            report = self.run_pass()
            if on_pass is not None:
                on_pass(report)
            if report.paused:
                raise PauseLoop(report.paused)
            if until_done and self.pending_jobs() == 0:
                return
            wait = interval if report.claimed == 0 else min(interval, self.seconds_to_next_due())
            self.stop_requested.wait(max(wait, 0.01))

    def pending_jobs(self) -> int:
        """Jobs of this reconciler's scope that still have a step to take."""
        query = select(func.count()).select_from(Job).where(Job.state.in_(self.options.states))
        if self._run_id is not None:
            query = query.where(Job.run_id == self._run_id)
        with self.engine.connect() as connection:
            return int(connection.execute(query).scalar_one())

    def seconds_to_next_due(self) -> float:
        """Seconds until the earliest scheduled check of a pending job (0 when one is due)."""
        query = select(func.min(Job.next_check_at)).where(Job.state.in_(self.options.states))
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
            log.exception("job %s: unexpected error", lease.job_id)
            self._record_problem(lease, f"unexpected error: {error!r}", self.options.poll_max)
            return f"job {lease.job_id}: {error!r}"
        return None

    def _drive(self, lease: Lease, first: Row[Any] | None = None) -> None:
        steps: dict[State, Callable[[Lease, Row[Any]], Outcome]] = {
            State.BUILT: self._upload,
            State.UPLOADED: self._create,
            State.SUBMITTED: self._poll,
            State.IN_PROGRESS: self._poll,
            State.COMPLETED: self._download,
            State.FAILED: self._download,
            State.EXPIRED: self._download,
            State.CANCELLED: self._download,
            State.DOWNLOADED: self._normalize,
        }
        claimed_row = first
        while True:
            # The row as claimed serves the first step; later steps read what the last wrote.
            job = claimed_row if claimed_row is not None else self._load(lease.job_id)
            claimed_row = None
            state = State(job.state)
            step = steps.get(state)
            if (
                step is None
                or state not in self.options.states
                or self.stop_requested.is_set()
                or self._pause_reason
            ):
                self._release(lease)
                return
            try:
                if step(lease, job) is Outcome.DONE:
                    return
            except FatalError as error:
                self._pause_reason = str(error)
                self._record_problem(lease, str(error), None)
                return
            except TransientError as error:
                delay = error.retry_after or self._next_interval(job)
                self._record_problem(lease, str(error), delay, poll_interval=delay)
                return
            except (Rejected, NotFound) as error:
                if State.FAILED in TRANSITIONS[state]:
                    self._fail(lease, state, f"provider refused: {error}")
                    continue
                # For example a result file the provider already deleted: nothing to retry
                # soon, recorded for a person to look at.
                self._record_problem(lease, f"provider refused: {error}", self.options.poll_max)
                return
            except StorageError:
                # A lost lease or a forbidden move is not the job's problem: _drive_safely's.
                raise
            except LedgerError as error:
                # A problem in the ledger's own files (say, a shard edited after the build):
                # kept on the job for a person to look at, retried now and then.
                self._record_problem(lease, str(error), self.options.poll_max)
                return

    # -- steps ------------------------------------------------------------------------------

    def _upload(self, lease: Lease, job: Row[Any]) -> Outcome:
        """built -> uploaded: upload the shard under a name carrying the job's token."""
        provider = self._provider(job)
        path = Path(job.input_path)
        problem = _check_input_file(path, job.input_sha256, job.input_bytes)
        if problem:
            self._fail(lease, State.BUILT, problem)
            return Outcome.CONTINUE
        remote = None
        token = job.submit_token
        if token is None:
            token = _new_token()
            with self.engine.begin() as connection:
                update_leased(connection, lease, submit_token=token)
        else:
            # An upload with this token may have reached the provider before a crash.
            found = provider.find_uploads(_upload_name(job, token))
            if found:
                remote = found[0]
                for duplicate in found[1:]:
                    log.warning("job %s: deleting duplicate upload %s", job.id, duplicate.id)
                    provider.delete_file(duplicate.id)
        adopted = remote is not None
        if remote is None:
            crash_point("before_upload")
            remote = provider.upload_input(path, filename=_upload_name(job, token))
        crash_point("after_upload")
        self._advance(
            lease,
            State.BUILT,
            State.UPLOADED,
            detail={"input_file_id": remote.id, "bytes": remote.bytes, "adopted": adopted},
            input_file_id=remote.id,
            submit_token=None,
            base_url=provider.base_url,
            last_error=None,
        )
        crash_point("after_upload_recorded")
        return Outcome.CONTINUE

    def _create(self, lease: Lease, job: Row[Any]) -> Outcome:
        """uploaded -> submitted: create the batch, tagged with the job's token."""
        provider = self._provider(job)
        token = job.submit_token
        snapshot: BatchSnapshot | None = None
        if token is None:
            token = _new_token()
            with self.engine.begin() as connection:
                # Checking the queue cap and recording the intent in one write transaction
                # keeps two concurrent creates from both squeezing under the cap.
                held_back = self._held_back_by_token_cap(connection, job)
                if not held_back:
                    now = read_db_now(connection)
                    update_leased(
                        connection,
                        lease,
                        submit_token=token,
                        attempt=job.attempt + 1,
                        submitted_at=now,
                    )
            if held_back:
                self._record_problem(lease, held_back, self.options.poll_min, quiet=True)
                return Outcome.DONE
        else:
            # A create with this token may have reached the provider before a crash or a
            # lost reply: adopt that batch rather than make a second one.
            found = provider.find_batches(
                input_file_id=job.input_file_id,
                metadata={"ledger_job": str(job.id), "ledger_token": token},
                created_after=int((job.submitted_at or job.created_at) - CLOCK_SKEW_MARGIN),
            )
            if found:
                snapshot = found[0]
                for duplicate in found[1:]:
                    log.warning("job %s: cancelling duplicate batch %s", job.id, duplicate.id)
                    provider.cancel_batch(duplicate.id)
        adopted = snapshot is not None
        if snapshot is None:
            crash_point("before_create")
            snapshot = provider.create_batch(
                input_file_id=job.input_file_id,
                endpoint=job.endpoint,
                metadata=self._batch_metadata(job, token),
            )
        crash_point("after_create")
        interval = self.options.poll_min
        self._advance(
            lease,
            State.UPLOADED,
            State.SUBMITTED,
            detail={"batch_id": snapshot.id, "adopted": adopted, "attempt": job.attempt + 1},
            batch_id=snapshot.id,
            provider_status=snapshot.provider_status,
            poll_interval=interval,
            last_error=None,
            release_lease=True,
            next_check_in=self._jittered(interval),
        )
        crash_point("after_create_recorded")
        return Outcome.DONE

    def _poll(self, lease: Lease, job: Row[Any]) -> Outcome:
        """submitted|in_progress -> the provider's current state."""
        provider = self._provider(job)
        state = State(job.state)
        try:
            snapshot = provider.get_batch(job.batch_id)
        except NotFound:
            with self.engine.connect() as connection:
                age = read_db_now(connection) - (job.submitted_at or job.created_at)
            if age < self.options.not_found_grace:
                # Batches can take a moment to become visible after create: never re-create.
                raise TransientError(f"batch {job.batch_id} not visible yet") from None
            self._fail(lease, state, f"batch {job.batch_id} not found at the provider")
            return Outcome.CONTINUE
        crash_point("after_poll")
        progress = {
            "provider_status": snapshot.provider_status,
            "requests_total": snapshot.requests_total,
            "requests_completed": snapshot.requests_completed,
            "requests_failed": snapshot.requests_failed,
            "output_file_id": snapshot.output_file_id,
            "error_file_id": snapshot.error_file_id,
            "last_error": snapshot.error_summary(),
        }
        if snapshot.input_tokens is not None:
            progress.update(input_tokens=snapshot.input_tokens)
        if snapshot.output_tokens is not None:
            progress.update(output_tokens=snapshot.output_tokens)
        target = snapshot.state
        if target is state or (target is State.SUBMITTED and state is State.IN_PROGRESS):
            interval = self._next_interval(job)
            # Nothing changed: this write may wait and share one commit with the others.
            self._defer_progress(
                lease, poll_interval=interval, next_check_in=self._jittered(interval), **progress
            )
            return Outcome.DONE
        detail: dict[str, Any] = {
            "provider_status": snapshot.provider_status,
            "batch_id": snapshot.id,
        }
        if snapshot.failed_for_token_limit:
            self._requeue_for_token_limit(lease, state, snapshot, progress, detail)
            return Outcome.DONE
        if snapshot.errors:
            detail["errors"] = [e.__dict__ for e in snapshot.errors]
        in_flight = target in IN_FLIGHT
        self._advance(
            lease,
            state,
            target,
            detail=detail,
            poll_interval=self.options.poll_min,
            release_lease=in_flight,
            next_check_in=self._jittered(self.options.poll_min) if in_flight else None,
            **progress,
        )
        return Outcome.DONE if in_flight else Outcome.CONTINUE

    def _requeue_for_token_limit(
        self,
        lease: Lease,
        state: State,
        snapshot: BatchSnapshot,
        progress: dict[str, Any],
        detail: dict[str, Any],
    ) -> None:
        # The organisation's enqueued-token queue was full: not the batch's fault. Record the
        # failure, then go back to `uploaded` to create a new batch (a new token) later.
        detail["errors"] = [e.__dict__ for e in snapshot.errors]
        with self.engine.begin() as connection:
            advance(connection, lease, state, State.FAILED, detail=detail, **progress)
            advance(
                connection,
                lease,
                State.FAILED,
                State.UPLOADED,
                detail={"retry": "token_limit_exceeded", "failed_batch_id": snapshot.id},
                batch_id=None,
                submit_token=None,
                output_file_id=None,
                error_file_id=None,
                finished_at=None,
            )
        self._count(lease.job_id, state, State.FAILED)
        self._count(lease.job_id, State.FAILED, State.UPLOADED)
        self._release(lease, self._jittered(self.options.poll_max))

    def _download(self, lease: Lease, job: Row[Any]) -> Outcome:
        """completed|failed|expired|cancelled -> downloaded: fetch whichever files exist."""
        state = State(job.state)
        directory = _run_directory(job) / "downloads"
        directory.mkdir(parents=True, exist_ok=True)
        paths: dict[str, str | None] = {"output_path": None, "error_path": None}
        lines: dict[str, int] = {}
        refused: dict[str, str] = {}
        for kind, file_id in (("output", job.output_file_id), ("error", job.error_file_id)):
            if not file_id:
                continue
            provider = self._provider(job)
            final = directory / f"shard-{job.shard_index:04d}.{kind}.jsonl"
            raw = directory / f".{final.name}.download"
            provider.download_file(file_id, raw)
            try:
                lines[kind] = finish_download(raw, final)
            except CorruptDownload as error:
                raise TransientError(f"{kind} file {file_id}: {error}") from None
            except UnsafeArchive as error:
                # Refused for good: no retry will make it safe. The job goes on without that
                # file, so its requests end `missing` (retryable) with the reason on record.
                log.error("job %s: %s file %s refused: %s", job.id, kind, file_id, error)
                refused[kind] = f"{kind} file {file_id} refused: {error}"
                continue
            paths[f"{kind}_path"] = str(final)
        crash_point("after_download")
        detail: dict[str, Any] = {"lines": lines}
        fields: dict[str, Any] = dict(paths)
        if refused:
            detail["refused"] = refused
            fields["last_error"] = "; ".join(refused.values())
        self._advance(lease, state, State.DOWNLOADED, detail=detail, **fields)
        crash_point("after_download_recorded")
        return Outcome.CONTINUE

    def _normalize(self, lease: Lease, job: Row[Any]) -> Outcome:
        """downloaded -> normalized: one result line and one requests row per input request."""
        from ledger.results.normalize import normalize_job

        normalize_job(
            self.engine, lease, job.id, before_record=lambda: crash_point("after_normalize")
        )
        self._count(lease.job_id, State.DOWNLOADED, State.NORMALIZED)
        self._release(lease)
        return Outcome.DONE

    # -- group commit of unchanged polls ----------------------------------------------------

    def _defer_progress(self, lease: Lease, **fields: Any) -> None:
        """Queue a same-state progress write; flushed in batches, each its own guarded update.

        Most polls change nothing but the next check time. Committing each alone would cost a
        disk sync per poll (measured: most of a pass); sharing commits costs nothing in safety,
        since a write lost to a crash only means the job is polled again.
        """
        with self._deferred_lock:
            self._deferred.append((lease, fields))
            full = len(self._deferred) >= DEFERRED_BATCH
        if full:
            self._flush_deferred()

    def _flush_deferred(self) -> None:
        with self._deferred_lock:
            batch, self._deferred = self._deferred, []
        if not batch:
            return
        by_fields: dict[tuple[str, ...], list[tuple[Lease, dict[str, Any]]]] = defaultdict(list)
        for lease, fields in batch:
            by_fields[tuple(sorted(fields))].append((lease, fields))
        with self.engine.begin() as connection:
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

    # -- helpers ----------------------------------------------------------------------------

    def _provider(self, job: Row[Any]) -> BatchProvider:
        base_url = job.base_url or self.options.base_url
        key = (job.provider, base_url)
        with self._providers_lock:
            if key not in self._providers:
                self._providers[key] = self._provider_for(job.provider, base_url)
            return self._providers[key]

    def _batch_metadata(self, job: Row[Any], token: str) -> dict[str, str]:
        with self.engine.connect() as connection:
            run_name = connection.execute(select(Run.name).where(Run.id == job.run_id)).scalar()
        return {
            "ledger_job": str(job.id),
            "ledger_token": token,
            "ledger_run": str(run_name)[:512],
            "ledger_shard": str(job.shard_index),
        }

    def _held_back_by_token_cap(self, connection: Connection, job: Row[Any]) -> str | None:
        cap = self.options.max_enqueued_tokens
        if cap is None:
            return None
        if connection.dialect.name == "postgresql":
            # SQLite's BEGIN IMMEDIATE already serializes writers; PostgreSQL needs a lock.
            connection.execute(text("SELECT pg_advisory_xact_lock(7354011)"))
        in_flight_states = [s.value for s in IN_FLIGHT]
        in_flight = connection.execute(
            select(func.coalesce(func.sum(Job.est_input_tokens), 0)).where(
                Job.model == job.model,
                Job.id != job.id,
                (Job.state.in_(in_flight_states))
                | ((Job.state == State.UPLOADED.value) & Job.submit_token.is_not(None)),
            )
        ).scalar_one()
        if in_flight and in_flight + job.est_input_tokens > cap:
            return (
                f"held back: {in_flight} tokens in flight for {job.model} "
                f"+ {job.est_input_tokens} would pass --max-enqueued-tokens {cap}"
            )
        return None

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

    def _advance(
        self,
        lease: Lease,
        from_state: State,
        to_state: State,
        *,
        detail: dict[str, Any] | None = None,
        **fields: Any,
    ) -> None:
        with self.engine.begin() as connection:
            advance(connection, lease, from_state, to_state, detail=detail, **fields)
        self._count(lease.job_id, from_state, to_state)

    def _fail(self, lease: Lease, from_state: State, reason: str) -> None:
        log.error("job %s: %s", lease.job_id, reason)
        self._advance(lease, from_state, State.FAILED, detail={"error": reason}, last_error=reason)

    def _count(self, job_id: int, from_state: State, to_state: State) -> None:
        with self._count_lock:
            self._transitions += 1
        log.info("job %s: %s -> %s", job_id, from_state, to_state)
        if self._on_transition is not None:
            self._on_transition(job_id, from_state, to_state)

    def _record_problem(
        self,
        lease: Lease,
        message: str,
        retry_in: float | None,
        *,
        quiet: bool = False,
        **fields: Any,
    ) -> None:
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

    def _release(self, lease: Lease, next_check_in: float | None = None) -> None:
        with self.engine.begin() as connection:
            release(connection, lease, next_check_in=next_check_in)

    def _next_interval(self, job: Row[Any]) -> float:
        current = job.poll_interval or self.options.poll_min
        return min(
            max(current * self.options.poll_factor, self.options.poll_min), self.options.poll_max
        )

    def _jittered(self, seconds: float) -> float:
        spread = self.options.jitter
        return seconds * random.uniform(1 - spread, 1 + spread) if spread else seconds

    def _resolve_run(self, run_name: str | None) -> int | None:
        if run_name is None:
            return None
        with self.engine.connect() as connection:
            run_id = connection.execute(select(Run.id).where(Run.name == run_name)).scalar()
        if run_id is None:
            raise InputError(f"no run named {run_name!r}")
        return int(run_id)


def _new_token() -> str:
    return uuid.uuid4().hex


def _upload_name(job: Row[Any], token: str) -> str:
    return f"ledger-job{job.id}-{job.input_sha256[:16]}-{token}.jsonl"


def _run_directory(job: Row[Any]) -> Path:
    # Shards live in runs/<run>/batch_inputs/; downloads and results sit beside them.
    return Path(job.input_path).parent.parent


def _check_input_file(path: Path, expected_sha256: str, expected_bytes: int) -> str | None:
    """Why the shard on disk is not the one that was built, or None when it is."""
    if not path.exists():
        return f"input shard {path} is missing"
    digest = sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    if path.stat().st_size != expected_bytes or digest.hexdigest() != expected_sha256:
        return f"input shard {path} changed since it was built (sha256 mismatch)"
    return None


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


__all__ = [
    "ACTIVE_STATES",
    "OutcomeUnknown",
    "PassReport",
    "PauseLoop",
    "ReconcileOptions",
    "Reconciler",
]
