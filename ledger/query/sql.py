"""Strictly read-only SQL over a ledger, for `ledger sql`, on SQLite and PostgreSQL alike.

Every query passes `ledger.query.sql_guard` first: exactly one statement, starting as a query.
Then each database adds its own fences.

SQLite: `mode=ro` alone is not enough (measured: it still allows `ATTACH` of a new file and
`VACUUM INTO`, and a query can undo `PRAGMA query_only`), so the file is opened read-only, an
authorizer allows only reading actions and the built-in functions on an allow-list (no
`fts3_tokenizer`, `load_extension`, `readfile`, ...), the attached-database limit is 0, and no
single value may exceed `MAX_VALUE_BYTES` (three 100 MB `zeroblob`s once took 5 GB).

PostgreSQL: the session starts with `default_transaction_read_only` on and a `statement_timeout`,
the transaction is `READ ONLY` and always rolled back, server-file, admin and lock functions are
refused by name, and the text goes to the server raw through the extended protocol (one
statement per message, so `select 1; commit; delete ...` is refused by the server too, and
`:word` inside a literal stays text).

On both, rows are streamed and cut at `max_rows` and `max_bytes` with a note saying so, and the
time budget covers running the query and fetching its rows.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ledger.core.db import create_ledger_engine, database_errors, parse_url, sqlite_path
from ledger.query.sql_guard import (
    SQLITE_ALLOWED_FUNCTIONS,
    QueryRefused,
    denied_postgres_function,
    statement_count,
    tokens,
)

#: Default time budget for one query, in seconds.
DEFAULT_TIME_BUDGET = 10.0
#: Rows returned at most unless `--max-rows` says otherwise.
DEFAULT_MAX_ROWS = 10_000
#: Bytes of values returned at most (text and blobs counted by length, numbers as 8).
DEFAULT_MAX_BYTES = 64 << 20
#: Largest single string or blob a SQLite query may build.
MAX_VALUE_BYTES = 16 << 20

_READING_ACTIONS = frozenset({sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_RECURSIVE})
_QUERY_WORDS = frozenset({"select", "with", "values"})
_FETCH_CHUNK = 500


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    #: Why the rows were cut short (a row or byte cap), None when every row is here.
    truncated: str | None = None
    limits: dict[str, int] = field(default_factory=dict)


def run_readonly_query(
    url: str,
    query: str,
    *,
    time_budget: float = DEFAULT_TIME_BUDGET,
    max_rows: int = DEFAULT_MAX_ROWS,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> QueryResult:
    """Run one read-only statement against the ledger at `url` and return its rows (at most
    `max_rows` rows and about `max_bytes` bytes of values)."""
    if max_rows < 1 or max_bytes < 1 or not time_budget > 0:
        raise QueryRefused("--max-rows, the byte cap and --time-budget must be more than 0")
    check_query(query)
    path = sqlite_path(url)
    if path is not None:
        return _run_sqlite(path, query, time_budget, max_rows, max_bytes)
    return _run_postgresql(url, query, time_budget, max_rows, max_bytes)


def check_query(query: str) -> None:
    """QueryRefused unless `query` is exactly one statement that starts as a query."""
    count = statement_count(query)
    first = next((text.lower() for kind, text in tokens(query) if kind not in _SKIPPED_TOKENS), "")
    if count != 1:
        raise QueryRefused("only one statement may be run at a time")
    if first not in _QUERY_WORDS:
        raise QueryRefused("only a single SELECT (or WITH ... SELECT / VALUES) query is allowed")


_SKIPPED_TOKENS = ("space", "line_comment", "block_comment")


def _authorize(action: int, _arg1: Any, arg2: Any, *_rest: Any) -> int:
    if action in _READING_ACTIONS:
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_FUNCTION and str(arg2).lower() in SQLITE_ALLOWED_FUNCTIONS:
        return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


def _run_sqlite(
    path: Path, query: str, time_budget: float, max_rows: int, max_bytes: int
) -> QueryResult:
    if not path.exists():
        raise QueryRefused(f"no ledger database at {path}")
    connection = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True)
    try:
        connection.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
        connection.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)
        connection.set_authorizer(_authorize)
        deadline = time.monotonic() + time_budget
        # Stays installed while rows are fetched, so the budget covers the fetch as well.
        connection.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
        try:
            cursor = connection.execute(query)
            columns = [d[0] for d in cursor.description or ()]
            rows, truncated = _take(_chunks(cursor), max_rows, max_bytes, deadline, time_budget)
        except sqlite3.ProgrammingError as error:
            if "one statement" in str(error):
                raise QueryRefused("only one statement may be run at a time") from None
            raise QueryRefused(str(error)) from None
        except sqlite3.DatabaseError as error:
            raise QueryRefused(_sqlite_reason(error, time_budget)) from None
        return QueryResult(columns, rows, truncated)
    finally:
        connection.close()


def _sqlite_reason(error: sqlite3.DatabaseError, time_budget: float) -> str:
    message = str(error)
    if message == "interrupted":
        return f"query stopped after its time budget of {time_budget:g} s"
    if "not authorized" in message:
        return "refused: ledger sql is read-only (writes and non-built-in functions are denied)"
    if "too big" in message:
        return f"refused: a value would exceed {MAX_VALUE_BYTES >> 20} MiB"
    return message


def _chunks(cursor: Any) -> Iterable[Sequence[Any]]:
    while True:
        chunk = cursor.fetchmany(_FETCH_CHUNK)
        if not chunk:
            return
        yield chunk


def _take(
    chunks: Iterable[Sequence[Any]],
    max_rows: int,
    max_bytes: int,
    deadline: float,
    time_budget: float,
) -> tuple[list[tuple[Any, ...]], str | None]:
    """Rows from `chunks` up to the caps; the reason when cut short."""
    rows: list[tuple[Any, ...]] = []
    size = 0
    for chunk in chunks:
        for row in chunk:
            if len(rows) >= max_rows:
                return rows, f"cut at {max_rows} rows (--max-rows)"
            size += sum(_value_size(value) for value in row)
            if size > max_bytes:
                return rows, f"cut at {max_bytes} bytes of values"
            rows.append(tuple(row))
        if time.monotonic() > deadline:
            raise QueryRefused(f"query stopped after its time budget of {time_budget:g} s")
    return rows, None


def _value_size(value: Any) -> int:
    if isinstance(value, str | bytes | bytearray | memoryview):
        return len(value)
    return 8


def _run_postgresql(
    url: str, query: str, time_budget: float, max_rows: int, max_bytes: int
) -> QueryResult:
    denied = denied_postgres_function(query)
    if denied is not None:
        raise QueryRefused(f"refused: {denied}() is not available in ledger sql")
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.pool import NullPool

    parsed = parse_url(url)
    timeout_ms = max(1, int(time_budget * 1000))
    # Appended to whatever options the URL carries (a search_path, say) rather than replacing
    # them: the session itself refuses writes, whatever the statement tries.
    options = " ".join(
        part
        for part in (
            str(parsed.query.get("options") or ""),
            "-c default_transaction_read_only=on",
            f"-c statement_timeout={timeout_ms}",
            "-c idle_in_transaction_session_timeout=60000",
        )
        if part
    )
    readonly_url = parsed.update_query_dict({"options": options})
    engine = create_ledger_engine(
        readonly_url.render_as_string(hide_password=False), poolclass=NullPool
    )
    deadline = time.monotonic() + time_budget
    try:
        with database_errors(url), engine.connect() as connection:
            dbapi = connection.connection.dbapi_connection
            assert dbapi is not None
            try:
                connection.exec_driver_sql("SET TRANSACTION READ ONLY")
                cursor = dbapi.cursor()
                # psycopg's stream() sends the text as is through the extended protocol.
                stream = cursor.stream(query)  # type: ignore[attr-defined]
                rows, truncated = _take(
                    _batched(stream), max_rows, max_bytes, deadline, time_budget
                )
                columns = [d[0] for d in cursor.description or ()]
                if truncated:
                    # The server is still sending rows: stop it rather than drain them.
                    _cancel(dbapi, stream)
                cursor.close()
            except DBAPIError as error:
                raise QueryRefused(_first_line(error.orig)) from None
            except Exception as error:
                if type(error).__module__.startswith("psycopg"):
                    raise QueryRefused(_first_line(error)) from None
                raise
            finally:
                connection.rollback()
        return QueryResult(columns, rows, truncated)
    finally:
        engine.dispose()


def _cancel(dbapi: Any, stream: Any) -> None:
    cancel = getattr(dbapi, "cancel_safe", None) or dbapi.cancel
    cancel()
    with contextlib.suppress(Exception):  # the cancelled query's own error, expected
        stream.close()


def _batched(stream: Iterable[Any]) -> Iterable[Sequence[Any]]:
    chunk: list[Any] = []
    for row in stream:
        chunk.append(row)
        if len(chunk) >= _FETCH_CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _first_line(error: BaseException | None) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
