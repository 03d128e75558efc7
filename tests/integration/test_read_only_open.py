"""Reading commands open the ledger read-only: they answer while another process holds SQLite's
write lock, on a ledger file they may not write, and on PostgreSQL in a read-only session."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from ledger.core.db import open_ledger

LEDGER = [str(Path(sys.executable).parent / "ledger")]


def ledger(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`ledger ARGS` in a fresh process; a hung command fails the test in 20 s."""
    return subprocess.run(
        [*LEDGER, *args], cwd=cwd, capture_output=True, text=True, timeout=20, check=False
    )


def test_status_answers_while_another_process_holds_the_write_lock(tmp_path: Path) -> None:
    """With BEGIN IMMEDIATE held on the SQLite file, status, history and results still answer."""
    assert ledger("init", cwd=tmp_path).returncode == 0
    holder = sqlite3.connect(tmp_path / "ledger.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        for command in (["status"], ["history"], ["status", "--json"]):
            done = ledger(*command, cwd=tmp_path)
            assert done.returncode == 0, done.stderr
    finally:
        holder.execute("ROLLBACK")
        holder.close()


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file modes")
def test_status_works_on_a_read_only_ledger_in_a_read_only_folder(tmp_path: Path) -> None:
    """A ledger file 0444 in a folder 0555: status reads it."""
    folder = tmp_path / "ro"
    folder.mkdir()
    assert ledger("init", cwd=folder).returncode == 0
    (folder / "ledger.db").chmod(0o444)
    folder.chmod(0o555)
    try:
        done = ledger("status", cwd=folder)
        assert done.returncode == 0, done.stderr
    finally:
        folder.chmod(0o755)


def test_a_read_only_engine_cannot_write(db_url: str) -> None:
    """On either database, a read-only open refuses a write."""
    open_ledger(db_url).dispose()
    engine = open_ledger(db_url, readonly=True)
    try:
        with pytest.raises(DBAPIError, match=r"(?i)read-?only"), engine.begin() as connection:
            connection.execute(text("DELETE FROM jobs"))
    finally:
        engine.dispose()
