"""Crash safety on Mistral: a real `ledger reconcile` killed (-9) at each step boundary and
restarted leaves exactly one remote job (and one upload) per ledger job, every request final,
and the key in no output. The orphaned upload and job are adopted by their tags (file name,
job metadata), never made twice."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from support.drivers import reconcile_process as run_reconcile
from support.factories import add_built_job

from ledger.core.crashpoints import CRASH_POINTS
from ledger.core.db import open_ledger
from ledger.core.models import Job, JobEvent, Request
from ledger.emulator import Emulator, EmulatorConfig

MODEL = "mistral-small-latest"
KEY = "mistral-LEAKCANARY-crash-0123456789"
KILLED = 137


@pytest.fixture
def timed_emu() -> Any:
    """The emulator on the time clock, so a job nobody polls still ends (orphans do)."""
    with Emulator(EmulatorConfig(stage_seconds=0.05)).start() as running:
        yield running


def url(emulator: Emulator) -> str:
    return emulator.url + "/mistral/v1"


def mistral_job(engine: Engine, root: Path, ids: list[str], **kw: Any) -> int:
    return add_built_job(
        engine, root, kw.pop("run", "r"), ids, provider="mistral", model=MODEL, **kw
    )


def one_job_per_shard(emulator: Emulator, jobs: int) -> None:
    """Exactly `jobs` remote jobs, each over a different input file name, each file once."""
    stats = emulator.stats()
    assert stats["batches"]["created"] == jobs, stats
    assert sorted(stats["batches"]["by_input_filename"].values()) == [1] * jobs, stats
    assert all(n == 1 for n in stats["files"]["by_name"].values()), stats


def reconcile_process(
    db: Path, emulator: Emulator, *extra: str, crash_at: str | None = None
) -> subprocess.CompletedProcess[str]:
    return run_reconcile(
        db, url(emulator), "-v", *extra, env={"MISTRAL_API_KEY": KEY}, crash_at=crash_at
    )


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_killed_at_each_step_boundary_then_restarted(
    tmp_path: Path, timed_emu: Emulator, point: str
) -> None:
    """A real `ledger reconcile` dies at `point` (kill -9) and restarts: one job per shard."""
    db = tmp_path / "ledger.db"
    engine = open_ledger(db)
    job_ids = [
        mistral_job(engine, tmp_path, [f"s{s}-{i}" for i in range(3)], run="crash", shard_index=s)
        for s in (1, 2)
    ]
    first = reconcile_process(db, timed_emu, "--until-done", crash_at=point)
    assert first.returncode == KILLED, first.stderr
    second = reconcile_process(db, timed_emu, "--until-done")
    assert second.returncode == 0, second.stderr
    one_job_per_shard(timed_emu, 2)
    with engine.connect() as connection:
        states = set(connection.execute(select(Job.state).where(Job.id.in_(job_ids))).scalars())
        request_statuses = set(connection.execute(select(Request.status)).scalars())
        adopted = [
            detail["adopted"]
            for detail in connection.execute(
                select(JobEvent.detail).where(JobEvent.to_state == "submitted")
            ).scalars()
        ]
    assert states == {"normalized"} and request_statuses == {"succeeded"}
    if point == "after_create":
        assert adopted.count(True) >= 1, "the orphaned job was not adopted"
    assert KEY not in first.stderr + first.stdout + second.stderr + second.stdout
