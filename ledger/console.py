"""What the `ledger` command prints: aligned tables, CSV and JSON rows, times, the status report,
a job's history, and the progress of `ledger reconcile` (a live line on a terminal, plain lines
otherwise, both from the same counts).

Only the standard library at import time: the CLI and the build's plan print through it, and
neither should pay for the database layer to format a table.
"""

from __future__ import annotations

import csv
import io
import json
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from ledger.build.plan import BuildPlan
    from ledger.core.states import State
    from ledger.reconcile.engine import PassReport
    from ledger.usage.listing import PriceListing

#: The columns of each run's job table in `ledger status`.
JOB_STATUS_COLUMNS = (
    "job_id",
    "run",
    "shard",
    "state",
    "provider_status",
    "requests",
    "completed",
    "failed",
    "batch_id",
    "age_s",
)


# -- rows ----------------------------------------------------------------------------------


def format_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain aligned text table; None shows as an empty cell."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [len(c) for c in columns]
    for row in cells:
        for i, value in enumerate(row):
            widths[i] = max(widths[i], len(value))
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend(
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells
    )
    return "\n".join(lines)


def format_csv(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """CSV with a header row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return buffer.getvalue()


def format_json_rows(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A JSON array of one object per row."""
    return json.dumps([dict(zip(columns, row, strict=True)) for row in rows], indent=2, default=str)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}" if abs(value) < 1e6 else f"{value:.0f}"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def format_time(epoch: float | None) -> str:
    """`2025-01-31 12:00:00.000Z` for Unix epoch seconds; '' for None."""
    if epoch is None:
        return ""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


# -- status, show, history -----------------------------------------------------------------


def format_status(report: Sequence[Mapping[str, Any]], run_name: str | None = None) -> str:
    """`ledger status`: per run a summary line, its request outcomes and a table of its jobs."""
    if not report:
        return "no runs yet" if run_name is None else f"no run named {run_name!r}"
    lines: list[str] = []
    for run in report:
        states = ", ".join(f"{n} {s}" for s, n in sorted(run["job_states"].items()))
        statuses = ", ".join(f"{n} {s}" for s, n in sorted(run["request_statuses"].items()))
        lines.append(
            f"run {run['run']}: {run['provider']} {run['model']} {run['endpoint']}, "
            f"{run['requests']} requests, {len(run['jobs'])} jobs ({states or 'none'})"
        )
        if run["held"]:
            lines.append(
                f"  held: {run['held']} job(s) of a dry run, sent by `ledger send {run['run']}`"
            )
        if statuses:
            lines.append(
                f"  requests: {statuses}; tokens in {run['input_tokens']} "
                f"out {run['output_tokens']}; cost {_cost(run['cost_usd'])}"
            )
        rows = [[job[c] for c in JOB_STATUS_COLUMNS] for job in run["jobs"]]
        if rows:
            lines.append(format_table(JOB_STATUS_COLUMNS, rows))
        lines.append("")
    return "\n".join(lines)


#: `ledger prices`: the columns of the table (rates are batch USD per 1M tokens).
PRICE_COLUMNS = (
    "model", "provider", "in", "cached", "out", "context", "max out", "checked", "source",
)  # fmt: skip


def format_prices(listing: PriceListing) -> str:
    """`ledger prices`: one row per model, then the ledger's models that have no price."""
    rows = [
        [
            row.model,
            row.provider,
            _rate(row.input),
            _rate(row.cached_input),
            _rate(row.output),
            _count(row.context_window),
            _count(row.max_output_tokens),
            row.checked.isoformat() if row.checked else None,
            row.sources[0] if row.sources else None,
        ]
        for row in listing.rows
    ]
    lines = [format_table(PRICE_COLUMNS, rows)] if rows else ["no such model in the table"]
    lines.append("batch prices, USD per 1M tokens; sources and notes: `ledger prices --json`")
    for model in listing.unpriced:
        lines.append(
            f'no price: {model}: its cost shows as unknown; add a [models."{model}"] row with '
            "input and output to ledger.toml, or a --prices file"
        )
    return "\n".join(lines)


def _rate(value: float | None) -> str | None:
    return None if value is None else f"${value:g}"


def _count(value: int | None) -> str | None:
    return None if value is None else f"{value:,}"


def format_job(job: Mapping[str, Any], events: Sequence[Mapping[str, Any]]) -> str:
    """`ledger show`: one job's fields (times readable), then its events."""
    width = max(len(key) for key in job)
    lines = []
    for key, value in job.items():
        shown = format_time(value) if key.endswith("_at") and value is not None else value
        lines.append(f"{key.ljust(width)}  {'' if shown is None else shown}")
    lines.append("\nevents:")
    rows = [
        [format_time(e["at"]), e["from_state"] or "-", e["to_state"], e["actor"], e["detail"]]
        for e in events
    ]
    lines.append(format_table(["at", "from", "to", "actor", "detail"], rows))
    return "\n".join(lines)


def format_history(events: Sequence[Mapping[str, Any]]) -> str:
    """`ledger history`: one line per state change."""
    if not events:
        return "no events yet"
    columns = ["at", "job", "run", "from", "to", "actor"]
    rows = [
        [
            format_time(e["at"]),
            e["job_id"],
            e["run"],
            e["from_state"] or "-",
            e["to_state"],
            e["actor"],
        ]
        for e in events
    ]
    return format_table(columns, rows)


# -- reconcile progress --------------------------------------------------------------------


def state_counts(engine: Engine, run_name: str | None = None) -> dict[str, int]:
    """Jobs per state, in lifecycle order, only the states that have jobs."""
    from sqlalchemy import func, select

    from ledger.core.models import Job, Run
    from ledger.core.states import State

    query = select(Job.state, func.count()).group_by(Job.state)
    if run_name is not None:
        query = query.join(Run, Run.id == Job.run_id).where(Run.name == run_name)
    with engine.connect() as connection:
        counts = {state: n for state, n in connection.execute(query).all()}
    return {s.value: counts[s.value] for s in State if counts.get(s.value)}


class ProgressDisplay:
    """Prints transitions and pass summaries; redraws one line in place on a terminal."""

    def __init__(self, engine: Engine, run_name: str | None, stream: TextIO | None = None):
        self.engine = engine
        self.run_name = run_name
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty()
        self._lock = threading.Lock()
        self._passes = 0

    def on_transition(self, job_id: int, from_state: State, to_state: State) -> None:
        if not self.live:
            self._write(f"job {job_id}: {from_state} -> {to_state}\n")

    def on_pass(self, report: PassReport) -> None:
        self._passes += 1
        counts = state_counts(self.engine, self.run_name)
        summary = ", ".join(f"{n} {s}" for s, n in counts.items()) or "no jobs"
        if self.live:
            self._write(f"\r\x1b[2Kpass {self._passes}: {summary}")
        elif report.transitions or report.errors:
            self._write(f"pass {self._passes}: {summary}\n")

    def close(self) -> None:
        if self.live:
            self._write("\n")

    def _write(self, text: str) -> None:
        with self._lock:
            self.stream.write(text)
            self.stream.flush()


def install_stop_signals(stop: Callable[[], None]) -> None:
    """SIGINT and SIGTERM finish the current step, release leases and stop the loop."""
    import signal

    def handler(signum: int, _frame: object) -> None:
        stop()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def _cost(amount: float | None) -> str:
    # None: a normalized job's model has no price, so the run's cost is unknown, not $0.
    return "unknown (no price for the model)" if amount is None else f"${amount:.4f}"


def format_plan(plan: BuildPlan) -> str:
    """The plan as `ledger submit` prints it: totals, one line per job, the estimated cost."""
    tokens = f"{plan.est_input_tokens:,} est. input tokens" if plan.cost else "tokens not counted"
    lines = [
        f"run {plan.run_name}: {len(plan.jobs)} job{'s' * (len(plan.jobs) != 1)}, "
        f"{plan.request_count:,} requests, {human_bytes(plan.bytes)}, {tokens}",
        f"  {plan.provider} {plan.endpoint}, model {plan.model}; files in {plan.run_dir}",
    ]
    columns = ["job", "shard", "model", "requests", "bytes", "est_tokens", "file"]
    rows = [
        [
            job.job_id,
            job.shard_index,
            job.model,
            job.requests,
            job.bytes,
            job.est_input_tokens if plan.cost else "",
            job.path.name,
        ]
        for job in plan.jobs
    ]
    lines.append(format_table(columns, rows))
    if plan.cost is None:
        lines.append("estimated cost: unknown (token counting was off)")
    else:
        lines.append(f"estimated cost: {plan.cost.describe()}")
    return "\n".join(lines)


def human_bytes(count: int) -> str:
    """`532 B`, `14.2 kB`, `199.8 MB` (decimal units, as the provider counts)."""
    size = float(count)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{count} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")
