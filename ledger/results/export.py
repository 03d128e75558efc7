"""A run's results as one stream: its normalized shards merged back into input order.

Each shard's results file is already in input order, so a heap merge over the open files yields
the whole run in order while holding one line per shard. When a request was carried by several
jobs (a retry job reruns its parent's failed requests), the newest job's result wins: the job
created last, which has the highest id.
"""

from __future__ import annotations

import csv
import heapq
import io
import itertools
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import partial
from operator import itemgetter
from typing import Any, BinaryIO

import orjson
from sqlalchemy import select
from sqlalchemy.engine import Engine

from ledger.artifacts import CHUNK_BYTES, ArtifactError, RecordedFile
from ledger.core.models import Job, Run
from ledger.core.states import State
from ledger.errors import InputError, LedgerError
from ledger.results.linekeys import LineKey, first_and_last_keys, line_key, line_status

#: The columns of `ledger results --format csv`: the result flattened (no embeddings); new
#: columns go at the end, so a reader that indexes columns keeps working.
CSV_COLUMNS: tuple[str, ...] = (
    "line_number",
    "custom_id",
    "status",
    "http_status",
    "finish_reason",
    "text",
    "json",
    "json_error",
    "refusal",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "error_code",
    "error_message",
    "tool_calls",
    "choices",
    "model",
    "provider",
    "job_id",
    "batch_id",
    "reused_from",
)
#: The column `--with-input` adds last: the input row's own fields, as JSON text.
INPUT_COLUMN = "input"

FORMATS = ("jsonl", "csv", "parquet")


@dataclass(frozen=True)
class ResultShard:
    """One normalized job's results file: in the artifact store, or (a job normalized before
    artifacts) a local path."""

    job_id: int
    file: RecordedFile
    #: The keys of its first and last line, when known (read by `export_results`'s check).
    span: tuple[LineKey, LineKey] | None = None


@dataclass(frozen=True)
class RunResults:
    """Where a run's results are, and which of its jobs have none yet."""

    run_name: str
    shards: tuple[ResultShard, ...]
    #: Ids of the run's jobs not normalized yet: their requests are not in the results.
    jobs_not_normalized: tuple[int, ...]


@dataclass(frozen=True)
class ExportSummary:
    """What `export_results` wrote."""

    written: int
    jobs_not_normalized: tuple[int, ...]


def find_run_results(engine: Engine, run_name: str) -> RunResults:
    """The results files of a run's normalized jobs; `InputError` when there is no such run."""
    with engine.connect() as connection:
        run_id = connection.execute(select(Run.id).where(Run.name == run_name)).scalar()
        if run_id is None:
            raise InputError(f"no run named {run_name!r}")
        jobs = connection.execute(
            select(Job.id, Job.state, Job.results_ref, Job.results_path)
            .where(Job.run_id == run_id)
            .order_by(Job.id)
        ).all()
    shards = tuple(
        ResultShard(job_id, file)
        for job_id, state, ref, path in jobs
        if state == State.NORMALIZED.value
        and (file := RecordedFile.of(ref, path, engine)) is not None
    )
    pending = tuple(job_id for job_id, state, _, _ in jobs if state != State.NORMALIZED.value)
    return RunResults(run_name, shards, pending)


def _shard_keys(shard: ResultShard) -> Iterator[tuple[int, str, int, bytes]]:
    job = -shard.job_id
    with shard.file.open() as file:
        for raw in file:
            # Sorting by (line, custom_id, -job) puts a line's requests (one per model when the
            # run fans out) in custom_id order, the newest job's result for each first.
            line_number, custom_id = line_key(raw)
            yield line_number, custom_id, job, raw


def merged_lines(
    shards: Sequence[ResultShard], statuses: Collection[str] | None = None
) -> Iterator[bytes]:
    """Every result line of the shards in input order, the newest job's per request, as the
    stored bytes (newline included); only those with a status in `statuses` when given."""
    if _in_turn(shards):
        # Each job's results are in input order, one line per request, and no two jobs' lines
        # interleave (a run's first jobs are consecutive slices of its input): no merge.
        for shard in sorted(shards, key=lambda shard: shard.span or ()):
            with shard.file.open() as file:
                for raw in file:
                    if not statuses or line_status(raw) in statuses:
                        yield raw
        return
    last: tuple[int, str] | None = None
    for line_number, custom_id, _, raw in heapq.merge(*map(_shard_keys, shards)):
        if (line_number, custom_id) == last:
            continue  # an older job's result for a request a newer job carried again
        last = (line_number, custom_id)
        if statuses and line_status(raw) not in statuses:
            continue
        yield raw


def _in_turn(shards: Sequence[ResultShard]) -> bool:
    """Whether the shards' lines, taken shard after shard, are already in order."""
    if len(shards) == 1:
        return True
    spans = sorted(shard.span for shard in shards if shard.span is not None)
    if len(spans) < len(shards):
        return False
    return all(last < next_first for (_, last), (next_first, _) in itertools.pairwise(spans))


def merged_results(
    shards: Sequence[ResultShard], statuses: Collection[str] | None = None
) -> Iterator[tuple[bytes, dict[str, Any]]]:
    """Every result line of the shards in input order, the newest job's per request, as
    (raw line, record); only those with a status in `statuses` when given."""
    loads = orjson.loads
    for raw in merged_lines(shards, statuses):
        yield raw, loads(raw)


def csv_row(record: dict[str, Any]) -> list[Any]:
    """A result flattened to `CSV_COLUMNS` (with `input` last when the record has one)."""
    return ["" if cell is None else cell for cell in csv_cells(record)]


def csv_cells(record: dict[str, Any]) -> list[Any]:
    """`csv_row` with None for an empty cell, as `csv.writer` writes None."""
    try:
        values = _CSV_SOURCES(record)
    except KeyError:  # a record missing a key (never one the normalizer wrote)
        values = _CSV_SOURCES({**_NO_SOURCES, **record})
    (line, custom_id, status, http, finish, text, parsed, json_error, refusal) = values[:9]
    usage, error, tool_calls, choices, model, provider, job_id, batch_id, reused_from = values[9:]
    usage = usage or _NOTHING
    error = error or _NOTHING
    # Nested values (json, tool_calls, choices) are one cell each, as JSON text.
    row = [
        line,
        custom_id,
        status,
        http,
        finish,
        text,
        _json_text(parsed),
        json_error,
        refusal,
        usage.get("input_tokens"),
        usage.get("output_tokens"),
        usage.get("cached_tokens"),
        usage.get("reasoning_tokens"),
        error.get("code"),
        error.get("message"),
        _json_text(tool_calls),
        _json_text(choices),
        model,
        provider,
        job_id,
        batch_id,
        reused_from,
    ]
    if INPUT_COLUMN in record:
        row.append(_json_text(record[INPUT_COLUMN]))
    return row


_SOURCE_KEYS = (
    *("line_number", "custom_id", "status", "http_status", "finish_reason", "text", "json"),
    *("json_error", "refusal", "usage", "error", "tool_calls", "choices", "model", "provider"),
    *("job_id", "batch_id", "reused_from"),
)
_CSV_SOURCES = itemgetter(*_SOURCE_KEYS)
_NO_SOURCES: dict[str, Any] = dict.fromkeys(_SOURCE_KEYS)
_NOTHING: dict[str, Any] = {}


def _json_text(value: Any) -> str | None:
    return orjson.dumps(value).decode() if value is not None else None


def _check_whole(shard: ResultShard) -> ResultShard:
    """The shard, with the keys of its first and last line when it is stored; LedgerError
    unless its results file is there (and, when stored, intact)."""
    if shard.file.path is not None:
        if not shard.file.path.is_file():
            raise LedgerError(f"results file of job {shard.job_id} is missing: {shard.file.path}")
        return shard
    try:
        with shard.file.open() as stream:
            span = first_and_last_keys(iter(partial(stream.read, CHUNK_BYTES), b""))
    except ArtifactError as error:
        raise type(error)(f"results of job {shard.job_id}: {error}") from None
    return replace(shard, span=span)


def export_results(
    engine: Engine,
    run_name: str,
    out: BinaryIO,
    *,
    fmt: str = "jsonl",
    statuses: Collection[str] | None = None,
    with_input_rows: bool = False,
) -> ExportSummary:
    """Write a run's merged results to `out` as JSON lines (each shard's line verbatim), CSV or
    Parquet; with `with_input_rows`, each carries its input row as `input`
    (`ledger.results.with_input`)."""
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})")
    found = find_run_results(engine, run_name)
    # Checked before the first line is written, so a missing or damaged file never yields half
    # an output: a stored file is read through once, verified against its recorded sha256.
    shards = [_check_whole(shard) for shard in found.shards]
    written = 0
    rows = merged_results(shards, statuses)
    if with_input_rows:
        from ledger.results.with_input import input_rows, run_input, with_input

        rows = with_input(rows, input_rows(run_input(engine, run_name)))
    header = (*CSV_COLUMNS, INPUT_COLUMN) if with_input_rows else CSV_COLUMNS
    if fmt == "jsonl":
        # Without input rows each stored line is written as it is, never parsed.
        lines = (raw for raw, _ in rows) if with_input_rows else merged_lines(shards, statuses)
        for raw in lines:
            out.write(raw)
            written += 1
    elif fmt == "parquet":  # the CSV columns, typed, plus cost (ledger.results.parquet)
        from ledger.results.parquet import export_parquet

        records = (record for _, record in rows)
        written = export_parquet(engine, run_name, records, out, columns=header, cells=csv_cells)
    else:
        text = io.TextIOWrapper(out, encoding="utf-8", newline="")
        try:
            writer = csv.writer(text)
            writer.writerow(header)
            for _, record in rows:
                writer.writerow(csv_cells(record))
                written += 1
            text.flush()
        finally:
            text.detach()  # the caller owns `out`
    return ExportSummary(written, found.jobs_not_normalized)
