"""Strictly read-only SQL over a ledger, for `ledger sql`.

`mode=ro` alone is not enough on SQLite (measured: it still allows `ATTACH` of a new file and
`VACUUM INTO`, and a query can undo `PRAGMA query_only`), so a query runs behind four fences:
the file is opened read-only, an authorizer allows only reading actions, the attached-database
limit is 0, and only statements that start as a query are accepted at all. A progress handler
stops a runaway query after a time budget.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ledger.core.db import create_ledger_engine, database_errors, sqlite_path
from ledger.errors import InputError

#: Default time budget for one query, in seconds.
DEFAULT_TIME_BUDGET = 10.0

_READING_ACTIONS = frozenset(
    {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
)
_QUERY_START = re.compile(
    r"^\s*(?:(?:--[^\n]*\n|/\*.*?\*/)\s*)*(select|with|values)\b", re.I | re.S
)


class QueryRefused(InputError, ValueError):
    """The query is not a single read-only statement, or ran past its time budget."""


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]


def run_readonly_query(
    url: str, query: str, *, time_budget: float = DEFAULT_TIME_BUDGET
) -> QueryResult:
    """Run one read-only statement against the ledger at `url` and return its rows."""
    if not _QUERY_START.match(query):
        raise QueryRefused("only a single SELECT (or WITH ... SELECT / VALUES) query is allowed")
    path = sqlite_path(url)
    if path is not None:
        return _run_sqlite(path, query, time_budget)
    return _run_other(url, query, time_budget)


def _authorize(action: int, *_args: Any) -> int:
    return sqlite3.SQLITE_OK if action in _READING_ACTIONS else sqlite3.SQLITE_DENY


def _run_sqlite(path: Path, query: str, time_budget: float) -> QueryResult:
    if not path.exists():
        raise QueryRefused(f"no ledger database at {path}")
    connection = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True)
    try:
        connection.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
        connection.set_authorizer(_authorize)
        deadline = time.monotonic() + time_budget
        connection.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
        try:
            cursor = connection.execute(query)
            rows = cursor.fetchall()
        except sqlite3.ProgrammingError as error:
            if "one statement" in str(error):
                raise QueryRefused("only one statement may be run at a time") from None
            raise QueryRefused(str(error)) from None
        except sqlite3.DatabaseError as error:
            if str(error) == "interrupted":
                raise QueryRefused(
                    f"query stopped after its time budget of {time_budget:g} s"
                ) from None
            if "not authorized" in str(error):
                raise QueryRefused("refused: ledger sql is read-only") from None
            raise QueryRefused(str(error)) from None
        columns = [d[0] for d in cursor.description or ()]
        return QueryResult(columns, rows)
    finally:
        connection.close()


def _run_other(url: str, query: str, time_budget: float) -> QueryResult:
    # PostgreSQL: a read-only transaction with a statement timeout, always rolled back.
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    engine = create_ledger_engine(url)
    try:
        with database_errors(url), engine.connect() as connection:
            connection.exec_driver_sql("SET TRANSACTION READ ONLY")
            connection.exec_driver_sql(f"SET LOCAL statement_timeout = {int(time_budget * 1000)}")
            try:
                result = connection.execute(text(query))
                columns = list(result.keys())
                rows: Sequence[Any] = result.all()
            except DBAPIError as error:
                message = str(error.orig).strip().splitlines()[0]
                raise QueryRefused(message) from None
            finally:
                connection.rollback()
        return QueryResult(columns, [tuple(row) for row in rows])
    finally:
        engine.dispose()
