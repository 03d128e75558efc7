"""Crash safety on Gemini Batch Mode: a real `ledger reconcile` killed (`kill -9` by the crash
points) at every step boundary in turn (one chain of processes, `support.crash_chain`) and
finally run to the end leaves exactly one uploaded file and one batch per job, every job
normalized, the orphans adopted, and the key in no output. Inline jobs:
tests/integration/test_gemini_inline.py."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from support.crash_chain import crash_chain
from support.factories import add_built_job

from ledger.core.db import open_ledger
from ledger.core.models import Job, JobEvent, Request
from ledger.emulator import Emulator, EmulatorConfig

KEY = "AIzaSy-LEAKCANARY-gemini-crash-0123456789"


@pytest.fixture
def timed_emu() -> Iterator[Emulator]:
    """The emulator on the time clock, so a batch nobody polls still ends (orphans do)."""
    with Emulator(EmulatorConfig(stage_seconds=0.05)).start() as running:
        yield running


def test_killed_at_each_step_boundary_then_restarted(tmp_path: Path, timed_emu: Emulator) -> None:
    """Killed at each point in turn, restarted: never a second file or batch for a job, each
    orphan adopted not remade, and in the end one of each per job."""
    db = tmp_path / "ledger.db"
    engine = open_ledger(db)
    job_ids = [
        add_built_job(
            engine,
            tmp_path,
            "crash",
            [f"s{s}-{i}" for i in range(2)],
            shard_index=s,
            provider="gemini",
            model="gemini-2.5-flash",
        )
        for s in (1, 2)
    ]
    state = timed_emu.gemini_api.state

    def batches() -> Counter[str]:
        return Counter(b.display_name.rsplit("-", 1)[0] for b in state.batches.values())

    def uploads() -> Counter[str]:
        names = (str(f.display_name) for f in state.files.values() if not f.generated)
        return Counter(name.split("-")[1] for name in names)

    def at_most_one_each() -> None:
        assert set(batches().values()) <= {1} and set(uploads().values()) <= {1}

    env = {"GEMINI_API_KEY": KEY, "LEDGER_GEMINI_INLINE_MAX_BYTES": "0"}  # the Files API path
    runs = crash_chain(db, timed_emu.url, env, check=at_most_one_each)
    assert sorted(batches()) == [f"ledger-job{i}" for i in job_ids]
    assert sorted(uploads()) == [f"job{i}" for i in job_ids]
    with engine.connect() as connection:
        states = set(connection.execute(select(Job.state)).scalars())
        statuses = set(connection.execute(select(Request.status)).scalars())
        events = connection.execute(select(JobEvent.to_state, JobEvent.detail)).all()
    assert states == {"normalized"} and statuses == {"succeeded"}
    adopted = [(to, (detail or {}).get("adopted")) for to, detail in events]
    assert ("uploaded", True) in adopted, "the orphaned upload (after_upload) was not adopted"
    assert ("submitted", True) in adopted, "the orphaned batch (after_create) was not adopted"
    assert all(KEY not in run.stdout + run.stderr for run in runs)
