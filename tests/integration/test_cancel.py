"""`ledger cancel`: unsent jobs are cancelled at once, live batches at the provider, and every
request ends accounted for once the reconciler has downloaded what finished."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from sqlalchemy import select

from cli import cli
from ledger import Ledger
from ledger.core.models import Job


def invoke(tmp_path: Path, *args: str) -> Any:
    return CliRunner().invoke(
        cli, ["--db", str(tmp_path / "ledger.db"), *args], catch_exceptions=False
    )


def write_prompts(path: Path, count: int) -> None:
    path.write_text(
        "".join(json.dumps({"id": f"q{i}", "prompt": f"hi {i}"}) + "\n" for i in range(count))
    )


def test_cancelling_a_run_before_it_is_sent(tmp_path: Path) -> None:
    """A built run is cancelled without any provider call; its requests end `cancelled`."""
    write_prompts(tmp_path / "in.jsonl", 3)
    assert (
        invoke(
            tmp_path, "submit", str(tmp_path / "in.jsonl"), "--model", "gpt-4o-mini", "--dry-run"
        ).exit_code
        == 0
    )
    result = invoke(tmp_path, "cancel", "in")
    assert result.exit_code == 0 and "cancelled (never submitted)" in result.output
    assert invoke(tmp_path, "reconcile").exit_code == 0
    with Ledger.open(tmp_path / "ledger.db") as ledger:
        statuses = [r.status for r in ledger.results("in")]
    assert statuses == ["cancelled"] * 3


def test_cancelling_live_batches_keeps_what_finished(
    tmp_path: Path, emulator: Any, api_key: str
) -> None:
    """In-flight batches are cancelled at the provider; finished requests keep their results."""
    emulator.configure(stage_seconds=0.0, polls_per_stage=2, partial_fraction=0.5)
    write_prompts(tmp_path / "in.jsonl", 8)
    sent = invoke(
        tmp_path,
        "submit",
        str(tmp_path / "in.jsonl"),
        "--model",
        "gpt-4o-mini",
        "--max-requests",
        "4",
        "--base-url",
        emulator.base_url,
        "--poll-min",
        "0",
    )
    assert sent.exit_code == 0, sent.output
    assert invoke(tmp_path, "reconcile", "--poll-min", "0").exit_code == 0  # now in progress
    result = invoke(tmp_path, "cancel", "in")
    assert result.exit_code == 0, result.output
    assert result.output.count("cancel requested") == 2
    done = invoke(
        tmp_path,
        "reconcile",
        "--until-done",
        "--poll-min",
        "0",
        "--poll-max",
        "0.05",
        "--interval",
        "0.02",
    )
    assert done.exit_code == 0, done.output
    with Ledger.open(tmp_path / "ledger.db") as ledger:
        results = list(ledger.results("in"))
        with ledger.engine.connect() as connection:
            states = connection.execute(select(Job.state, Job.provider_status)).all()
    assert states == [("normalized", "cancelled")] * 2
    assert len(results) == 8
    assert {r.status for r in results} <= {"succeeded", "cancelled"}
    assert any(r.status == "cancelled" for r in results)
    assert emulator.stats()["requests"]["cancel_batch"] == 2
