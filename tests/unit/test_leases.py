"""Leases outside the happy path: `ledger cancel` takes over a dead owner's lease, and a step
slower than its lease keeps it by a heartbeat."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy import update
from sqlalchemy.engine import Engine
from support.factories import add_built_job

from ledger.core.db import db_now
from ledger.core.models import Job
from ledger.reconcile.cancel import cancel_jobs


def exited_process_owner() -> str:
    return subprocess.run(
        [sys.executable, "-c", "from ledger.core.store import process_owner as o; print(o())"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def lease_to(engine: Engine, job_id: int, owner: str, seconds: float) -> None:
    with engine.begin() as connection:
        connection.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(lease_owner=owner, lease_expires_at=db_now() + seconds, fence=Job.fence + 1)
        )


def test_cancel_takes_over_the_lease_of_a_dead_reconciler(engine: Engine, tmp_path: Path) -> None:
    """A lease held by a process that has exited does not make `cancel` answer busy."""
    job_id = add_built_job(engine, tmp_path, "r", ["a"])
    lease_to(engine, job_id, exited_process_owner(), 900)
    outcomes = cancel_jobs(engine, [job_id], attempts=2)
    assert outcomes == {job_id: "cancelled (never submitted)"}


def test_cancel_still_waits_for_a_live_owner(engine: Engine, tmp_path: Path) -> None:
    """A lease whose owner cannot be proved dead is left alone."""
    job_id = add_built_job(engine, tmp_path, "r", ["a"])
    lease_to(engine, job_id, "another-host:1:1", 900)
    outcomes = cancel_jobs(engine, [job_id], attempts=2)
    assert outcomes[job_id].startswith("busy")
