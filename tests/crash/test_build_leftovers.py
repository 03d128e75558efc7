"""A `ledger submit` killed mid-build leaves its staging directory; the next submit of the run,
or `ledger gc`, removes it, and never a build that is still running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner
from support.buildkit import prompts, write_jsonl

from cli import cli
from ledger.build.run_directory import OWNER_FILE, make_staging_dir, stale_staging_dirs

LEDGER = str(Path(sys.executable).parent / "ledger")


def killed_mid_build(folder: Path, run: str) -> Path:
    """Start `ledger submit` on a large input, `kill -9` it once its staging directory holds
    shards and a spool, and return that directory."""
    source = write_jsonl(folder / f"{run}.jsonl", prompts(100_000))
    command = [LEDGER, "submit", str(source), "--model", "gpt-4o-mini", "--dry-run"]
    builder = subprocess.Popen(
        command, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and builder.poll() is None:
            staging = list(folder.glob(f".ledger-build-{run}-*"))
            if (
                staging
                and (staging[0] / "spool.sqlite").exists()
                and any(staging[0].rglob("shard-*"))
            ):
                os.kill(builder.pid, signal.SIGKILL)
                builder.wait()
                return staging[0]
            time.sleep(0.01)
    finally:
        if builder.poll() is None:
            builder.kill()
            builder.wait()
    raise AssertionError("the build ended before it could be killed mid-way")


def invoke(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_the_next_submit_of_the_run_removes_a_killed_builds_staging(tmp_path: Path) -> None:
    """kill -9 mid-build, then submit the run again: it builds, and the leftover is gone."""
    leftover = killed_mid_build(tmp_path, "big")
    assert leftover.exists()
    small = write_jsonl(tmp_path / "small.jsonl", prompts(3))
    invoke("submit", str(small), "--run", "big", "--model", "gpt-4o-mini", "--dry-run")
    assert not leftover.exists()
    assert list(tmp_path.glob(".ledger-build-*")) == []


def test_gc_lists_then_removes_a_killed_builds_staging(tmp_path: Path) -> None:
    """`ledger gc --dry-run` names the leftover and keeps it; `ledger gc` removes it."""
    leftover = killed_mid_build(tmp_path, "big")
    listed = invoke("gc", "--dry-run")
    assert f"would remove {leftover}" in listed and "build process is gone" in listed
    assert leftover.exists()
    removed = invoke("gc")
    assert f"removed {leftover}" in removed
    assert not leftover.exists()
    assert "no build leftovers" in invoke("gc")


def test_gc_leaves_a_live_build_and_removes_an_old_unowned_one(tmp_path: Path) -> None:
    """A staging directory whose builder lives is kept; one with no owner, untouched for two
    days, goes."""
    live = make_staging_dir(tmp_path, "live")
    unowned = make_staging_dir(tmp_path, "old")
    (unowned / OWNER_FILE).unlink()
    two_days_ago = time.time() - 2 * 86400
    os.utime(unowned, (two_days_ago, two_days_ago))
    assert [leftover.path for leftover in stale_staging_dirs(tmp_path)] == [unowned]
    invoke("gc")
    assert live.exists() and not unowned.exists()
