"""The join of a job's unordered provider lines to its input order, without holding the lines.

Each provider line is normalized once, as it is read, and its result record is appended to a
scratch spill file; the index keeps, per input position, where that record lies and the few
numbers the ledger's `requests` row needs. The results file is then written by walking the
positions in input order and reading each record back with `pread` (from the page cache, and
without mapping the file, so the spill never counts as this process's memory).

Holding the records in memory instead, up to a 32 MB budget, was measured and gains nothing: the
records fill fresh memory, whose page faults cost what the spill's writes and reads save (one
buffer: a 20 MB job in 0.20 s against 0.19 s spilled; a bytes object per record: 0.24 s against
0.20 s, as the memory parsing and serializing use is no longer reused).

Memory grows with the number of requests (a few hundred bytes each: the custom_id map and one
small tuple per parked result, so some 15 MB for the Batch API's 50,000), never with the size of
the files: a 200 MB output file is never in memory. `bench/normalize.py` measures it.
"""

from __future__ import annotations

import os
from array import array
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, NamedTuple

from ledger.errors import LedgerError

_NONE = -1  # "not attached yet" in the packed row and line number arrays

# A named tuple made from a plain one without the Python-level `__new__` its class call runs:
# the join makes a few for every one of 50,000 requests.
_new = tuple.__new__


class InputRequest(NamedTuple):
    """One input request as the index knows it."""

    position: int
    flags: int
    line_number: int
    #: The rank of the result already parked for it, or None when there is none yet.
    parked_rank: int | None


class Parked(NamedTuple):
    """Where a parked record lies in the spill file, and the columns the ledger takes from it."""

    offset: int
    length: int
    rank: int
    status: str
    http_status: int | None
    input_tokens: int | None
    output_tokens: int | None
    cached_tokens: int | None
    #: USD of this request at the job's model's price (None: no price).
    cost_usd: float | None = None


class OrderedRow(NamedTuple):
    """One input request, in input order, with its parked result if any."""

    position: int
    custom_id: str
    request_row: int
    line_number: int
    parked: Parked | None
    #: True when the ledger's row pointed at another job when attached (a retry's request).
    taken_over: bool = False


class JoinIndex:
    """Input requests by position and custom_id, and their results parked in a spill file.

    Fill it in phases: `add_input` for every input line and `inputs_complete`; `attach_row`
    from the ledger; `park` for every provider line and `finish_parking`; then read it.
    """

    def __init__(self, spill_path: Path) -> None:
        self._positions: dict[str, int] = {}
        self._custom_ids: list[str] = []
        self._flags = bytearray()
        self._request_rows = array("q")
        self._line_numbers = array("q")
        self._taken_over = bytearray()
        self._parked: list[Parked | None] = []
        self._conflicts: set[int] = set()
        self._spill: IO[bytes] = spill_path.open("w+b", buffering=1 << 20)
        self._spill_size = 0

    def __enter__(self) -> JoinIndex:
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the spill file (it goes with the caller's temporary directory)."""
        self._spill.close()

    def __len__(self) -> int:
        return len(self._custom_ids)

    def add_input(self, custom_id: str, flags: int) -> None:
        """Record the next input request; a custom_id seen before is an error."""
        if custom_id in self._positions:
            raise LedgerError(f"custom_id {custom_id!r} appears twice in the input")
        self._positions[custom_id] = len(self._custom_ids)
        self._custom_ids.append(custom_id)
        self._flags.append(flags)

    def inputs_complete(self) -> None:
        """Size the per-request columns once every input request is added."""
        count = len(self._custom_ids)
        self._request_rows = array("q", [_NONE]) * count
        self._line_numbers = array("q", [_NONE]) * count
        self._taken_over = bytearray(count)
        self._parked = [None] * count

    def custom_ids(self, start: int = 0, stop: int | None = None) -> list[str]:
        """The custom_ids of positions `start` to `stop`, in input order."""
        return self._custom_ids[start:stop]

    def attach_row(
        self, custom_id: str, request_row: int, line_number: int, *, taken_over: bool = False
    ) -> bool:
        """Attach the ledger's `requests` row and line number; False for an id not in the input.

        `taken_over`: the row points at another job (the one that first sent the request)."""
        position = self._positions.get(custom_id)
        if position is None:
            return False
        self._request_rows[position] = request_row
        self._line_numbers[position] = line_number
        self._taken_over[position] = taken_over
        return True

    def unattached(self, limit: int | None = None) -> list[str]:
        """The custom_ids with no ledger row attached, in input order (the first `limit`)."""
        missing = [self._custom_ids[p] for p, row in enumerate(self._request_rows) if row == _NONE]
        return missing[:limit]

    def lookup(self, custom_id: str) -> InputRequest | None:
        """The input request with this custom_id, or None when the input has no such request."""
        position = self._positions.get(custom_id)
        if position is None:
            return None
        parked = self._parked[position]
        rank = None if parked is None else parked.rank
        return _new(
            InputRequest, (position, self._flags[position], self._line_numbers[position], rank)
        )

    def park(
        self,
        position: int,
        record: bytes,
        rank: int,
        status: str,
        http_status: int | None,
        tokens: tuple[int | None, int | None, int | None, float | None],
    ) -> None:
        """Park the result record of the request at `position`, replacing any parked before.

        `tokens` are the input, output and cached tokens, and the request's cost in USD.
        """
        self._spill.write(record)
        length = len(record)
        parked = (self._spill_size, length, rank, status, http_status, *tokens)
        self._parked[position] = _new(Parked, parked)
        self._spill_size += length

    def note_conflict(self, position: int) -> None:
        """Remember that more than one line answered the request at `position`."""
        self._conflicts.add(position)

    def conflicts(self) -> list[str]:
        """The custom_ids answered by more than one line, in input order."""
        return [self._custom_ids[position] for position in sorted(self._conflicts)]

    def finish_parking(self) -> None:
        """Make every parked record readable (call once all lines are parked)."""
        self._spill.flush()

    def record(self, parked: Parked) -> bytes:
        """A parked record, read back from the spill file."""
        return os.pread(self._spill.fileno(), parked.length, parked.offset)

    def in_order(self) -> Iterator[OrderedRow]:
        """Every input request in input order, with its parked result (None when unanswered)."""
        columns = zip(
            range(len(self._custom_ids)),
            self._custom_ids,
            self._request_rows,
            self._line_numbers,
            self._parked,
            map(bool, self._taken_over),
            strict=True,
        )
        for row in columns:
            yield _new(OrderedRow, row)
