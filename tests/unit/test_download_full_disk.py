"""A full disk during a download: the partial file is removed, the job waits with the reason
(one log line, no traceback), and once there is room again the job ends with every result."""

from __future__ import annotations

import errno
import logging
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from support.factories import add_built_job

from adapters.fake import FakeProvider
from ledger.core.models import Job, Request
from ledger.reconcile.engine import ReconcileOptions, Reconciler


def test_a_full_disk_during_a_download_leaves_no_partial_file_and_the_job_waits(
    engine: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The download writes half the file, then ENOSPC: nothing is left in downloads/, the job
    stays `completed` with the reason in last_error, logged as one line without a traceback."""
    provider = FakeProvider()
    reconciler = Reconciler(
        engine,
        ReconcileOptions(poll_min=0.0, poll_max=0.0, jitter=0.0),
        provider_for=lambda _n, _u: provider,
    )
    job_id = add_built_job(engine, tmp_path, "r", ["a", "b"])
    fetch = provider.download_file

    def disk_fills_up(file_id: str, destination: Path) -> int:
        content = provider.files[file_id][1]
        destination.write_bytes(content[: len(content) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(provider, "download_file", disk_fills_up)
    caplog.set_level(logging.WARNING, logger="ledger.reconcile")
    for _ in range(6):
        reconciler.run_pass()
    with engine.connect() as connection:
        state, last_error = connection.execute(
            select(Job.state, Job.last_error).where(Job.id == job_id)
        ).one()
    assert state == "completed"
    assert str(last_error).startswith(
        f"no space left on the device for the output file of job {job_id}"
    )
    downloads = tmp_path / "runs" / "r" / "downloads"
    assert list(downloads.iterdir()) == []
    full = [record for record in caplog.records if "no space left" in record.getMessage()]
    assert full and all(record.exc_info is None for record in full)
    assert all("\n" not in record.getMessage() for record in full)

    monkeypatch.setattr(provider, "download_file", fetch)  # room again
    for _ in range(3):
        reconciler.run_pass()
    with engine.connect() as connection:
        assert connection.execute(select(Job.state).where(Job.id == job_id)).scalar() == (
            "normalized"
        )
        statuses = connection.execute(select(Request.status)).scalars().all()
    assert sorted(statuses) == ["succeeded", "succeeded"]
