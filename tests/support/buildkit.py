"""Helpers for the build tests: write inputs, run `ledger submit`, read back shards and rows."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result
from sqlalchemy import text

from cli import cli
from ledger.core.db import open_ledger


def submit(*args: str, send: bool = False) -> Result:
    """`ledger submit ARGS` in the current directory (tmp_path); builds only, unless `send`."""
    dry_run = [] if send or "--dry-run" in args else ["--dry-run"]
    return CliRunner().invoke(cli, ["submit", *args, *dry_run], catch_exceptions=False)


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> Path:
    """A JSONL file of `rows`."""
    path = Path(path)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def prompts(count: int, **extra: Any) -> list[dict[str, Any]]:
    """`count` simple rows with ids q1.. and short prompts."""
    return [{"id": f"q{i}", "prompt": f"What is {i} + {i}?", **extra} for i in range(1, count + 1)]


def shard_files(run: str, root: Path | None = None) -> list[Path]:
    """The shard files of a run, in order."""
    return sorted(((root or Path.cwd()) / "runs" / run / "batch_inputs").glob("shard-*.jsonl"))


def shard_lines(run: str, root: Path | None = None) -> list[list[dict[str, Any]]]:
    """Each shard's lines, parsed."""
    return [
        [json.loads(line) for line in path.read_text().splitlines()]
        for path in shard_files(run, root)
    ]


def query(sql: str, db: str | Path = "ledger.db") -> list[dict[str, Any]]:
    """Rows of a query on the ledger, as dicts."""
    engine = open_ledger(db)
    try:
        with engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(text(sql))]
    finally:
        engine.dispose()
