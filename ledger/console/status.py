"""`ledger status`, and the figures every progress display shares: one run's requests done,
jobs done, cost and ETA, all from an entry of `ledger.query.report.status_report`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ledger.console.tables import format_table

#: The columns of a run's job table in `ledger status RUN`.
JOB_STATUS_COLUMNS = (
    "job_id",
    "shard",
    "model",
    "state",
    "provider_status",
    "requests",
    "completed",
    "failed",
    "batch_id",
    "est_input_tokens",
    "input_tokens",
    "est_cost_usd",
    "cost_usd",
    "age_s",
    "last_error",
)


@dataclass(frozen=True)
class RunProgress:
    """Where one run stands, as a person watching it wants to see it."""

    name: str
    provider: str
    model: str
    #: Requests in the run; `done` counts those with a result, or reported finished by the
    #: provider while their batch still runs (so a long batch moves before it is downloaded).
    requests: int
    done: int
    request_statuses: Mapping[str, int]
    jobs: int
    jobs_done: int
    job_states: Mapping[str, int]
    #: None: a normalized job's model has no price, so the cost is unknown (never $0).
    cost_usd: float | None
    last_error: str | None
    #: The estimate stored at submit; None when a job's model has no price.
    est_cost_usd: float | None = None

    @property
    def ended(self) -> bool:
        """Every job is normalized: nothing is left for a reconciler to do."""
        return self.jobs > 0 and self.jobs_done == self.jobs

    @property
    def outcome(self) -> str:
        """`succeeded` (every request), `failed` (none) or `partial`; `running` before the end."""
        if not self.ended:
            return "running"
        succeeded = self.request_statuses.get("succeeded", 0)
        if succeeded == self.requests:
            return "succeeded"
        return "failed" if succeeded == 0 else "partial"


def run_progress(run: Mapping[str, Any]) -> RunProgress:
    """The progress of one `status_report` entry."""
    statuses = run["request_statuses"]
    finished = sum(n for status, n in statuses.items() if status != "pending")
    running = sum(
        (job["completed"] or 0) + (job["failed"] or 0)
        for job in run["jobs"]
        if job["state"] != "normalized"
    )
    errors = [job["last_error"] for job in run["jobs"] if job["last_error"]]
    return RunProgress(
        name=run["run"],
        provider=run["provider"],
        model=run["model"],
        requests=run["requests"],
        done=min(run["requests"], finished + running),
        request_statuses=dict(statuses),
        jobs=len(run["jobs"]),
        jobs_done=run["job_states"].get("normalized", 0),
        job_states=dict(run["job_states"]),
        cost_usd=run["cost_usd"],
        est_cost_usd=run.get("est_cost_usd"),
        last_error=errors[-1] if errors else None,
    )


def counts(mapping: Mapping[str, int], order: Sequence[str] = ()) -> str:
    """`3 succeeded, 1 failed`: the given order first, then the rest by name."""
    keys = [k for k in order if mapping.get(k)] + sorted(k for k in mapping if k not in order)
    return ", ".join(f"{mapping[k]} {k}" for k in keys if mapping[k]) or "none"


def cost(amount: float | None) -> str:
    """`$0.0123`, or `unknown` when a model has no price."""
    return "unknown" if amount is None else f"${amount:.4f}"


def run_line(progress: RunProgress) -> str:
    """One line for a run: requests and jobs done, by status and state, cost, last error."""
    from ledger.core.states import State

    line = (
        f"{progress.name}: {progress.provider} {progress.model}; "
        f"requests {progress.done}/{progress.requests} ({counts(progress.request_statuses)}); "
        f"jobs {progress.jobs_done}/{progress.jobs} "
        f"({counts(progress.job_states, [s.value for s in State])}); "
        f"cost {cost(progress.cost_usd)} (est. {cost(progress.est_cost_usd)})"
    )
    if progress.last_error:
        line += f"; last error: {' '.join(progress.last_error.split())[:200]}"
    return line


def format_status(report: Sequence[Mapping[str, Any]], run_name: str | None = None) -> str:
    """`ledger status`: one line per run; with a run's name, that line and its jobs' table."""
    if not report:
        return "no runs yet"
    lines: list[str] = []
    for run in report:
        lines.append(run_line(run_progress(run)))
        if run.get("held"):
            lines.append(
                f"  held: {run['held']} job(s) of a dry run, sent by `ledger send {run['run']}`"
            )
        for waiting in run.get("waiting", ()):
            lines.append(f"  waiting: job {waiting['job_id']} {waiting['waiting_for']}")
    if run_name is not None:
        [run] = report
        if run.get("token_estimate"):
            mark = " (approximate)" if run["token_estimate"] == "approximate" else ""
            lines.append(f"  est. input tokens: {run['est_input_tokens']:,}{mark}")
        lines.append(
            f"  estimated against actual: input tokens {run['est_input_tokens']:,} est., "
            f"{run['input_tokens']:,} actual (output {run['output_tokens']:,}); cost "
            f"{cost(run.get('est_cost_usd'))} est., {cost(run['cost_usd'])} actual"
        )
        rows = [[_job_cell(run, job, c) for c in JOB_STATUS_COLUMNS] for job in run["jobs"]]
        lines.append(format_table(JOB_STATUS_COLUMNS, rows))
    return "\n".join(lines)


def _job_cell(run: Mapping[str, Any], job: Mapping[str, Any], column: str) -> Any:
    """One cell of a run's job table: costs as `$0.0123`, `unknown` when the model has no price
    (an estimate, or a normalized job's cost), blank while a job's cost is not known yet."""
    if column == "model":
        return job.get("model", run["model"])
    if column == "est_cost_usd":
        return cost(job.get("est_cost_usd"))
    if column == "cost_usd" and (job.get("cost_usd") is not None or job["state"] == "normalized"):
        return cost(job.get("cost_usd"))
    return job.get(column)
