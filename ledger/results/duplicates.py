"""Within-run duplicates (`submit --reuse`): identical requests of one run are sent once, and
normalizing the job that sent the first copy answers every copy with it.

A duplicate's `requests` row names its first copy in `reused_from` and rides with that copy's job
(`ledger.build.reuse`), but its custom_id is in no shard. So, when a job is normalized, two small
hooks of `ledger.results.normalize` run:

- `find_duplicates`, once the provider lines are parked: the run's duplicates of this job's
  requests (one indexed query; none for most runs);
- `answering_duplicates`, while the job's results file is written: each duplicate of a request
  in this job gets the first copy's result line, re-keyed to its own custom_id and line and
  carrying `reused_from`, written in input order (a results file stays sorted: `ledger results`
  merges files by their order);
- in the job's closing transaction, `write_request_rows` (given them) gives each duplicate's
  row its first copy's outcome, at cost 0.0 (the first copy paid), and
  this job as its own (`ledger.results.request_rows.answer_duplicate_rows`).

A retry never sends a duplicate (`ledger.results.retry_select`): when its first copy is sent again,
the retry job's normalize answers the duplicates anew, and `ledger results` shows the newest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import orjson
from sqlalchemy import text
from sqlalchemy.engine import Connection

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


@contextmanager
def answering_duplicates(
    duplicates: list[Duplicate], write: Callable[[bytes], object]
) -> Iterator[Callable[[bytes], object]]:
    """A `write` for the job's result lines (in input order) that also writes, in its place, a
    line for each of the job's `duplicates`; with none (most runs), `write` itself."""
    if not duplicates:
        yield write
        return
    copies = _Copies(sorted(duplicates, key=lambda d: (d.line_number, d.custom_id)), write)
    yield copies.write
    copies.finish()


def find_duplicates(connection: Connection, run_id: int, index: JoinIndex) -> list[Duplicate]:
    """The run's within-run duplicates whose first copy is a request of this job's `index`."""
    found = [Duplicate(*row) for row in connection.execute(_DUPLICATES, {"run": run_id})]
    return [d for d in found if index.lookup(d.first_custom_id) is not None]


class _Copies:
    """Writes the job's lines through, each duplicate's copy in its place (a duplicate comes
    after its first copy in the input, so the first copy's line is seen before it is needed)."""

    def __init__(self, duplicates: list[Duplicate], write: Callable[[bytes], object]) -> None:
        self._write = write
        self._wanted = {d.first_custom_id for d in duplicates}
        self._firsts: dict[str, bytes] = {}
        self._pending = iter(duplicates)
        self._upcoming = next(self._pending, None)

    def write(self, raw: bytes) -> None:
        key: LineKey = line_key(raw)
        self._copies_before(key)
        if key[1] in self._wanted:
            self._firsts[key[1]] = raw
        self._write(raw)

    def finish(self) -> None:
        self._copies_before(None)

    def _copies_before(self, key: LineKey | None) -> None:
        while self._upcoming is not None and (
            key is None or (self._upcoming.line_number, self._upcoming.custom_id) < key
        ):
            upcoming = self._upcoming
            self._write(_copy(self._firsts[upcoming.first_custom_id], upcoming))
            self._upcoming = next(self._pending, None)


def _copy(first: bytes, duplicate: Duplicate) -> bytes:
    record = orjson.loads(first)
    record.update(
        custom_id=duplicate.custom_id,
        line_number=duplicate.line_number,
        reused_from=duplicate.first_row_id,
    )
    return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
