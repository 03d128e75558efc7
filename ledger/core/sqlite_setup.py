"""How ledger opens a SQLite file: its pragmas, its write transactions, a fresh file's mode.

Split from `ledger.core.db`, which opens any database; this is what only SQLite needs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from ledger.errors import ConfigError

#: How long a writer waits for SQLite's write lock before giving up, in milliseconds.
SQLITE_BUSY_TIMEOUT_MS = 30_000

#: The execution option that makes a SQLite connection begin a deferred (reading) transaction
#: instead of BEGIN IMMEDIATE.
DEFERRED_BEGIN = "ledger_deferred_begin"


def readonly_sqlite_options(path: Path) -> dict[str, Any]:
    """Engine options that open the SQLite file at `path` for reading only."""
    import sqlite3
    from urllib.parse import quote

    uri = f"file:{quote(str(path))}?mode=ro"
    if not os.access(path.parent, os.W_OK) and not Path(f"{path}-shm").exists():
        # SQLite cannot read a WAL database without its -shm file, and cannot create one in a
        # folder it may not write. Nobody can be writing the database then (a writer would have
        # created it), so it is safe to read as immutable.
        uri += "&immutable=1"
    return {"creator": lambda: sqlite3.connect(uri, uri=True, check_same_thread=False)}


def configure_sqlite(engine: Engine, *, readonly: bool = False) -> None:
    """Give every connection of `engine` the ledger's pragmas and BEGIN IMMEDIATE writes."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's begin event issue BEGIN itself: pysqlite's own implicit BEGIN is
        # deferred, and deferred transactions let two processes read the same due row and both
        # claim it (measured). BEGIN IMMEDIATE takes the write lock up front instead.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        if not readonly:  # a read-only connection cannot change the journal mode
            _use_wal(cursor)
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # Reading needs no write lock, and must not wait for one another process holds.
        deferred = readonly or connection.get_execution_options().get(DEFERRED_BEGIN, False)
        connection.exec_driver_sql("BEGIN" if deferred else "BEGIN IMMEDIATE")


def _use_wal(cursor: Any) -> None:
    """Put the database in WAL mode (a setting the file keeps). On a fresh file, processes
    opening it at once race to switch it, and SQLite answers the losers "database is locked"
    at once, without its busy handler (seen in CI); they wait and look again, and find it done."""
    import sqlite3
    import time

    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def prepare_sqlite_file(path: Path) -> bool:
    """Check the path and create the file if missing, 0600: it holds every prompt's metadata,
    and SQLite gives its -wal and -shm files the database file's mode. True if created."""
    # SQLite itself only says "unable to open database file".
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory, not a ledger database file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"{path}: cannot create {path.parent} ({error.strerror})") from error
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        return False
    except OSError as error:
        raise ConfigError(f"{path}: cannot create the database file ({error.strerror})") from error
    return True
