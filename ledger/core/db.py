"""Opening a ledger: engine, SQLite pragmas, write transactions, migrations to head.

`open_ledger()` is the one place a database is opened, and it upgrades the schema to the newest
migration when the database is behind, so no user ever runs a migrate step by hand. It first reads
the recorded revision without taking any lock, and runs Alembic only when that differs from
`SCHEMA_HEAD`: opening a current ledger writes nothing. Concurrent upgrades of one PostgreSQL
database are serialized by an advisory lock, of a SQLite file by one BEGIN IMMEDIATE transaction
around the whole upgrade (`_migration_lock`). SQLite's own pragmas live in `sqlite_setup`.
`open_ledger(readonly=True)` is for commands that only read: SQLite opened `mode=ro` with deferred
transactions (so it answers while another process holds the write lock, and on a file it may not
write), PostgreSQL in read-only sessions; a schema that is behind is reported, never migrated.

It is also where a database ledger cannot use is reported: a URL, scheme, driver, path or schema
revision that is wrong raises ConfigError; a server that cannot be reached, StorageError. Either
is one line naming the database.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Double, create_engine, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from ledger.core.sqlite_setup import (
    DEFERRED_BEGIN,
    configure_sqlite,
    prepare_sqlite_file,
    readonly_sqlite_options,
)
from ledger.errors import ConfigError, StorageError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

#: The database used when neither `--db` nor `LEDGER_DB` names one.
DEFAULT_DB = "ledger.db"

#: The newest migration's revision. Asking Alembic costs importing it (about 0.1 s) on every
#: open; tests/unit/test_opening.py keeps this equal to the head of migrations/versions/.
SCHEMA_HEAD = "0011"

#: The PostgreSQL advisory lock held while migrating, so processes opening a fresh database at
#: once upgrade it one after the other instead of racing to create the same tables ("ledg").
MIGRATION_LOCK_ID = 0x6C656467

#: `user:password@` in a URL, whether or not SQLAlchemy can parse the rest.
_PASSWORD_IN_URL = re.compile(r"(://[^:/@]*:)[^@/]*@")


def resolve_url(target: str | os.PathLike[str] | None = None) -> str:
    """The SQLAlchemy URL for a path, a URL, `$LEDGER_DB` or the default `./ledger.db`."""
    chosen = str(target) if target else os.environ.get("LEDGER_DB") or DEFAULT_DB
    if "://" in chosen:
        return chosen
    return f"sqlite:///{Path(chosen).expanduser().resolve()}"


def parse_url(url: str) -> URL:
    """The SQLAlchemy URL `url` spells; ConfigError when it spells none."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url)
    except ArgumentError:
        raise ConfigError(
            f"{shown_url(url)}: not a database URL (give a path, sqlite:///PATH or "
            "postgresql+psycopg://USER@HOST/DATABASE)"
        ) from None


def shown_url(url: str | URL) -> str:
    """The URL as it may be printed: without its password, even when it does not parse."""
    if not isinstance(url, str):
        return url.render_as_string(hide_password=True)
    return _PASSWORD_IN_URL.sub(r"\1***@", url)


def _where(url: URL) -> str:
    """How an error names the database: a SQLite file by its path, any other by its URL."""
    if url.get_backend_name() == "sqlite" and url.database:
        return url.database
    return shown_url(url)


def sqlite_path(url: str) -> Path | None:
    """The file behind a SQLite URL, or None for any other database."""
    parsed = parse_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    return Path(parsed.database)


def create_ledger_engine(url: str, *, readonly: bool = False, **engine_options: Any) -> Engine:
    """An engine with the ledger's connection settings, without touching the schema;
    ConfigError for a scheme SQLAlchemy does not know or a driver that is not installed.
    `readonly`: every connection reads only (SQLite `mode=ro`, PostgreSQL read-only sessions).
    `engine_options` go to SQLAlchemy's `create_engine` (a pool class, say)."""
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    parsed = parse_url(url)
    if readonly:
        engine_options = {**engine_options, **_readonly_options(parsed)}
    try:
        engine = create_engine(parsed, **engine_options)
    except NoSuchModuleError:
        raise ConfigError(
            f"{shown_url(parsed)}: unknown database scheme {parsed.drivername!r} "
            "(ledger runs on sqlite:/// and postgresql+psycopg://)"
        ) from None
    except ImportError as error:
        postgresql = parsed.get_backend_name() == "postgresql"
        hint = "; pip install 'llm-batch-ledger[postgres]'" if postgresql else ""
        raise ConfigError(
            f"{shown_url(parsed)}: the {parsed.drivername} driver is not installed ({error}){hint}"
        ) from error
    except ArgumentError as error:
        raise ConfigError(f"{shown_url(parsed)}: {error}") from error
    if engine.dialect.name == "sqlite":
        configure_sqlite(engine, readonly=readonly)
    return engine


def _readonly_options(parsed: URL) -> dict[str, Any]:
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        return {"execution_options": {"postgresql_readonly": True}}
    if backend != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return {}
    return readonly_sqlite_options(Path(parsed.database))


def open_ledger(target: str | os.PathLike[str] | None = None, *, readonly: bool = False) -> Engine:
    """Open the ledger at `target`, upgrading it to the newest schema when it is behind.

    `readonly`: open it for reading only, and raise ConfigError when its schema is behind
    instead of migrating. A ledger that does not exist yet is created either way (so a first
    `ledger status` shows an empty ledger)."""
    url = resolve_url(target)
    path = sqlite_path(url)
    if path is not None:
        created = prepare_sqlite_file(path)
        if created and readonly:
            return open_ledger(target)
    engine = create_ledger_engine(url, readonly=readonly)
    try:
        revision = stored_revision(engine)
        if revision == SCHEMA_HEAD:
            return engine
        if readonly:
            if revision is None:  # an empty database: create the ledger, as a first open does
                engine.dispose()
                return open_ledger(target)
            _refuse_behind(engine, revision)
        upgrade_to_head(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine


def stored_revision(engine: Engine) -> str | None:
    """The revision(s) recorded in the database, read without taking a write lock (None for a
    database no migration has touched)."""
    from sqlalchemy import inspect, text

    with database_errors(engine.url), engine.connect() as connection:
        connection = connection.execution_options(**{DEFERRED_BEGIN: True})
        if not inspect(connection).has_table("alembic_version"):
            return None
        rows = connection.execute(text("SELECT version_num FROM alembic_version")).scalars()
        return ", ".join(sorted(rows)) or None


def _refuse_behind(engine: Engine, revision: str) -> None:
    from alembic.script import ScriptDirectory

    known = {
        script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()
    }
    if revision not in known:
        raise ConfigError(_unknown_revision(engine, f"schema revision {revision!r}"))
    raise ConfigError(
        f"{_where(engine.url)}: the schema is at revision {revision!r}, older than this "
        f"ledger's {SCHEMA_HEAD!r}; reading commands do not migrate it: run `ledger init`"
    )


def _unknown_revision(engine: Engine, known: str) -> str:
    return (
        f"{_where(engine.url)}: the database is at {known}, which this version of "
        "ledger does not know (did a newer ledger upgrade it?)"
    )


#: Words of a PostgreSQL server refusing what the URL names (a database, a user, a password), as
#: opposed to no server answering at all. libpq gives connection errors no SQLSTATE to go by.
_REFUSED_BY_SERVER = ("does not exist", "authentication failed", "password", "pg_hba.conf")


@contextmanager
def database_errors(url: str | URL) -> Iterator[None]:
    """Report the database failing to open as one line: ConfigError when the URL names
    something unusable (a file that is not a SQLite database, a PostgreSQL database or user the
    server refuses), StorageError when the database cannot be reached or used right now."""
    from sqlalchemy.exc import DatabaseError, OperationalError

    try:
        yield
    except DatabaseError as error:
        if type(error) not in (DatabaseError, OperationalError):
            raise  # an integrity or programming error is a bug, not the user's database
        parsed = parse_url(url) if isinstance(url, str) else url
        reason = _first_line(error.orig if error.orig is not None else error)
        if parsed.get_backend_name() == "sqlite":
            where = _where(parsed)
            if type(error) is DatabaseError:  # "file is not a database"
                raise ConfigError(f"{where}: not a SQLite database ({reason})") from error
            if "unable to open" in reason:
                raise ConfigError(f"{where}: cannot open the database file ({reason})") from error
            raise StorageError(f"{where}: {reason}") from error
        if any(words in reason for words in _REFUSED_BY_SERVER):
            raise ConfigError(f"{shown_url(parsed)}: {reason}") from error
        raise StorageError(f"{shown_url(parsed)}: cannot reach the database ({reason})") from error


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def alembic_config() -> Any:
    """An Alembic Config for the migrations shipped inside the package (no alembic.ini needed)."""
    from alembic.config import Config

    import migrations

    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    return config


def upgrade_to_head(engine: Engine) -> None:
    """Apply every migration not yet applied; a no-op on a current database. ConfigError when
    the database is at a revision these migrations do not know (a newer ledger's)."""
    from alembic import command
    from alembic.util.exc import CommandError

    config = alembic_config()
    with database_errors(engine.url), engine.connect() as connection:
        config.attributes["connection"] = connection
        with _migration_lock(connection):
            try:
                command.upgrade(config, "head")
            except CommandError as error:
                # The database records a revision none of our migrations has: a newer ledger
                # upgraded it, or it is not a ledger. Upgrading it anyway could only do harm.
                connection.rollback()
                revision = _recorded_revision(connection)
                known = f"schema revision {revision!r}" if revision else _first_line(error)
                raise ConfigError(_unknown_revision(engine, known)) from error
            connection.commit()


@contextmanager
def _migration_lock(connection: Connection) -> Iterator[None]:
    """Serialize migrations: a process that waited reads the recorded revision only after the
    one before it finished, and finds the work done.

    PostgreSQL: hold MIGRATION_LOCK_ID on the session. The lock is the session's, not the
    transaction's, so Alembic may commit as it goes.
    SQLite: one BEGIN IMMEDIATE transaction around the whole upgrade. Alembic runs each SQLite
    migration in a transaction of its own and reads the revision outside them, so two first
    opens could both read '0009' and the second fail to move it to '0010' (seen in CI). Given
    a transaction already begun, Alembic runs every migration inside it; SQLite's DDL is
    transactional, and the caller commits or rolls it back."""
    if connection.dialect.name == "sqlite":
        connection.begin()
        yield
        return
    if connection.dialect.name != "postgresql":
        yield
        return
    lock = {"id": MIGRATION_LOCK_ID}
    connection.exec_driver_sql("SELECT pg_advisory_lock(%(id)s)", lock)
    connection.commit()
    try:
        yield
    finally:
        connection.rollback()  # a failed migration leaves the transaction aborted
        connection.exec_driver_sql("SELECT pg_advisory_unlock(%(id)s)", lock)
        connection.commit()


def _recorded_revision(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return ", ".join(MigrationContext.configure(connection).get_current_heads()) or None


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
