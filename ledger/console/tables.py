"""Tables, CSV and JSON rows, times, a job's history and the build's plan, as `ledger` prints
them. Only the standard library: the CLI and the build's plan print through it."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ledger.build.plan import BuildPlan


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


# -- show, history ---------------------------------------------------------------------------


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


def format_plan(plan: BuildPlan) -> str:
    """The plan as `ledger submit` prints it: totals, one line per job, the estimated cost."""
    tokens = f"{plan.est_input_tokens:,} est. input tokens" if plan.cost else "tokens not counted"
    if plan.cost and plan.tokens_approximate:
        tokens += " (approximate)"
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
            # A job of another provider than the run's (`--model PROVIDER:MODEL`) says which.
            job.model if job.provider in ("", plan.provider) else f"{job.provider}:{job.model}",
            job.requests,
            "" if job.reused else job.bytes,
            job.est_input_tokens if plan.cost else "",
            "(reused: not sent)" if job.reused else job.path.name,
        ]
        for job in plan.jobs
    ]
    lines.append(format_table(columns, rows))
    if plan.cost is None:
        lines.append("estimated cost: unknown (token counting was off)")
    else:
        lines.append(f"estimated cost: {plan.cost.describe()}")
    lines.extend(reuse_lines(plan))
    return "\n".join(lines)


def reuse_lines(plan: BuildPlan) -> list[str]:
    """What `--reuse` spared: requests answered from earlier runs and the money saved, and
    identical requests of the run answered by one send (nothing without either)."""
    lines = []
    if plan.reused_requests:
        saved = plan.saved.describe() if plan.saved is not None else "unknown (tokens not counted)"
        lines.append(
            f"reused: {plan.reused_requests:,} requests answered from earlier runs, not sent; "
            f"saved: {saved}"
        )
    if plan.duplicates:
        lines.append(
            f"duplicates: {plan.duplicates:,} requests identical to an earlier one of this run, "
            "answered by its one send"
        )
    return lines


def plan_fields(plan: BuildPlan, *, sent: bool, errors: list[str]) -> dict[str, Any]:
    """`submit --json`: the plan's figures, and whether its batches were sent."""
    cost = plan.cost
    return {
        "run": plan.run_name,
        "provider": plan.provider,
        "endpoint": plan.endpoint,
        "model": plan.model,
        "requests": plan.request_count,
        "bytes": plan.bytes,
        "estimated_cost_usd": None if cost is None else cost.total_usd,
        "reused": plan.reused_requests,
        "saved_usd": None if plan.saved is None else plan.saved.total_usd,
        "duplicates": plan.duplicates,
        "token_estimate": None if cost is None else plan.options.get("token_estimate"),
        "existing": plan.existing,
        "skipped": plan.skipped,
        "warnings": list(plan.warnings),
        "sent": sent,
        "errors": errors,
        "jobs": [
            {
                "job_id": job.job_id,
                "shard": job.shard_index,
                "provider": job.provider,
                "model": job.model,
                "requests": job.requests,
                "bytes": job.bytes,
                "est_input_tokens": job.est_input_tokens,
                "file": str(job.path),
                "reused": job.reused,
                "duplicates": job.duplicates,
            }
            for job in plan.jobs
        ],
    }


def human_bytes(count: int) -> str:
    """`532 B`, `14.2 kB`, `199.8 MB` (decimal units, as the provider counts)."""
    size = float(count)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{count} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")
