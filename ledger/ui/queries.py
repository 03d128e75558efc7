"""What the dashboard shows of runs and jobs, read with SQL over the ledger's tables.

A run's progress counts its requests by their recorded status, plus, for jobs not normalized yet,
the requests their provider already reports finished (`requests_completed` + `requests_failed`):
those are done at the provider and only wait to be downloaded, so the bar moves while a batch
runs instead of jumping when its results land.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.engine import Connection

from ledger.core.db import read_db_now
from ledger.core.models import Job, JobEvent, Request, Run
from ledger.core.states import State
from ledger.results.schema import STATUSES, SUCCEEDED
from ledger.usage.pricing import CostEstimate, ModelUsage, PriceTable, estimate_cost

#: How many runs the runs page lists (the newest first).
RUNS_SHOWN = 100
#: Request statuses in the order the progress bar draws them; `provider` is done at the provider
#: but not downloaded yet, `pending` is everything else.
BAR_ORDER: tuple[str, ...] = (*STATUSES, "provider", "pending")
#: Final request statuses that are not a success: what the error table groups.
NOT_SUCCEEDED: tuple[str, ...] = tuple(status for status in STATUSES if status != SUCCEEDED)
#: Job states in lifecycle order, for the state counts.
STATE_ORDER: tuple[str, ...] = tuple(state.value for state in State)


@dataclass
class RunSummary:
    """One run's settings, progress, cost and pace."""

    id: int
    name: str
    provider: str
    endpoint: str
    model: str
    total: int
    created_at: float
    now: float
    job_states: dict[str, int] = field(default_factory=dict)
    #: Requests by recorded final status (succeeded, failed, expired, cancelled, missing).
    statuses: dict[str, int] = field(default_factory=dict)
    #: Requests of jobs not normalized yet that their provider reports finished.
    at_provider: int = 0
    #: The cost of the jobs that have one; see `cost`.
    priced_usd: float = 0.0
    #: Normalized jobs without a cost (their model has no price).
    unpriced_jobs: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    estimate: CostEstimate | None = None
    #: When the first batch was sent, and when the last job changed (for a finished run).
    started_at: float | None = None
    last_change_at: float | None = None

    @property
    def cost(self) -> float | None:
        """The cost so far; None (unknown, not an undercount) when a normalized job's model has
        no price, as `ledger status` says."""
        return None if self.unpriced_jobs else self.priced_usd

    @property
    def jobs(self) -> int:
        return sum(self.job_states.values())

    @property
    def live(self) -> bool:
        """Some job is not normalized yet: the run may still change."""
        return any(state != State.NORMALIZED.value for state in self.job_states)

    @property
    def done(self) -> int:
        return min(self.total, sum(self.statuses.values()) + self.at_provider)

    @property
    def pending(self) -> int:
        return max(0, self.total - self.done)

    def segments(self) -> list[tuple[str, int, float]]:
        """(name, requests, percent of the run) for each non-empty part of the progress bar."""
        counts = {**self.statuses, "provider": self.at_provider, "pending": self.pending}
        total = self.total or 1
        return [
            (name, counts[name], 100.0 * counts[name] / total)
            for name in BAR_ORDER
            if counts.get(name)
        ]

    @property
    def elapsed(self) -> float | None:
        """Seconds from the first batch sent to now (live) or to the last change (finished)."""
        if self.started_at is None:
            return None
        end = self.now if self.live else (self.last_change_at or self.now)
        return max(0.0, end - self.started_at)

    @property
    def per_minute(self) -> float | None:
        """Requests done per minute since the first batch was sent."""
        elapsed = self.elapsed
        if not elapsed or not self.done:
            return None
        return 60.0 * self.done / elapsed

    @property
    def eta_seconds(self) -> float | None:
        """Seconds left at the pace so far, for a live run that has done something."""
        pace = self.per_minute
        if not self.live or pace is None:
            return None
        return 60.0 * self.pending / pace


def list_runs(
    connection: Connection, prices: PriceTable, run_ids: Sequence[int] | None = None
) -> list[RunSummary]:
    """The newest RUNS_SHOWN runs (or those in `run_ids`), newest first, with their progress."""
    query = select(Run).order_by(Run.id.desc()).limit(RUNS_SHOWN)
    if run_ids is not None:
        query = query.where(Run.id.in_(list(run_ids)))
    now = read_db_now(connection)
    runs = {
        row.id: RunSummary(
            id=row.id,
            name=row.name,
            provider=row.provider,
            endpoint=row.endpoint,
            model=row.model,
            total=row.request_count,
            created_at=row.created_at,
            now=now,
        )
        for row in connection.execute(query)
    }
    if not runs:
        return []
    ids = list(runs)
    _add_job_figures(connection, runs, ids)
    statuses = (
        select(Request.run_id, Request.status, func.count())
        .where(Request.run_id.in_(ids), Request.status.in_(STATUSES))
        .group_by(Request.run_id, Request.status)
    )
    for run_id, status, count in connection.execute(statuses):
        runs[run_id].statuses[status] = count
    for run_id, usage in priced_usage(connection, ids).items():
        runs[run_id].estimate = estimate_cost(prices, usage)
    for run in runs.values():
        run.job_states = dict(sorted(run.job_states.items(), key=lambda i: _state_rank(i[0])))
        run.statuses = {s: run.statuses[s] for s in STATUSES if run.statuses.get(s)}
    return list(runs.values())


def _state_rank(state: str) -> int:
    return STATE_ORDER.index(state) if state in STATE_ORDER else len(STATE_ORDER)


def _add_job_figures(connection: Connection, runs: dict[int, RunSummary], ids: list[int]) -> None:
    reported = func.coalesce(Job.requests_completed, 0) + func.coalesce(Job.requests_failed, 0)
    # Capped per job: a provider's counts never make a job more than done.
    finished_at_provider = case((reported > Job.request_count, Job.request_count), else_=reported)
    normalized = func.coalesce(Job.results_ref, Job.results_path).is_not(None)
    unpriced = case((and_(normalized, Job.cost_usd.is_(None)), 1), else_=0)
    query = (
        select(
            Job.run_id,
            Job.state,
            func.count(),
            func.sum(finished_at_provider),
            func.coalesce(func.sum(Job.cost_usd), 0.0),
            func.sum(unpriced),
            func.coalesce(func.sum(Job.input_tokens), 0),
            func.coalesce(func.sum(Job.output_tokens), 0),
            func.min(Job.submitted_at),
            func.max(Job.updated_at),
        )
        .where(Job.run_id.in_(ids))
        .group_by(Job.run_id, Job.state)
    )
    for (
        run_id,
        state,
        count,
        provider_done,
        cost,
        unpriced_jobs,
        tokens_in,
        tokens_out,
        sent,
        changed,
    ) in connection.execute(query):
        run = runs[run_id]
        run.job_states[state] = count
        if state != State.NORMALIZED.value:
            run.at_provider += int(provider_done or 0)
        run.priced_usd += float(cost or 0.0)
        run.unpriced_jobs += int(unpriced_jobs or 0)
        run.input_tokens += int(tokens_in or 0)
        run.output_tokens += int(tokens_out or 0)
        if sent is not None:
            run.started_at = sent if run.started_at is None else min(run.started_at, sent)
        if changed is not None:
            run.last_change_at = max(run.last_change_at or changed, changed)


def priced_usage(connection: Connection, run_ids: Sequence[int]) -> dict[int, list[ModelUsage]]:
    """What `ledger submit` priced for each run: its first jobs (not retries), input at the
    estimated tokens and output at the requests' maximum (the creation event keeps it). Runs
    built without token counting have no estimate."""
    query = (
        select(Job.run_id, Job.model, Job.est_input_tokens, JobEvent.detail, Run.options)
        .join(Run, Run.id == Job.run_id)
        .join(
            JobEvent,
            and_(
                JobEvent.job_id == Job.id,
                JobEvent.from_state.is_(None),
                JobEvent.to_state == State.BUILT.value,
            ),
        )
        .where(Job.run_id.in_(list(run_ids)), Job.parent_job_id.is_(None))
    )
    usage: dict[int, list[ModelUsage]] = defaultdict(list)
    for run_id, model, tokens, detail, options in connection.execute(query):
        if (options or {}).get("count_tokens", True):
            cap = (detail or {}).get("max_output_tokens")
            usage[run_id].append(ModelUsage(model, tokens or 0, cap))
    return usage


@dataclass
class JobEventRow:
    at: float
    from_state: str | None
    to_state: str
    actor: str
    detail: Any
    #: Seconds the job stayed in `to_state` (until the next event, or until now).
    seconds: float | None


@dataclass
class JobRow:
    id: int
    shard_index: int
    state: str
    provider: str
    model: str
    batch_id: str | None
    provider_status: str | None
    request_count: int
    requests_completed: int | None
    requests_failed: int | None
    cost_usd: float | None
    last_error: str | None
    attempt: int
    parent_job_id: int | None
    events: list[JobEventRow] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)


def run_jobs(connection: Connection, run_id: int, job_id: int | None = None) -> list[JobRow]:
    """The run's jobs by id (or only `job_id`), each with its event timeline."""
    now = read_db_now(connection)
    query = select(Job.__table__).where(Job.run_id == run_id).order_by(Job.id)
    if job_id is not None:
        query = query.where(Job.id == job_id)
    jobs = {
        row["id"]: JobRow(
            id=row["id"],
            shard_index=row["shard_index"],
            state=row["state"],
            provider=row["provider"],
            model=row["model"],
            batch_id=row["batch_id"],
            provider_status=row["provider_status"],
            request_count=row["request_count"],
            requests_completed=row["requests_completed"],
            requests_failed=row["requests_failed"],
            cost_usd=row["cost_usd"],
            last_error=row["last_error"],
            attempt=row["attempt"],
            parent_job_id=row["parent_job_id"],
            fields=dict(row),
        )
        for row in connection.execute(query).mappings()
    }
    if not jobs:
        return []
    events = connection.execute(
        select(
            JobEvent.job_id,
            JobEvent.at,
            JobEvent.from_state,
            JobEvent.to_state,
            JobEvent.actor,
            JobEvent.detail,
        )
        .where(JobEvent.job_id.in_(list(jobs)))
        .order_by(JobEvent.job_id, JobEvent.at, JobEvent.id)
    )
    for event in events:
        jobs[event.job_id].events.append(
            JobEventRow(event.at, event.from_state, event.to_state, event.actor, event.detail, None)
        )
    for job in jobs.values():
        for this, following in zip(job.events, job.events[1:], strict=False):
            this.seconds = following.at - this.at
        if job.events and job.state != State.NORMALIZED.value:
            job.events[-1].seconds = now - job.events[-1].at
    return list(jobs.values())


@dataclass(frozen=True)
class ErrorGroup:
    status: str
    error_code: str | None
    http_status: int | None
    count: int
    example: str | None


def error_groups(connection: Connection, run_id: int) -> list[ErrorGroup]:
    """The run's requests that did not succeed, grouped by status and error code, most first."""
    count = func.count().label("n")
    query = (
        select(
            Request.status,
            Request.error_code,
            func.max(Request.http_status),
            count,
            func.min(Request.error_message),
        )
        .where(Request.run_id == run_id, Request.status.in_(NOT_SUCCEEDED))
        .group_by(Request.status, Request.error_code)
        .order_by(count.desc(), Request.error_code)
    )
    return [ErrorGroup(*row) for row in connection.execute(query)]
