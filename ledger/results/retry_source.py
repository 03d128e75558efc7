"""What a retry reads: the parents' shards, line for line as they were sent, from the artifact
store and verified against their recorded sha256 (`ledger.results.retry`), so a retry needs no
run folder and runs on any machine that reaches the ledger."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from hashlib import sha256
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.engine import Engine

from ledger.artifacts import ArtifactCorrupt, ArtifactUnreachable, RecordedFile
from ledger.build.bodies import BatchRequest, ReadyLineChecker, RowProblem
from ledger.errors import InputError
from ledger.results.reask import with_output_budget


def requests_of(
    engine: Engine,
    parent: Any,
    lines: dict[str, tuple[int, int | None]],
    budget: int | None = None,
) -> Iterator[BatchRequest]:
    """The parent's shard lines for the custom_ids in `lines`, as they were sent (with the
    output `budget` when given: `ledger.results.reask`), in shard order, each carrying its line
    number in the user's input and its estimated tokens."""
    checker = ReadyLineChecker(parent.endpoint, None)
    path = Path(parent.input_path)
    shard = shard_lines(engine, parent)
    for shard_line, raw in enumerate(shard, start=1):
        line = raw.rstrip(b"\r\n")
        if not line:
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            for _ in shard:  # a damaged stored copy says so once read to its end
                pass
            raise InputError(f"{path}:{shard_line}: not JSON") from None
        custom_id = record.get("custom_id")
        if custom_id not in lines:
            continue
        line_number, tokens = lines[custom_id]
        if budget is not None and isinstance(record.get("body"), dict):
            record["body"] = with_output_budget(record["body"], parent.endpoint, budget)
            line = orjson.dumps(record)
        try:
            request = checker.request(record, line, line_number)
        except RowProblem as problem:
            raise InputError(f"{path}:{shard_line}: {problem}") from None
        yield replace(request, est_tokens=tokens, provider=parent.provider)


def shard_lines(engine: Engine, parent: Any) -> Iterator[bytes]:
    """The parent's shard as it was sent, line by line: from the artifact store, verified as it
    is read (ArtifactCorrupt before the end unless whole); for a job recorded before artifacts,
    its file on this machine, checked against the recorded sha256 the same way. The retry is
    recorded only once every line was read, so a damaged shard refuses the whole retry."""
    recorded = RecordedFile.of(parent.input_ref, parent.input_path, engine)
    assert recorded is not None  # input_path is never empty
    digest, size = sha256(), 0
    try:
        with recorded.open() as stream:
            for raw in stream:
                digest.update(raw)
                size += len(raw)
                yield raw
    except OSError as error:
        raise ArtifactUnreachable(
            f"job {parent.id}'s shard {recorded.name} cannot be read: {error.strerror or error}"
        ) from None
    if digest.hexdigest() != parent.input_sha256 or size != parent.input_bytes:
        raise ArtifactCorrupt(
            f"job {parent.id}'s shard {recorded.name} changed since it was sent (sha256 mismatch)"
        )
