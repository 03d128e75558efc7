"""`ledger submit` (and `ledger send`) exit 1 when every job they sent failed, 0 when any got
through."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from cli import cli


def submit(tmp_path: Path, emulator: Any, *extra: str) -> Any:
    rows = "".join(json.dumps({"id": f"q{i}", "prompt": f"say {i}"}) + "\n" for i in range(3))
    (tmp_path / "qs.jsonl").write_text(rows)
    return CliRunner().invoke(
        cli,
        [
            "--db",
            str(tmp_path / "ledger.db"),
            "submit",
            str(tmp_path / "qs.jsonl"),
            "--model",
            "gpt-4o-mini",
            "--max-requests",
            "2",
            "--base-url",
            emulator.base_url,
            "--poll-min",
            "0",
            *extra,
        ],
    )


def test_submit_exits_1_when_the_provider_refuses_every_job(
    tmp_path: Path, emulator: Any, api_key: str
) -> None:
    """Every upload is refused (400): submit says so in one line and exits 1."""
    emulator.configure(max_upload_bytes=10)
    outcome = submit(tmp_path, emulator)
    assert outcome.exit_code == 1, outcome.output
    assert "error: every job sent failed (2); job 1: provider refused" in outcome.output
    assert "sent run" not in outcome.output


def test_submit_exits_0_when_one_job_of_two_got_through(
    tmp_path: Path, emulator: Any, api_key: str
) -> None:
    """The 2-request shard is refused, the 1-request shard is accepted: exit 0."""
    shard_bytes = [0, 0]
    outcome = submit(tmp_path, emulator, "--dry-run")
    assert outcome.exit_code == 0, outcome.output
    for index in (1, 2):
        shard = tmp_path / "runs" / "qs" / "batch_inputs" / f"shard-{index:04d}.jsonl"
        shard_bytes[index - 1] = shard.stat().st_size
    assert shard_bytes[0] > shard_bytes[1]
    emulator.configure(max_upload_bytes=shard_bytes[1])
    sent = CliRunner().invoke(
        cli,
        ["--db", str(tmp_path / "ledger.db"), "send", "qs", "--base-url", emulator.base_url],
    )
    assert sent.exit_code == 0, sent.output
    assert "job 1: built -> failed" in sent.output and "sent run qs" in sent.output


def test_retry_exits_1_when_the_provider_refuses_every_retry_job(
    tmp_path: Path, emulator: Any, api_key: str
) -> None:
    """A retry whose every job is refused says so in one line and exits 1, as submit does."""
    emulator.configure(scenario="expire")
    assert submit(tmp_path, emulator).exit_code == 0
    fast = ["--interval", "0.05", "--poll-min", "0", "--poll-max", "0.05"]
    reconciled = CliRunner().invoke(
        cli, ["--db", str(tmp_path / "ledger.db"), "reconcile", "--until-done", *fast]
    )
    assert reconciled.exit_code == 0, reconciled.output
    emulator.configure(scenario="normal", max_upload_bytes=10)
    retried = CliRunner().invoke(
        cli,
        ["--db", str(tmp_path / "ledger.db"), "retry", "qs", "--base-url", emulator.base_url],
    )
    assert retried.exit_code == 1, retried.output
    assert "error: every job sent failed" in retried.output
    assert "provider refused" in retried.output and "follows" not in retried.output
