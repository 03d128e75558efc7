"""The dashboard's only way into the database: a connection that cannot write.

SQLite: the file is opened with `mode=ro` (the OS-level guard) and `PRAGMA query_only` (SQLite's
own), and every page reads inside one deferred transaction, so its numbers come from one snapshot.
PostgreSQL: every session is `READ ONLY` and `REPEATABLE READ` (one snapshot per page), with a
statement timeout so a slow query cannot pin the server. Nothing here migrates: a ledger whose
schema is not current is refused, and `ledger init` (which may write) upgrades it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine

from ledger.core.db import alembic_config, schema_revision, sqlite_path
from ledger.errors import InputError

#: The longest one dashboard query may run on PostgreSQL, in milliseconds.
STATEMENT_TIMEOUT_MS = 10_000


def open_readonly(url: str) -> Engine:
    """A read-only engine on the ledger at `url`; InputError when there is no current ledger."""
    path = sqlite_path(url)
    engine = _sqlite_engine(path) if path is not None else _other_engine(url)
    _check_schema(engine, url)
    return engine


def _sqlite_engine(path: Path) -> Engine:
    if not path.exists():
        raise InputError(f"no ledger database at {path} (give --db, or create one: ledger init)")

    def connect() -> sqlite3.Connection:
        connection = sqlite3.connect(
            f"file:{quote(str(path))}?mode=ro", uri=True, check_same_thread=False
        )
        # BEGIN is issued by the begin event below, not by pysqlite's own implicit handling,
        # which never opens a transaction for a SELECT (and so gives no snapshot).
        connection.isolation_level = None
        connection.execute("PRAGMA query_only = ON")
        connection.execute("PRAGMA busy_timeout = 5000")
        return connection

    # The file URL (not `sqlite://`) keeps SQLAlchemy's pool for files; `creator` opens it.
    engine = create_engine(f"sqlite:///{path}", creator=connect)

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN")

    return engine


def _other_engine(url: str) -> Engine:
    engine = create_engine(url, isolation_level="REPEATABLE READ")

    @event.listens_for(engine, "connect")
    def _read_only_session(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        cursor.execute(f"SET statement_timeout = {STATEMENT_TIMEOUT_MS}")
        cursor.close()
        dbapi_connection.commit()

    return engine


def _check_schema(engine: Engine, url: str) -> None:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    try:
        current = schema_revision(engine)
    except Exception as error:
        engine.dispose()
        raise InputError(f"cannot read the ledger at {_shown(url)}: {error}") from None
    if current != head:
        engine.dispose()
        what = "has no ledger schema" if current is None else f"is at schema {current}"
        raise InputError(
            f"the database {_shown(url)} {what}, not {head}: run `ledger init` to create or "
            "upgrade it (the dashboard only reads)"
        )


def _shown(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
