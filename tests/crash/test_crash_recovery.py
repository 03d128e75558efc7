"""Crash safety, proven with real processes: `ledger reconcile` is killed at every step boundary
(and its replies are lost on the wire), restarted, and the emulator's own counters show exactly
one batch per job and every job final."""

from __future__ import annotations

import os
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from support.drivers import LEDGER, reconcile_process
from support.factories import add_built_job

from ledger.core.crashpoints import CRASH_POINTS
from ledger.core.db import open_ledger
from ledger.core.models import Job, JobEvent, Request

KILLED = 137


def reconcile(db: Path, emulator: Any, *extra: str, crash_at: str | None = None) -> Any:
    return reconcile_process(
        db, emulator.base_url, *extra, env={"OPENAI_API_KEY": "sk-test-crash"}, crash_at=crash_at
    )


def assert_one_batch_each_and_all_final(engine: Engine, emulator: Any, job_ids: list[int]) -> None:
    stats = emulator.stats()
    assert stats["batches"]["by_metadata"]["ledger_job"] == {str(j): 1 for j in job_ids}
    assert all(n == 1 for n in stats["files"]["by_name"].values()), stats["files"]["by_name"]
    with engine.connect() as connection:
        states = connection.execute(select(Job.state).where(Job.id.in_(job_ids))).scalars().all()
        statuses = set(connection.execute(select(Request.status)).scalars())
    assert set(states) == {"normalized"}
    assert statuses == {"succeeded"}


@pytest.fixture
def ledger_with_jobs(tmp_path: Path) -> tuple[Path, Engine, list[int]]:
    db = tmp_path / "ledger.db"
    engine = open_ledger(db)
    job_ids = [
        add_built_job(engine, tmp_path, "crash", [f"s{s}-{i}" for i in range(3)], shard_index=s)
        for s in (1, 2, 3)
    ]
    return db, engine, job_ids


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_killed_at_each_step_boundary_then_restarted(
    ledger_with_jobs: tuple[Path, Engine, list[int]], emulator: Any, point: str
) -> None:
    """SIGKILL-equivalent death at `point`, then a restart: one batch per job, all final."""
    db, engine, job_ids = ledger_with_jobs
    first = reconcile(db, emulator, "--until-done", crash_at=point)
    assert first.returncode == KILLED, first.stderr
    second = reconcile(db, emulator, "--until-done")
    assert second.returncode == 0, second.stderr
    assert_one_batch_each_and_all_final(engine, emulator, job_ids)


def test_the_server_created_the_batch_but_the_reply_was_lost(
    ledger_with_jobs: tuple[Path, Engine, list[int]], emulator: Any
) -> None:
    """Dropped replies to upload and create: the next process adopts what the server made."""
    db, engine, job_ids = ledger_with_jobs
    emulator.configure(
        faults=[
            {"kind": "drop_response", "route": "upload_file", "times": 1},
            {"kind": "drop_response", "route": "create_batch", "times": 2},
        ]
    )
    first = reconcile(db, emulator)  # one pass: replies lost, process exits
    assert first.returncode == 0, first.stderr
    with engine.connect() as connection:
        unrecorded = connection.execute(
            select(Job.id).where(Job.batch_id.is_(None), Job.submit_token.is_not(None))
        ).all()
    assert unrecorded, "no job was left with an unknown outcome"
    second = reconcile(db, emulator, "--until-done")
    assert second.returncode == 0, second.stderr
    assert emulator.stats()["faults"]["drop_response"] == 3
    assert_one_batch_each_and_all_final(engine, emulator, job_ids)


def test_two_reconcilers_at_once_over_200_jobs(tmp_path: Path, emulator: Any) -> None:
    """Two processes race over 200 jobs: one create per job, each step taken exactly once."""
    db = tmp_path / "ledger.db"
    engine = open_ledger(db)
    job_ids = [
        add_built_job(engine, tmp_path, "race", [f"r{s}"], shard_index=s) for s in range(1, 201)
    ]
    env = {**os.environ, "OPENAI_API_KEY": "sk-test-race"}
    env.pop("LEDGER_CRASH_AT", None)
    command = [
        LEDGER,
        "--db",
        str(db),
        "reconcile",
        "--until-done",
        "--poll-min",
        "0.02",
        "--poll-max",
        "0.1",
        "--interval",
        "0.05",
        "--concurrency",
        "8",
        "--base-url",
        emulator.base_url,
    ]
    workers = [
        subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [w.communicate(timeout=240) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    assert_one_batch_each_and_all_final(engine, emulator, job_ids)
    with engine.connect() as connection:
        steps = Counter(
            connection.execute(
                select(JobEvent.job_id, JobEvent.from_state, JobEvent.to_state)
            ).all()
        )
        actors = set(connection.execute(select(JobEvent.actor)).scalars())
    assert max(steps.values()) == 1, "a step was taken twice"
    assert len(actors - {"test"}) == 2, "both reconcilers should have done work"
