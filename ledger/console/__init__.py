"""What the `ledger` command prints: aligned tables, CSV and JSON rows, times, the status of runs,
a job's history, and the progress of `ledger reconcile` (a live `rich` table on a terminal, plain
lines otherwise, both from the same figures).

Only the standard library at import time: the CLI and the build's plan print through it, and
neither should pay for the database layer (or rich) to format a table.
"""

from __future__ import annotations

from ledger.console.prices import format_prices
from ledger.console.progress import (
    LiveDisplay,
    ProgressDisplay,
    RunWatch,
    install_stop_signals,
    progress_display,
    state_counts,
)
from ledger.console.status import JOB_STATUS_COLUMNS, RunProgress, format_status, run_progress
from ledger.console.tables import (
    format_csv,
    format_history,
    format_job,
    format_json_rows,
    format_plan,
    format_table,
    format_time,
    human_bytes,
    plan_fields,
)

__all__ = [
    "JOB_STATUS_COLUMNS",
    "LiveDisplay",
    "ProgressDisplay",
    "RunProgress",
    "RunWatch",
    "format_csv",
    "format_history",
    "format_job",
    "format_json_rows",
    "format_plan",
    "format_prices",
    "format_status",
    "format_table",
    "format_time",
    "human_bytes",
    "install_stop_signals",
    "plan_fields",
    "progress_display",
    "run_progress",
    "state_counts",
]
