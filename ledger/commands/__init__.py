"""The `ledger` commands, a module per kind, each command a few lines over a library call.

`cli.py` holds the group (options every command shares, errors meeting exit codes) and adds the
commands of `read`, `run`, `retry` and `tools`. Like cli.py these modules import only click and
`ledger.settings` when loaded: every library module is imported inside the command that needs
it, so starting `ledger` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from ledger.config import LedgerConfig
    from ledger.spend import BudgetSource

# Choices click needs to build --help. They are spelled out here so that starting `ledger` loads
# neither the emulator nor the database layer; tests/unit/test_cli.py keeps each equal to
# the library's own (named in the comment).
#: ledger.emulator.SCENARIOS
EMULATOR_SCENARIOS = (
    "normal",
    "expire",
    "cancel",
    "fail_validation",
    "token_limit_exceeded",
    "request_failures",
    "all_fail",
    "slow_finalizing",
    "not_found_grace",
    "zipped_output",
    "duplicate_key",
    "unknown_key",
    "off_schema",
)
#: ledger.results.export.FORMATS
RESULT_FORMATS = ("jsonl", "csv", "parquet")
#: ledger.results.schema.STATUSES
RESULT_STATUSES = (
    "succeeded",
    "invalid",
    "truncated",
    "filtered",
    "failed",
    "expired",
    "cancelled",
    "missing",
    "unavailable",
)
#: ledger.query.sql.DEFAULT_TIME_BUDGET
SQL_TIME_BUDGET = 10.0
#: ledger.query.sql.DEFAULT_MAX_ROWS
SQL_MAX_ROWS = 10_000


def ledger_engine(ctx: click.Context, *, readonly: bool = False) -> Engine:
    """The ledger `--db` names, opened (created and migrated when needed; `readonly`: for
    reading only, see `open_ledger`)."""
    from ledger.artifacts import choose_store
    from ledger.core.db import open_ledger

    engine = open_ledger(ctx.obj["db"], readonly=readonly)
    choose_store(engine, ctx.obj.get("artifact_store"))
    return engine


def ledger_config(ctx: click.Context) -> LedgerConfig:
    """The settings `--config` (or ./ledger.toml) holds, read once by the group."""
    return ctx.obj["config"]


def ledger_budget(ctx: click.Context) -> BudgetSource:
    """ledger.toml's `[budget]`, re-read as the file changes (one source per command)."""
    from ledger.spend import BudgetSource

    if "budget" not in ctx.obj:
        ctx.obj["budget"] = BudgetSource(ledger_config(ctx))
    return ctx.obj["budget"]


def echo_transition(job_id: int, old: object, new: object) -> None:
    """Print one state change as a command that sends follows it."""
    click.echo(f"job {job_id}: {old} -> {new}")
