"""SIGINT and SIGTERM stop `ledger reconcile --loop` cleanly: the current step finishes, every
lease is given back, and a later reconciler needs no takeover to go on."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from support.drivers import LEDGER
from support.factories import add_built_job

from ledger.core.db import open_ledger
from ledger.core.models import Job


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_finishes_the_step_and_releases_every_lease(
    tmp_path: Path, emulator: Any, signum: signal.Signals
) -> None:
    """Signalled mid-loop, the reconciler exits 0 with no lease left on any job."""
    emulator.configure(stage_seconds=60.0, polls_per_stage=None)  # batches stay in flight
    engine = open_ledger(tmp_path / "ledger.db")
    job_ids = [add_built_job(engine, tmp_path, "sig", [f"s{s}"], shard_index=s) for s in (1, 2, 3)]
    env = {**os.environ, "OPENAI_API_KEY": "sk-test-signal"}
    env.pop("LEDGER_CRASH_AT", None)
    process = subprocess.Popen(
        [
            LEDGER,
            "--db",
            str(tmp_path / "ledger.db"),
            "reconcile",
            "--loop",
            "--poll-min",
            "0.05",
            "--poll-max",
            "0.1",
            "--interval",
            "0.05",
            "--base-url",
            emulator.base_url,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while emulator.stats()["batches"]["created"] < len(job_ids):
        assert time.monotonic() < deadline and process.poll() is None, "jobs were not sent"
        time.sleep(0.05)
    time.sleep(0.3)  # let it poll a few times
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    with engine.connect() as connection:
        rows = connection.execute(select(Job.state, Job.lease_owner)).all()
    assert {state for state, _ in rows} <= {"submitted", "in_progress"}
    assert all(owner is None for _, owner in rows), rows
