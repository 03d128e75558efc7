"""Crash safety on the compatible hosts: `ledger reconcile` killed right after the create (the
host runs the batch, the ledger does not know its id) and restarted leaves one batch per job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from support.drivers import reconcile_process
from support.factories import add_built_job
from support.hosts import HOST_CASES, HostCase

from ledger.core.db import open_ledger
from ledger.core.models import Job, Request

KILLED = 137


@pytest.mark.parametrize("point", ["after_upload", "after_create"])
@pytest.mark.parametrize("host", HOST_CASES, ids=[case.provider for case in HOST_CASES])
def test_killed_after_a_side_effect_then_restarted_leaves_one_batch_per_job(
    tmp_path: Path, emulator: Any, host: HostCase, point: str
) -> None:
    """Killed at `point`, restarted: each job adopted its file and batch; all normalized."""
    db = tmp_path / "ledger.db"
    engine = open_ledger(db)
    job_ids = [
        add_built_job(
            engine,
            tmp_path,
            "crash",
            [f"s{s}-{i}" for i in range(3)],
            shard_index=s,
            provider=host.provider,
        )
        for s in (1, 2)
    ]
    env = {host.key_env: host.key()}
    url = host.base_url(emulator)
    first = reconcile_process(db, url, "--until-done", env=env, crash_at=point)
    assert first.returncode == KILLED, first.stderr
    second = reconcile_process(db, url, "--until-done", env=env)
    assert second.returncode == 0, second.stderr
    stats = emulator.stats()
    assert sorted(stats["batches"]["by_input_filename"].values()) == [1, 1]
    assert stats["batches"]["created"] == len(job_ids)
    assert all(n == 1 for n in stats["files"]["by_name"].values())
    with engine.connect() as connection:
        states = set(connection.execute(select(Job.state)).scalars())
        statuses = set(connection.execute(select(Request.status)).scalars())
    assert states == {"normalized"} and statuses == {"succeeded"}
