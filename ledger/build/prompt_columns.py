"""The commonest chunk without a request object per row: prompt rows with only the shared
parameters and no model column, all to the run's one `--model` target, no token counting, no
`--reuse`.

Such rows differ only in line, custom_id and text, so the chunk is made as columns (line numbers,
custom_ids, lines, reuse hashes) and checked, deduplicated and placed from them: the same lines,
hashes, spool rows, shards and problems as `RowMaker.requests` and `Streamer.steps` make of it,
without a `BatchRequest` per row and the passes over them (bench/build.py). A chunk holding any
other row, or one too large for a shard, goes their way instead (nothing done here first); so
does the first chunk, whose request checks give the answer the others then share
(`Streamer.accepted_by_provider`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ledger.build.body_hash import templated_line
from ledger.build.row_checks import RowProblem, plain_prompt
from ledger.build.targets import RowMaker

if TYPE_CHECKING:
    from ledger.build.streaming import Streamer


@dataclass(slots=True)
class PromptColumns:
    """A chunk of prompt rows to one target, a list per field, in input order."""

    line_numbers: list[int]
    custom_ids: list[str]
    lines: list[bytes]
    hashes: list[bytes]

    def without(self, places: set[int]) -> PromptColumns:
        """The columns without the rows at `places`."""
        kept = [place for place in range(len(self.lines)) if place not in places]
        return PromptColumns(
            [self.line_numbers[place] for place in kept],
            [self.custom_ids[place] for place in kept],
            [self.lines[place] for place in kept],
            [self.hashes[place] for place in kept],
        )


def take_prompt_columns(streamer: Streamer, records: list[tuple[int, Any, bytes]]) -> bool:
    """Make, check, deduplicate and place the chunk as columns when it can be, as
    `Streamer.steps` would: True when so taken, False (nothing done) when it must go that way."""
    maker = streamer.make
    if (
        not isinstance(maker, RowMaker)
        or streamer.counter is not None
        or streamer.reuser is not None
    ):
        return False
    route = maker.only_route
    if route is None or not maker.builders[0].plain:
        return False
    provider, model = route[0], route[1]
    # The shared answer of this target's bodies, once the first chunk's requests gave it.
    known = streamer.shared_checks.get((provider, model))
    if known is None or known[0] is not None or not streamer.unruled(provider):
        return False
    columns = prompt_columns(maker, records)
    limits = streamer.shards.limits_of(provider)
    if columns is None or max(map(len, columns.lines), default=0) >= limits.max_bytes:
        return False
    key = (provider, model)
    duplicates = streamer.spool.add_lines(
        key, columns.custom_ids, columns.line_numbers, columns.hashes
    )
    if duplicates:
        for place, first in duplicates:
            problem = RowProblem(f"duplicate of line {first}", "custom_id")
            streamer.reject(problem, columns.line_numbers[place])
        columns = columns.without({place for place, _ in duplicates})
    streamer.accepted += len(columns.lines)
    cap = maker.builders[0].shared_cap
    streamer.shards.place_lines(key, columns.lines, columns.line_numbers, cap)
    return True


def prompt_columns(maker: RowMaker, records: list[tuple[int, Any, bytes]]) -> PromptColumns | None:
    """The chunk's requests as columns when every record is a prompt row `RowMaker.requests`
    would make from the template of its one target (`RowMaker.only_route`); else None. The
    checks of a row are that method's, and so are its line and hash."""
    assert maker.only_route is not None and maker.only_route[3] is not None
    template = maker.only_route[3]
    if not maker.builders[0].templated:
        return None
    line_numbers: list[int] = []
    custom_ids: list[str] = []
    lines: list[bytes] = []
    hashes: list[bytes] = []
    add_number, add_id, add_line, add_hash = (
        line_numbers.append,
        custom_ids.append,
        lines.append,
        hashes.append,
    )
    for line_number, row, _raw in records:
        plain = plain_prompt(row, line_number)
        if plain is None or row.get("model") is not None:
            return None
        text, custom_id = plain
        line, digest = templated_line(template, custom_id, text)
        add_number(line_number)
        add_id(custom_id)
        add_line(line)
        add_hash(digest)
    return PromptColumns(line_numbers, custom_ids, lines, hashes)
