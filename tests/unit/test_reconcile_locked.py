"""`reconcile --loop` survives another process holding SQLite's write lock past the busy
timeout: one log line per blocked pass, no traceback, and the loop goes on."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select
from support.factories import add_built_job

from adapters.fake import FakeProvider
from ledger.core import db, sqlite_setup
from ledger.core.models import Job
from ledger.reconcile.engine import ReconcileOptions, Reconciler


def test_the_loop_waits_out_a_held_write_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Passes blocked by another process's BEGIN IMMEDIATE are retried; the job then finishes."""
    monkeypatch.setattr(sqlite_setup, "SQLITE_BUSY_TIMEOUT_MS", 100)
    path = tmp_path / "ledger.db"
    engine = db.open_ledger(path)
    job_id = add_built_job(engine, tmp_path, "r", ["a"])
    provider = FakeProvider()
    options = ReconcileOptions(poll_min=0.0, poll_max=0.0, jitter=0.0)
    reconciler = Reconciler(engine, options, provider_for=lambda _n, _u: provider)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    failures: list[BaseException] = []

    def loop() -> None:
        try:
            reconciler.run_loop(interval=0.05, until_done=True)
        except BaseException as error:  # the assertion below reports it
            failures.append(error)

    caplog.set_level(logging.WARNING, logger="ledger.reconcile")
    running = threading.Thread(target=loop)
    running.start()
    time.sleep(1.0)  # several busy timeouts
    assert running.is_alive() and not failures
    holder.execute("COMMIT")
    holder.close()
    running.join(timeout=30)
    assert not running.is_alive() and not failures
    with engine.connect() as connection:
        assert connection.execute(select(Job.state).where(Job.id == job_id)).scalar() == (
            "normalized"
        )
    locked = [r for r in caplog.records if "database is locked" in r.getMessage()]
    assert locked and all(r.exc_info is None for r in locked)
    engine.dispose()
