"""Opening a ledger: engine, SQLite pragmas, write transactions, migrations to head.

`open_ledger()` is the one place a database is opened, and it always upgrades the schema to the
newest migration, so no user ever runs a migrate step by hand.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Double, create_engine, event, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

#: The database used when neither `--db` nor `LEDGER_DB` names one.
DEFAULT_DB = "ledger.db"

#: How long a writer waits for SQLite's write lock before giving up, in milliseconds.
SQLITE_BUSY_TIMEOUT_MS = 30_000


def resolve_url(target: str | os.PathLike[str] | None = None) -> str:
    """The SQLAlchemy URL for a path, a URL, `$LEDGER_DB` or the default `./ledger.db`."""
    chosen = str(target) if target else os.environ.get("LEDGER_DB") or DEFAULT_DB
    if "://" in chosen:
        return chosen
    return f"sqlite:///{Path(chosen).expanduser().resolve()}"


def sqlite_path(url: str) -> Path | None:
    """The file behind a SQLite URL, or None for any other database."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    return Path(parsed.database)


def create_ledger_engine(url: str) -> Engine:
    """An engine with the ledger's connection settings, without touching the schema."""
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's begin event issue BEGIN itself: pysqlite's own implicit BEGIN is
        # deferred, and deferred transactions let two processes read the same due row and both
        # claim it (measured). BEGIN IMMEDIATE takes the write lock up front instead.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def open_ledger(target: str | os.PathLike[str] | None = None) -> Engine:
    """Open (creating if needed) the ledger at `target` and upgrade it to the newest schema."""
    url = resolve_url(target)
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_ledger_engine(url)
    upgrade_to_head(engine)
    return engine


def alembic_config() -> Any:
    """An Alembic Config for the migrations shipped inside the package (no alembic.ini needed)."""
    from alembic.config import Config

    import migrations

    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    return config


def upgrade_to_head(engine: Engine) -> None:
    """Apply every migration not yet applied; a no-op on a current database."""
    from alembic import command

    config = alembic_config()
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        connection.commit()


def schema_revision(engine: Engine) -> str | None:
    """The Alembic revision the database is at (None before the first migration)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


class db_now(FunctionElement[float]):
    """The database's clock as Unix epoch seconds, so every machine agrees on time."""

    type = Double()
    inherit_cache = True
    name = "db_now"


@compiles(db_now, "sqlite")
def _db_now_sqlite(_element: db_now, _compiler: SQLCompiler, **_kw: Any) -> str:
    return "((julianday('now') - 2440587.5) * 86400.0)"


@compiles(db_now, "postgresql")
def _db_now_postgresql(_element: db_now, _compiler: SQLCompiler, **_kw: Any) -> str:
    return "CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)"


@compiles(db_now)
def _db_now_default(_element: db_now, _compiler: SQLCompiler, **_kw: Any) -> str:
    return "CAST(EXTRACT(EPOCH FROM CURRENT_TIMESTAMP) AS DOUBLE PRECISION)"


def read_db_now(connection: Connection) -> float:
    """The database's current time, read in its own statement."""
    return float(connection.execute(select(db_now())).scalar_one())
