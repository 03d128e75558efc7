"""A build plan as `ledger submit` prints it."""

from __future__ import annotations

from ledger.build.plan import BuildPlan
from ledger.console import format_table


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
