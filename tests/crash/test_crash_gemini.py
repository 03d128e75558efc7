"""Crash safety on Gemini Batch Mode: a real `ledger reconcile` killed (`kill -9` by the crash
points) at every step boundary and restarted leaves exactly one uploaded file and one batch per
job, every job normalized, and the key in no output."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from support.drivers import reconcile_process
from support.factories import add_built_job

from ledger.core.crashpoints import CRASH_POINTS
from ledger.core.db import open_ledger
from ledger.core.models import Job, JobEvent, Request
from ledger.emulator import Emulator, EmulatorConfig

KEY = "AIzaSy-LEAKCANARY-gemini-crash-0123456789"
KILLED = 137


@pytest.fixture
def timed_emu() -> Iterator[Emulator]:
    """The emulator on the time clock, so a batch nobody polls still ends (orphans do)."""
    with Emulator(EmulatorConfig(stage_seconds=0.05)).start() as running:
        yield running


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_killed_at_each_step_boundary_then_restarted(
    tmp_path: Path, timed_emu: Emulator, point: str
) -> None:
    """Killed at `point`, restarted: one file and one batch per job, adopted not remade."""
    db = tmp_path / "ledger.db"
    engine = open_ledger(db)
    job_ids = [
        add_built_job(
            engine,
            tmp_path,
            "crash",
            [f"s{s}-{i}" for i in range(3)],
            shard_index=s,
            provider="gemini",
            model="gemini-2.5-flash",
        )
        for s in (1, 2)
    ]
    env = {"GEMINI_API_KEY": KEY, "LEDGER_GEMINI_INLINE_MAX_BYTES": "0"}  # the Files API path
    first = reconcile_process(db, timed_emu.url, "-v", "--until-done", env=env, crash_at=point)
    assert first.returncode == KILLED, first.stderr
    second = reconcile_process(db, timed_emu.url, "-v", "--until-done", env=env)
    assert second.returncode == 0, second.stderr
    state = timed_emu.gemini_api.state
    batches = Counter(b.display_name.rsplit("-", 1)[0] for b in state.batches.values())
    assert sorted(batches) == [f"ledger-job{i}" for i in job_ids] and set(batches.values()) == {1}
    uploads = Counter(
        str(f.display_name).split("-")[1] for f in state.files.values() if not f.generated
    )
    assert sorted(uploads) == [f"job{i}" for i in job_ids] and set(uploads.values()) == {1}
    with engine.connect() as connection:
        states = set(connection.execute(select(Job.state)).scalars())
        statuses = set(connection.execute(select(Request.status)).scalars())
        adopted = [
            detail["adopted"]
            for detail in connection.execute(
                select(JobEvent.detail).where(JobEvent.to_state == "submitted")
            ).scalars()
        ]
    assert states == {"normalized"} and statuses == {"succeeded"}
    if point == "after_create":
        assert adopted.count(True) >= 1, "the orphaned batch was not adopted"
    assert KEY not in first.stderr + first.stdout + second.stderr + second.stdout
