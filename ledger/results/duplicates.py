"""Within-run duplicates (`submit --reuse`): identical requests of one run are sent once, and
normalizing the job that sent the first copy answers every copy with it.

A duplicate's `requests` row names its first copy in `reused_from` and rides with that copy's job
(`ledger.build.reuse`), but its custom_id is in no shard. So, when a job is normalized, two small
hooks of `ledger.results.normalize` run:

- `copy_answers`, once the job's results file is written: each duplicate of a request in this job
  gets the first copy's result line, re-keyed to its own custom_id and line and carrying
  `reused_from`, merged in input order (a results file stays sorted: `ledger results` merges
  files by their order);
- in the job's closing transaction, `write_request_rows` (given the run) finds them again and
  each duplicate's row takes its first copy's outcome, at cost 0.0 (the first copy paid), and
  this job as its own (`ledger.results.request_rows.answer_duplicate_rows`).

A retry never sends a duplicate (`ledger.results.retry_select`): when its first copy is sent again,
the retry job's normalize answers the duplicates anew, and `ledger results` shows the newest.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from ledger.results.joinindex import JoinIndex
from ledger.results.linekeys import LineKey, line_key

#: A run's copies whose first copy is a request of the same run (cross-run reuses are not).
_DUPLICATES = text(
    "SELECT d.id, d.custom_id, d.line_number, s.id, s.custom_id FROM requests d "
    "JOIN requests s ON s.id = d.reused_from "
    "WHERE d.run_id = :run AND d.reused_from IS NOT NULL AND s.run_id = :run"
)


@dataclass(frozen=True)
class Duplicate:
    """A request answered by its first copy's send."""

    row_id: int
    custom_id: str
    line_number: int
    first_row_id: int
    first_custom_id: str


def copy_answers(
    engine: Engine, run_id: int, index: JoinIndex, results_path: Path
) -> list[Duplicate]:
    """Add a line for each duplicate of a request of this job to its results file (rewritten in
    input order); the duplicates answered. Nothing to do (one indexed query) for most runs."""
    with engine.connect() as connection:
        duplicates = find_duplicates(connection, run_id, index)
    if not duplicates:
        return []
    duplicates.sort(key=lambda d: (d.line_number, d.custom_id))
    merged = results_path.with_name(results_path.name + ".duplicates")
    with results_path.open("rb") as source, merged.open("wb") as out:
        for raw in _merged(source, duplicates):
            out.write(raw)
        out.flush()
        os.fsync(out.fileno())
    os.replace(merged, results_path)
    return duplicates


def find_duplicates(connection: Connection, run_id: int, index: JoinIndex) -> list[Duplicate]:
    """The run's within-run duplicates whose first copy is a request of this job's `index`."""
    found = [Duplicate(*row) for row in connection.execute(_DUPLICATES, {"run": run_id})]
    return [d for d in found if index.lookup(d.first_custom_id) is not None]


def _merged(source: Any, duplicates: list[Duplicate]) -> Iterator[bytes]:
    """The job's result lines with each duplicate's copy in its place (a duplicate comes after
    its first copy in the input, so the first copy's line is read before it is needed)."""
    wanted = {d.first_custom_id for d in duplicates}
    firsts: dict[str, bytes] = {}
    pending = iter(duplicates)
    upcoming = next(pending, None)
    for raw in source:
        key: LineKey = line_key(raw)
        while upcoming is not None and (upcoming.line_number, upcoming.custom_id) < key:
            yield _copy(firsts[upcoming.first_custom_id], upcoming)
            upcoming = next(pending, None)
        if key[1] in wanted:
            firsts[key[1]] = raw
        yield raw
    while upcoming is not None:
        yield _copy(firsts[upcoming.first_custom_id], upcoming)
        upcoming = next(pending, None)


def _copy(first: bytes, duplicate: Duplicate) -> bytes:
    record = orjson.loads(first)
    record.update(
        custom_id=duplicate.custom_id,
        line_number=duplicate.line_number,
        reused_from=duplicate.first_row_id,
    )
    return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
