"""Crash safety on Mistral: a real `ledger reconcile` killed (-9) at each step boundary in turn
(one chain of processes, `support.crash_chain`) and finally run to the end leaves exactly one
remote job (and one upload) per ledger job, every request final, and the key in no output. The
orphaned upload and job are adopted by their tags (file name, job metadata), never made
twice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from support.crash_chain import crash_chain
from support.factories import add_built_job

from ledger.core.db import open_ledger
from ledger.core.models import Job, JobEvent, Request
from ledger.emulator import Emulator, EmulatorConfig

MODEL = "mistral-small-latest"
KEY = "mistral-LEAKCANARY-crash-0123456789"


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


def test_killed_at_each_step_boundary_then_restarted(tmp_path: Path, timed_emu: Emulator) -> None:
    """A real `ledger reconcile` dies at each point in turn (kill -9) and restarts: never a
    second upload or job for a shard, the orphans adopted, and in the end one job per shard."""
    db = tmp_path / "ledger.db"
    engine = open_ledger(db)
    job_ids = [
        mistral_job(engine, tmp_path, [f"s{s}-{i}" for i in range(2)], run="crash", shard_index=s)
        for s in (1, 2)
    ]

    def never_twice() -> None:
        stats = timed_emu.stats()
        assert all(n == 1 for n in stats["batches"]["by_input_filename"].values()), stats
        assert all(n == 1 for n in stats["files"]["by_name"].values()), stats

    runs = crash_chain(db, url(timed_emu), {"MISTRAL_API_KEY": KEY}, check=never_twice)
    one_job_per_shard(timed_emu, 2)
    with engine.connect() as connection:
        states = set(connection.execute(select(Job.state).where(Job.id.in_(job_ids))).scalars())
        request_statuses = set(connection.execute(select(Request.status)).scalars())
        events = connection.execute(select(JobEvent.to_state, JobEvent.detail)).all()
    assert states == {"normalized"} and request_statuses == {"succeeded"}
    adopted = [(to, (detail or {}).get("adopted")) for to, detail in events]
    assert ("uploaded", True) in adopted, "the orphaned upload (after_upload) was not adopted"
    assert ("submitted", True) in adopted, "the orphaned job (after_create) was not adopted"
    assert all(KEY not in run.stdout + run.stderr for run in runs)
