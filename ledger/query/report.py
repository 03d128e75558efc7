"""Read-side queries behind `ledger status`, `ledger show`, `ledger history` and `ledger cancel`
(how they are printed is ledger.console's)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine

from ledger.core.db import read_db_now
from ledger.core.models import PENDING, Job, JobEvent, Request, Run
from ledger.core.states import State
from ledger.results.schema import STATUSES, SUCCEEDED


def status_report(engine: Engine, run_name: str | None = None) -> list[dict[str, Any]]:
    """One entry per run: its settings, counts per job state and per request status, jobs."""
    with engine.connect() as connection:
        now = read_db_now(connection)
        runs_query = select(Run).order_by(Run.id)
        if run_name is not None:
            runs_query = runs_query.where(Run.name == run_name)
        runs = connection.execute(runs_query).all()
        report = []
        for run in runs:
            jobs = connection.execute(
                select(Job).where(Job.run_id == run.id).order_by(Job.shard_index)
            ).all()
            request_counts = request_status_counts(connection, run, jobs)
            job_states: dict[str, int] = {}
            for job in jobs:
                job_states[job.state] = job_states.get(job.state, 0) + 1
            report.append(
                {
                    "run": run.name,
                    "provider": run.provider,
                    "endpoint": run.endpoint,
                    "model": run.model,
                    "requests": run.request_count,
                    "created_at": run.created_at,
                    "job_states": job_states,
                    "held": sum(job.held_reason is not None for job in jobs),
                    # Jobs the create step holds back now (a cap, a queue, a paused provider).
                    "waiting": [
                        {"job_id": job.id, "waiting_for": job.waiting_for}
                        for job in jobs
                        if job.waiting_for and job.state == State.UPLOADED
                    ],
                    "request_statuses": request_counts,
                    "est_input_tokens": sum(j.est_input_tokens or 0 for j in jobs),
                    # "exact" or "approximate" (build.plan.TOKEN_ESTIMATE); None: not counted.
                    "token_estimate": (run.options or {}).get("token_estimate"),
                    "input_tokens": sum(j.input_tokens or 0 for j in jobs),
                    "output_tokens": sum(j.output_tokens or 0 for j in jobs),
                    "cost_usd": _run_cost(jobs),
                    # The estimate stored at submit (None: a job's model has no price).
                    "est_cost_usd": _run_estimate(jobs),
                    "jobs": [
                        {
                            "job_id": job.id,
                            "run": run.name,
                            "shard": job.shard_index,
                            "state": job.state,
                            "held": job.held_reason,
                            "waiting_for": job.waiting_for,
                            "provider_status": job.provider_status,
                            "requests": job.request_count,
                            "completed": job.requests_completed,
                            "failed": job.requests_failed,
                            "batch_id": job.batch_id,
                            "est_input_tokens": job.est_input_tokens,
                            "input_tokens": job.input_tokens,
                            "output_tokens": job.output_tokens,
                            "est_cost_usd": job.est_cost_usd,
                            "cost_usd": job.cost_usd,
                            "age_s": round(now - job.created_at, 1),
                            "last_error": job.last_error,
                        }
                        for job in jobs
                    ],
                }
            )
        return report


def request_status_counts(connection: Connection, run: Any, jobs: Any) -> dict[str, int]:
    """How many of `run`'s requests have each status, without counting the largest.

    Counting a run's rows of one status walks that many entries of ix_requests_run_status (1M
    rows: about 0.1 s on SQLite), so every status is counted but the one that is likely the
    largest, which is the run's request count less the others: `succeeded` once most jobs are
    normalized, `pending` before.
    """
    in_flight = sum(job.request_count for job in jobs if job.state != State.NORMALIZED)
    derived = PENDING if in_flight * 2 > run.request_count else SUCCEEDED
    counted = [status for status in (PENDING, *STATUSES) if status != derived]
    counts = _count_statuses(connection, run.id, counted)
    rest = run.request_count - sum(counts.values())
    if rest < 0:  # rows the run's count does not know of: count them all instead
        counted.append(derived)
        return _count_statuses(connection, run.id, counted)
    if rest:
        counts[derived] = rest
    return dict(sorted(counts.items()))


def _count_statuses(connection: Connection, run_id: int, statuses: list[str]) -> dict[str, int]:
    counts = connection.execute(
        select(Request.status, func.count())
        .where(Request.run_id == run_id, Request.status.in_(statuses))
        .group_by(Request.status)
    ).all()
    return {status: count for status, count in sorted(counts)}


def _run_cost(jobs: Any) -> float | None:
    # The normalized jobs' costs; one without a cost (its model has no price) makes the run's
    # cost unknown rather than an undercount.
    costs = [job.cost_usd for job in jobs if (job.results_path or job.results_ref) is not None]
    return None if None in costs else round(sum(costs), 12)


def _run_estimate(jobs: Any) -> float | None:
    # Every job's estimate (stored at submit or retry, again at create); one without (its model
    # has no price) makes the run's estimate unknown.
    estimates = [job.est_cost_usd for job in jobs]
    return None if not jobs or None in estimates else round(sum(estimates), 12)


def job_detail(engine: Engine, job_id: int) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """A job's every field and its event history, or None when there is no such job."""
    with engine.connect() as connection:
        job = connection.execute(select(Job.__table__).where(Job.id == job_id)).mappings().first()
        if job is None:
            return None
        events = connection.execute(
            select(JobEvent.__table__)
            .where(JobEvent.job_id == job_id)
            .order_by(JobEvent.at, JobEvent.id)
        ).mappings()
        return dict(job), [dict(e) for e in events]


def recent_events(engine: Engine, limit: int = 50) -> list[dict[str, Any]]:
    """The newest `limit` events of every job, oldest first, with the run's name."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                JobEvent.id,
                JobEvent.at,
                JobEvent.job_id,
                Run.name.label("run"),
                JobEvent.from_state,
                JobEvent.to_state,
                JobEvent.actor,
                JobEvent.detail,
            )
            .join(Job, Job.id == JobEvent.job_id)
            .join(Run, Run.id == Job.run_id)
            .order_by(JobEvent.at.desc(), JobEvent.id.desc())
            .limit(limit)
        ).mappings()
        return [dict(r) for r in reversed(list(rows))]


def job_ids_for(engine: Engine, target: str) -> list[int]:
    """The jobs a CLI argument names: a run's name, or one job's id."""
    from ledger.errors import InputError

    with engine.connect() as connection:
        run_id = connection.execute(select(Run.id).where(Run.name == target)).scalar()
        if run_id is not None:
            return list(
                connection.execute(
                    select(Job.id).where(Job.run_id == run_id).order_by(Job.id)
                ).scalars()
            )
        if target.isdigit():
            job_id = connection.execute(select(Job.id).where(Job.id == int(target))).scalar()
            if job_id is not None:
                return [int(job_id)]
    raise InputError(f"no run or job named {target!r}")
