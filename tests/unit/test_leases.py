"""Leases outside the happy path: `ledger cancel` takes over a dead owner's lease, and a step
slower than its lease keeps it by a heartbeat."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from support.factories import add_built_job

from adapters.base import RemoteFile
from adapters.fake import FakeProvider
from ledger.core.db import db_now
from ledger.core.models import Job
from ledger.core.states import State
from ledger.reconcile.cancel import cancel_jobs
from ledger.reconcile.engine import PassReport, ReconcileOptions, Reconciler


def exited_process_owner() -> str:
    return subprocess.run(
        [sys.executable, "-c", "from ledger.core.owner import process_owner as o; print(o())"],
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


def test_a_step_slower_than_its_lease_keeps_it(engine: Engine, tmp_path: Path) -> None:
    """An upload three times longer than the lease: the heartbeat keeps the lease, a second
    reconciler claims nothing, and the job is uploaded once."""
    provider = FakeProvider()
    upload = provider.upload_input

    def slow_upload(path: Path, *, filename: str) -> RemoteFile:
        time.sleep(3.0)
        return upload(path, filename=filename)

    provider.upload_input = slow_upload  # type: ignore[method-assign]
    options = ReconcileOptions(lease_seconds=1.0, states=(State.BUILT,), poll_min=0, jitter=0)
    first = Reconciler(engine, options, provider_for=lambda _n, _u: provider)
    second = Reconciler(engine, options, provider_for=lambda _n, _u: provider, owner="other")
    job_id = add_built_job(engine, tmp_path, "r", ["a"])
    reports: list[PassReport] = []
    running = threading.Thread(target=lambda: reports.append(first.run_pass()))
    running.start()
    time.sleep(2.0)  # twice the lease: without renewal it would have lapsed by now
    assert second.run_pass().claimed == 0
    running.join()
    assert reports[0].errors == []
    with engine.connect() as connection:
        row = connection.execute(select(Job.__table__).where(Job.id == job_id)).one()
    assert row.state == "uploaded" and row.lease_owner is None
    assert len(provider.files) == 1 and row.input_file_id in provider.files
