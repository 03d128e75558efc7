"""A dry run stays dry even with a `reconcile --loop` running beside it, until `ledger send` (or a
submit of the same input without --dry-run) releases it. Counted at the emulator."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from support.buildkit import prompts, query, write_jsonl
from support.drivers import LEDGER

from cli import cli


def ledger(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def reconcile_loop(tmp_path: Path, emulator: Any) -> Any:
    """`ledger reconcile --loop` on the test's ledger, polling fast, stopped at the end."""
    env = {**os.environ, "OPENAI_API_KEY": "sk-test-dry"}
    env.pop("LEDGER_CRASH_AT", None)
    command = [LEDGER, "--db", str(tmp_path / "ledger.db"), "reconcile", "--loop"]
    command += ["--interval", "0.05", "--poll-min", "0.05", "--poll-max", "0.1"]
    command += ["--base-url", emulator.base_url]
    process = subprocess.Popen(
        command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    yield process
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr


def created(emulator: Any) -> int:
    return emulator.stats()["batches"]["created"]


def wait_for(condition: Any, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def dry_run(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-dry")
    write_jsonl("in.jsonl", prompts(3))
    args = ["submit", "in.jsonl", "--model", "gpt-4o-mini", "--max-requests", "2"]
    result = ledger(*args, "--base-url", emulator.base_url, "--dry-run")
    assert result.exit_code == 0, result.output


def test_a_running_loop_never_sends_a_dry_run_and_send_releases_it(
    emulator: Any, reconcile_loop: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loop runs through many passes after the dry run: no batch; `ledger send` sends both."""
    dry_run(emulator, monkeypatch)
    time.sleep(1.5)  # some thirty passes of the loop
    assert reconcile_loop.poll() is None
    assert created(emulator) == 0
    assert query("SELECT DISTINCT state FROM jobs") == [{"state": "built"}]
    result = ledger("send", "in", "--base-url", emulator.base_url)
    assert result.exit_code == 0, result.output
    assert "released 2 held job(s) of run in." in result.stdout
    # Once released, the running loop may take a job before `send` does: either sends it.
    wait_for(lambda: created(emulator) == 2)
    wait_for(lambda: query("SELECT DISTINCT state FROM jobs") == [{"state": "normalized"}])


def test_a_submit_without_dry_run_releases_and_sends_it(
    emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same input submitted again without --dry-run sends the held jobs."""
    dry_run(emulator, monkeypatch)
    result = ledger(
        "submit", "in.jsonl", "--model", "gpt-4o-mini", "--max-requests", "2",
        "--base-url", emulator.base_url,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert created(emulator) == 2
    assert query("SELECT held_reason FROM jobs") == [{"held_reason": None}] * 2
