"""Shard files: Batch API input files cut to the provider's limits, one provider and model per
file.

Each shard is written under a temporary name, fsynced and renamed, and hashed as it is written.
Requests go to the open shard of their (provider, model); when the next one would pass a limit
(requests, bytes, the optional token budget, embeddings inputs) that shard is finished and a new
one opened, within that provider's limits.
"""

from __future__ import annotations

import bisect
import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from operator import attrgetter
from pathlib import Path
from typing import IO, cast

from ledger.build.bodies import BatchRequest, RowProblem
from ledger.build.shard_limits import ShardLimits
from ledger.core.durable import fsync_directory

_PROVIDER = attrgetter("provider")
_PROVIDER_MODEL = attrgetter("provider", "model")
_LINE = attrgetter("line")
_TOKENS = attrgetter("est_tokens")
_INPUTS = attrgetter("inputs")
_CAP = attrgetter("max_output_tokens")
_NUMBER = attrgetter("line_number")


def _fitting(sums: Sequence[int], start: int, budget: int, per_item: int = 0) -> int:
    """The most items from `start` whose total stays within `budget`, `sums` being running
    totals (sums[i]: of the first i items; never decreasing) and each item adding `per_item`
    more (0 items when the budget is spent)."""
    low, high = 0, len(sums) - 1 - start
    base = sums[start]
    while low < high:  # the largest n with sums[start + n] - base + n * per_item <= budget
        middle = (low + high + 1) // 2
        if sums[start + middle] - base + middle * per_item <= budget:
            low = middle
        else:
            high = middle - 1
    return low


def shard_file_name(index: int) -> str:
    """`shard-0001.jsonl` for shard 1."""
    return f"shard-{index:04d}.jsonl"


@dataclass(frozen=True)
class Shard:
    """A finished shard file."""

    index: int
    model: str
    path: Path
    sha256: str
    bytes: int
    requests: int
    est_input_tokens: int
    #: Sum of the requests' max output tokens; None when one of them has no maximum.
    max_output_tokens: int | None
    #: The batch provider its job goes to ("": the run's).
    provider: str = ""


@dataclass
class _OpenShard:
    index: int
    model: str
    partial: Path
    handle: IO[bytes]
    provider: str
    limits: ShardLimits
    digest: hashlib._Hash = field(default_factory=hashlib.sha256)
    pending: list[bytes] = field(default_factory=list)
    bytes: int = 0
    requests: int = 0
    tokens: int = 0
    inputs: int = 0
    max_output_tokens: int | None = 0

    def flush(self) -> None:
        if self.pending:
            data = b"\n".join(self.pending) + b"\n"
            self.pending.clear()
            self.handle.write(data)
            self.digest.update(data)


class ShardSet:
    """The shards of one build, written into `directory`."""

    def __init__(
        self,
        directory: Path,
        limits: ShardLimits,
        first_index: int = 1,
        limits_for: Callable[[str], ShardLimits] | None = None,
    ) -> None:
        self.directory = directory
        self.limits = limits
        #: A provider's limits (`limits` for every provider when not given).
        self._limits_for = limits_for
        self._limits: dict[str, ShardLimits] = {}
        self.finished: list[Shard] = []
        self._open: dict[tuple[str, str], _OpenShard] = {}
        # A retry adds shards to a run that has some: its numbering goes on from theirs.
        self._next_index = first_index
        # Per (provider, model), the first line of each of its shards: a request's shard is
        # found by line.
        self._starts: dict[tuple[str, str], tuple[list[int], list[int]]] = {}
        directory.mkdir(parents=True, exist_ok=True)

    def limits_of(self, provider: str) -> ShardLimits:
        """What one shard of `provider` may hold."""
        found = self._limits.get(provider)
        if found is None:
            found = self.limits
            if self._limits_for is not None and provider:
                found = self._limits_for(provider)
            self._limits[provider] = found
        return found

    def all_fit(self, requests: Sequence[BatchRequest]) -> bool:
        """Whether every request fits into an empty shard of its provider on its own (False:
        the caller asks `ShardLimits.problem_with` of each); for requests of one provider
        found with no loop in Python."""
        providers = set(map(_PROVIDER, requests))
        if len(providers) == 1:
            limits = self.limits_of(providers.pop())
            tokens = [t for t in map(_TOKENS, requests) if t]
            return max(map(len, map(_LINE, requests))) < limits.max_bytes and (
                not tokens or limits.max_tokens is None or max(tokens) <= limits.max_tokens
            )
        provider, max_bytes, max_tokens = None, 0, 0.0
        for request in requests:
            if request.provider != provider:
                provider = request.provider
                limits = self.limits_of(provider)
                max_bytes = limits.max_bytes
                max_tokens = limits.max_tokens if limits.max_tokens is not None else float("inf")
            if len(request.line) >= max_bytes or (request.est_tokens or 0) > max_tokens:
                return False
        return True

    def fitting(
        self, requests: list[BatchRequest], reject: Callable[[RowProblem, int], None]
    ) -> list[BatchRequest]:
        """The requests that fit into an empty shard of their provider on their own; `reject`
        hears why each other one does not."""
        kept = []
        for request in requests:
            problem = self.limits_of(request.provider).problem_with(request)
            if problem is None:
                kept.append(request)
            else:
                reject(problem, request.line_number)
        return kept

    def place(self, requests: Sequence[BatchRequest]) -> None:
        """Append requests (in line order) to their (provider, model)'s shard, opening shards as
        needed: a chunk of one (provider, model) at once (`_place_lines`), a chunk of several
        (rows fanned out to several models, or naming theirs) a request at a time."""
        keys = set(map(_PROVIDER_MODEL, requests))
        if len(keys) == 1:
            tokens = list(map(_TOKENS, requests))
            self._place_lines(
                keys.pop(),
                list(map(_LINE, requests)),
                list(map(_NUMBER, requests)),
                list(map(_CAP, requests)),
                None if tokens.count(None) == len(tokens) else tokens,
                list(map(_INPUTS, requests)),
            )
        else:
            self._place_each(requests)
        for shard in self._open.values():
            shard.flush()

    def _place_each(self, requests: Sequence[BatchRequest]) -> None:
        """`place`, a request at a time (a new shard is opened as the one before it fills, so
        the shards of several (provider, model) are numbered in the order they are opened)."""
        limits = self.limits
        max_tokens = limits.max_tokens if limits.max_tokens is not None else float("inf")
        current: _OpenShard | None = None
        for request in requests:
            if (
                current is None
                or current.model != request.model
                or (current.provider != request.provider)
            ):
                current = self._open.get((request.provider, request.model))
                if current is not None:
                    limits = current.limits
            size = len(request.line) + 1
            tokens = request.est_tokens or 0
            if (
                current is None
                or current.requests + 1 > limits.max_requests
                or current.bytes + size > limits.max_bytes
                or current.tokens + tokens > max_tokens
                or current.inputs + request.inputs > limits.max_inputs
            ):
                if current is not None:
                    self._finish(current)
                current = self._start(request.provider, request.model, request.line_number)
                limits = current.limits
            current.pending.append(request.line)
            current.bytes += size
            current.requests += 1
            current.tokens += tokens
            current.inputs += request.inputs
            if current.max_output_tokens is not None:
                cap = request.max_output_tokens
                current.max_output_tokens = None if cap is None else current.max_output_tokens + cap

    def place_lines(
        self, key: tuple[str, str], lines: list[bytes], line_numbers: list[int], cap: int | None
    ) -> None:
        """`place` for requests of one (provider, model) given as their lines and input line
        numbers, each bounding its output to `cap`, no tokens counted, one input each."""
        self._place_lines(key, lines, line_numbers, [cap] * len(lines))
        for shard in self._open.values():
            shard.flush()

    def _place_lines(
        self,
        key: tuple[str, str],
        lines: list[bytes],
        line_numbers: list[int],
        caps: list[int | None],
        tokens: list[int | None] | None = None,
        inputs: list[int] | None = None,
    ) -> None:
        """Place consecutive requests of one (provider, model), given as their lines, input
        line numbers, output bounds, token counts (None: none counted) and inputs (None: one
        each): as many as fit go into its open shard at once, the rest into new ones.

        What fits is found on running totals (bytes with newlines, tokens, inputs), the same cut
        as adding them one at a time: a request goes into the open shard unless one of its limits
        would be passed, and a new shard takes its first request whatever its size
        (`within_limits` left out the ones no shard can hold)."""
        # Running totals from the run's start: sizes[i] is of the first i requests' lines.
        sizes = list(accumulate(map(len, lines), initial=0))
        token_sums = (
            None if tokens is None else list(accumulate((t or 0 for t in tokens), initial=0))
        )
        input_sums = range(len(lines) + 1) if inputs is None else [0, *accumulate(inputs)]
        max_tokens = self.limits.max_tokens
        start, count = 0, len(lines)
        while start < count:
            shard = self._open.get(key)
            took = self._room(shard, start, sizes, token_sums, input_sums, max_tokens)
            if took == 0:
                if shard is not None:
                    self._finish(shard)
                shard = self._start(key[0], key[1], line_numbers[start])
                took = max(1, self._room(shard, start, sizes, token_sums, input_sums, max_tokens))
            assert shard is not None
            end = min(start + took, count)
            shard.pending.extend(lines[start:end])
            shard.bytes += sizes[end] - sizes[start] + (end - start)
            shard.requests += end - start
            if token_sums is not None:
                shard.tokens += token_sums[end] - token_sums[start]
            shard.inputs += input_sums[end] - input_sums[start]
            if shard.max_output_tokens is not None:
                taken = caps[start:end]
                shard.max_output_tokens = (
                    None if None in taken else shard.max_output_tokens + sum(cast(list[int], taken))
                )
            start = end

    @staticmethod
    def _room(
        shard: _OpenShard | None,
        start: int,
        sizes: list[int],
        token_sums: list[int] | None,
        input_sums: Sequence[int],
        max_tokens: int | None,
    ) -> int:
        """How many of the run's requests from `start` on fit into `shard` (0: none, or no
        shard): the fewest any of its limits lets in."""
        if shard is None:
            return 0
        limits = shard.limits
        room = limits.max_requests - shard.requests
        # Bytes with a newline each: the first n from `start` take sizes[start + n] - sizes[start]
        # + n; as `sizes` only grows, the last n within the limit is found by bisection.
        room = min(room, _fitting(sizes, start, limits.max_bytes - shard.bytes, per_item=1))
        if token_sums is not None and max_tokens is not None:
            room = min(room, _fitting(token_sums, start, max_tokens - shard.tokens))
        return min(room, _fitting(input_sums, start, limits.max_inputs - shard.inputs))

    def open_index(self, model: str, provider: str = "") -> int:
        """The index of the shard `model`'s next request would join (the one now open)."""
        return self._open[provider, model].index

    def shard_of(self, key: tuple[str, str], line_number: int) -> int:
        """The index of the shard that holds the request of (provider, model) `key` from
        `line_number`."""
        lines, indexes = self._starts[key]
        return indexes[bisect.bisect_right(lines, line_number) - 1]

    def starts(self) -> Iterator[tuple[tuple[str, str], int, int]]:
        """((provider, model), first line, shard index) of every shard opened: a request of
        that provider and model from that line on belongs to that shard, up to the next one's
        first line (a row fanned out makes one request per target, so each line holds at most
        one request of a provider and model)."""
        for key, (lines, indexes) in self._starts.items():
            yield from ((key, line, index) for line, index in zip(lines, indexes, strict=True))

    def close(self) -> list[Shard]:
        """Finish every open shard; the shards in index order."""
        for shard in list(self._open.values()):
            self._finish(shard)
        fsync_directory(self.directory)
        return sorted(self.finished, key=lambda s: s.index)

    def _start(self, provider: str, model: str, line_number: int) -> _OpenShard:
        index = self._next_index
        self._next_index += 1
        partial = self.directory / f"{shard_file_name(index)}.partial"
        handle = open(partial, "wb")  # noqa: SIM115
        shard = _OpenShard(index, model, partial, handle, provider, self.limits_of(provider))
        self._open[provider, model] = shard
        lines, indexes = self._starts.setdefault((provider, model), ([], []))
        lines.append(line_number)
        indexes.append(index)
        return shard

    def _finish(self, shard: _OpenShard) -> None:
        shard.flush()
        shard.handle.flush()
        os.fsync(shard.handle.fileno())
        shard.handle.close()
        final = self.directory / shard_file_name(shard.index)
        os.replace(shard.partial, final)
        del self._open[shard.provider, shard.model]
        self.finished.append(
            Shard(
                index=shard.index,
                model=shard.model,
                path=final,
                sha256=shard.digest.hexdigest(),
                bytes=shard.bytes,
                requests=shard.requests,
                est_input_tokens=shard.tokens,
                max_output_tokens=shard.max_output_tokens,
                provider=shard.provider,
            )
        )

    def abandon(self) -> None:
        """Close open files without finishing them (the build failed)."""
        for shard in self._open.values():
            shard.handle.close()
