"""Two `ledger retry` of one run at once: one records the retry jobs, the other ends with one
line (busy, or nothing left to retry), never a traceback or a clash over a temporary file."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from support.buildkit import query
from support.drivers import LEDGER

from cli import cli
from ledger import Ledger


def expired_run(tmp_path: Path, emulator: Any) -> None:
    """Run `partial`: 12 prompts in two jobs, normalized with part of them expired."""
    (tmp_path / "qs.jsonl").write_text(
        "".join(json.dumps({"id": f"q{i:03d}", "prompt": f"say {i}"}) + "\n" for i in range(12))
    )
    emulator.configure(scenario="expire")
    with Ledger.open(
        tmp_path / "ledger.db", base_url=emulator.base_url, poll_min=0, poll_max=0.05
    ) as ledger:
        ledger.submit(tmp_path / "qs.jsonl", run="partial", model="gpt-4o-mini", max_requests=6)
        ledger.reconcile(run="partial", until_done=True, timeout=60, interval=0.01, jitter=0.0)
        assert Counter(r.status for r in ledger.results("partial"))["expired"] > 0


def test_two_concurrent_retries_record_one_set_of_jobs(
    tmp_path: Path, emulator: Any, api_key: str
) -> None:
    """Both processes start together: exactly one records the retry jobs; the other says in one
    line that it is busy (exit 2) or that nothing is left to retry; no traceback from either."""
    expired_run(tmp_path, emulator)
    command = [LEDGER, "--db", str(tmp_path / "ledger.db"), "retry", "partial", "--dry-run"]
    processes = [
        subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    outcomes = sorted(
        (
            process.wait(timeout=60),
            process.stdout.read().decode(),  # type: ignore[union-attr]
            process.stderr.read().decode(),  # type: ignore[union-attr]
        )
        for process in processes
    )
    assert not any("Traceback" in err for _, _, err in outcomes), outcomes
    busy = [o for o in outcomes if o[0] == 2]
    if busy:  # they overlapped: the second was told so in one line
        [(_, _, message)] = busy
        assert message.splitlines() == [
            "error: busy: another `ledger retry` of run 'partial' is running; "
            "see `ledger status` once it ends"
        ]
    else:  # one after the other: the second found nothing left to retry
        assert [o[0] for o in outcomes] == [0, 0]
        assert sum("nothing to retry" in out for _, out, _ in outcomes) == 1, outcomes
    retries = query("SELECT count(*) AS n FROM jobs WHERE parent_job_id IS NOT NULL")
    assert retries[0]["n"] >= 1
    shards = query("SELECT shard_index FROM jobs ORDER BY shard_index")
    assert len({row["shard_index"] for row in shards}) == len(shards)
    assert list((tmp_path / "runs" / "partial").glob("**/*.partial")) == []


def test_a_retry_while_another_holds_the_run_is_busy(
    tmp_path: Path, emulator: Any, api_key: str
) -> None:
    """While another retry holds the run's lock, `ledger retry` says busy in one line, exit 2,
    and records nothing; once the lock is free, the retry goes ahead."""
    expired_run(tmp_path, emulator)
    lock = os.open(tmp_path / "runs" / "partial" / ".retry.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        held = CliRunner().invoke(cli, ["retry", "partial", "--dry-run"])
    finally:
        os.close(lock)
    assert held.exit_code == 2
    assert held.output.strip().splitlines() == [
        "error: busy: another `ledger retry` of run 'partial' is running; "
        "see `ledger status` once it ends"
    ]
    assert query("SELECT count(*) AS n FROM jobs WHERE parent_job_id IS NOT NULL") == [{"n": 0}]
    assert CliRunner().invoke(cli, ["retry", "partial", "--dry-run"]).exit_code == 0
