"""The last step of normalizing a job: every request row of the job takes its result's status,
HTTP status, error, tokens and cost, in the job's one closing transaction (`normalize._record`)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import bindparam, text, update
from sqlalchemy.engine import Connection

from ledger.core.models import COPY_OUTCOME_OF_SOURCE, OUTCOME_COLUMNS, Request
from ledger.results.duplicates import Duplicate
from ledger.results.joinindex import JoinIndex
from ledger.results.schema import SUCCEEDED

#: Requests are looked up and updated this many at a time: few round trips, bounded memory.
ROWS_PER_BATCH = 500


def write_request_rows(
    connection: Connection,
    index: JoinIndex,
    job_id: int,
    unanswered: tuple[str, dict[str, str | None]],
    duplicates: Sequence[Duplicate] = (),
) -> None:
    """Update the row of every input request in `index` for job `job_id`; a request no line
    answered takes the `unanswered` status and error. The run's within-run `duplicates` of these
    requests (`ledger.results.duplicates.find_duplicates`) take their answers too."""
    # The job's own rows keep their job_id: setting it anyway costs SQLite a foreign-key check
    # and an index update per row, half the transaction (bench/normalize.py). The rows a retry
    # took over are few: they are kept aside and updated after, in one pass over the index.
    taken_over: list[tuple[Any, ...]] = []
    own = _request_updates(index, job_id, unanswered, taken_over)
    _execute_many(connection, _UPDATE_OWN_REQUEST, own)
    _execute_many(connection, _UPDATE_REQUEST, taken_over)
    answer_duplicate_rows(connection, job_id, duplicates)


def answer_duplicate_rows(
    connection: Connection, job_id: int, duplicates: Sequence[Duplicate]
) -> None:
    """Each within-run duplicate's row takes its first copy's outcome (just written), at cost
    0.0 (the first copy paid), with this job as its own (`ledger.results.duplicates`)."""
    if not duplicates:
        return
    connection.execute(
        text(f"UPDATE requests SET {COPY_OUTCOME_OF_SOURCE}, job_id = :job WHERE id = :row"),
        [{"job": job_id, "row": d.row_id} for d in duplicates],
    )


_RESULT_VALUES = {column: bindparam(f"b_{column}") for column in OUTCOME_COLUMNS}
# A request row is taken by the job that carried it last: a row already updated by a newer job
# (a retry) is left alone, the same "newest job wins" rule `ledger results` applies.
_UPDATE_REQUEST = (
    update(Request)
    .where(Request.id == bindparam("b_row"), Request.job_id <= bindparam("b_job"))
    .values(job_id=bindparam("b_job"), **_RESULT_VALUES)
)
# A row still pointing at this job: the same update, its job_id left as it is. A newer job that
# took it over since it was read moved its job_id on, so the row is left alone as above.
_UPDATE_OWN_REQUEST = (
    update(Request)
    .where(Request.id == bindparam("b_row"), Request.job_id == bindparam("b_job"))
    .values(**_RESULT_VALUES)
)


#: The order of the values in a row update `_request_updates` yields.
_UPDATE_NAMES = ("b_row", "b_job", *(f"b_{column}" for column in OUTCOME_COLUMNS))


def _request_updates(
    index: JoinIndex,
    job_id: int,
    unanswered: tuple[str, dict[str, str | None]],
    taken_over_updates: list[tuple[Any, ...]],
) -> Iterator[tuple[Any, ...]]:
    """The updates of the rows still pointing at this job, in `_UPDATE_NAMES` order; those of
    the rows a retry took over are appended to `taken_over_updates` instead."""
    unanswered_status, unanswered_error = unanswered
    # What a request no line answered takes, the same for each.
    unanswered_values = (
        unanswered_status,
        None,
        *_code_and_message(unanswered_error),
        None,
        None,
        None,
    )
    record = index.record
    for _, _, request_row, _, parked, taken_over in index.in_order():
        if parked is None:
            update = (request_row, job_id, *unanswered_values)
        else:
            _, _, _, status, http_status, input_tokens, output_tokens, _, cost = parked
            # Only failures carry an error; their records are small, so read them back.
            error = orjson.loads(record(parked))["error"] if status != SUCCEEDED else None
            code, message = _code_and_message(error)
            update = (
                request_row,
                job_id,
                status,
                http_status,
                code,
                message,
                input_tokens,
                output_tokens,
                cost,
            )
        if taken_over:
            taken_over_updates.append(update)
        else:
            yield update


def _code_and_message(error: dict[str, str | None] | None) -> tuple[str | None, str | None]:
    return (error["code"], error["message"]) if error else (None, None)


def _execute_many(connection: Connection, statement: Any, rows: Iterable[tuple[Any, ...]]) -> None:
    # Straight to the driver's executemany, in batches: SQLAlchemy's per-row parameter handling
    # cost more than SQLite's own work for 50,000 rows (measured: 0.40 s against 0.21 s). A
    # positional driver (SQLite) takes the tuples reordered, a named one (psycopg) dicts.
    compiled = statement.compile(dialect=connection.dialect)
    names = compiled.positiontup if compiled.positional else None
    if names:
        as_params: Any = itemgetter(*(_UPDATE_NAMES.index(name) for name in names))
    else:
        as_params = lambda row: dict(zip(_UPDATE_NAMES, row, strict=True))  # noqa: E731
    batch: list[Any] = []
    for row in rows:
        batch.append(as_params(row))
        if len(batch) == ROWS_PER_BATCH:
            connection.exec_driver_sql(str(compiled), batch)
            batch = []
    if batch:
        connection.exec_driver_sql(str(compiled), batch)
