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
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

import orjson
from sqlalchemy import select
from sqlalchemy.engine import Engine

from ledger.artifacts import ArtifactError, RecordedFile
from ledger.core.models import Job, Run
from ledger.core.states import State
from ledger.errors import InputError, LedgerError

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
)
#: The column `--with-input` adds last: the input row's own fields, as JSON text.
INPUT_COLUMN = "input"

FORMATS = ("jsonl", "csv")


@dataclass(frozen=True)
class ResultShard:
    """One normalized job's results file: in the artifact store, or (a job normalized before
    artifacts) a local path."""

    job_id: int
    file: RecordedFile


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


def line_key(raw: bytes) -> tuple[int, str]:
    """A result line's (line_number, custom_id), read from its bytes without parsing the line.

    Results are written by orjson with `RESULT_KEYS` in order, so a line starts with its
    custom_id (a JSON string, so an unescaped `","status":"` first ends it) and its top-level
    `line_number` is the last one in the line: the keys after it (`tool_calls`, `choices`) hold
    only strings under fixed keys. A line of any other shape is parsed whole.
    """
    end = raw.find(_CUSTOM_ID_END, _CUSTOM_ID_AT)
    at = raw.rfind(_LINE_NUMBER)
    if not raw.startswith(_CUSTOM_ID) or end < 0 or at < end:
        record = orjson.loads(raw)
        return record["line_number"], record["custom_id"]
    at += len(_LINE_NUMBER)
    stop = raw.find(b",", at)
    encoded = raw[_CUSTOM_ID_AT:end]
    custom_id = orjson.loads(raw[_CUSTOM_ID_AT - 1 : end + 1]) if b"\\" in encoded else encoded
    return int(raw[at:stop] if stop >= 0 else raw[at:].rstrip(b"}\r\n")), (
        custom_id if isinstance(custom_id, str) else custom_id.decode()
    )


def line_status(raw: bytes) -> str:
    """A result line's status, read from its bytes (the key after custom_id)."""
    end = raw.find(_CUSTOM_ID_END, _CUSTOM_ID_AT)
    if not raw.startswith(_CUSTOM_ID) or end < 0:
        return orjson.loads(raw)["status"]
    start = end + len(_CUSTOM_ID_END)
    return raw[start : raw.index(b'"', start)].decode()


_CUSTOM_ID = b'{"custom_id":"'
_CUSTOM_ID_AT = len(_CUSTOM_ID)
_CUSTOM_ID_END = b'","status":"'
_LINE_NUMBER = b',"line_number":'


def merged_lines(
    shards: Sequence[ResultShard], statuses: Collection[str] | None = None
) -> Iterator[bytes]:
    """Every result line of the shards in input order, the newest job's per request, as the
    stored bytes (newline included); only those with a status in `statuses` when given."""
    if len(shards) == 1:
        # One job's results are already in input order, one line per request: no merge.
        with shards[0].file.open() as file:
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


def merged_results(
    shards: Sequence[ResultShard], statuses: Collection[str] | None = None
) -> Iterator[tuple[bytes, dict[str, Any]]]:
    """Every result line of the shards in input order, the newest job's per request, as
    (raw line, record); only those with a status in `statuses` when given."""
    loads = orjson.loads
    for raw in merged_lines(shards, statuses):
        yield raw, loads(raw)


def csv_row(record: dict[str, Any]) -> list[Any]:
    """A result flattened to `CSV_COLUMNS`."""
    get = record.get
    usage = get("usage") or _NOTHING
    error = get("error") or _NOTHING
    # Nested values (json, tool_calls, choices) are one cell each, as JSON text.
    row = [
        get("line_number"),
        get("custom_id"),
        get("status"),
        get("http_status"),
        get("finish_reason"),
        get("text"),
        _json_text(get("json")),
        get("json_error"),
        get("refusal"),
        usage.get("input_tokens"),
        usage.get("output_tokens"),
        usage.get("cached_tokens"),
        usage.get("reasoning_tokens"),
        error.get("code"),
        error.get("message"),
        _json_text(get("tool_calls")),
        _json_text(get("choices")),
        get("model"),
        get("provider"),
        get("job_id"),
        get("batch_id"),
    ]
    row = ["" if cell is None else cell for cell in row]
    if INPUT_COLUMN in record:
        row.append(_json_text(record[INPUT_COLUMN]) or "")
    return row


_NOTHING: dict[str, Any] = {}


def _json_text(value: Any) -> str | None:
    return orjson.dumps(value).decode() if value is not None else None


def _check_whole(shard: ResultShard) -> None:
    """LedgerError unless the shard's results file is there (and, when stored, intact)."""
    if shard.file.path is not None:
        if not shard.file.path.is_file():
            raise LedgerError(f"results file of job {shard.job_id} is missing: {shard.file.path}")
        return
    try:
        shard.file.check_whole()
    except ArtifactError as error:
        raise type(error)(f"results of job {shard.job_id}: {error}") from None


def export_results(
    engine: Engine,
    run_name: str,
    out: BinaryIO,
    *,
    fmt: str = "jsonl",
    statuses: Collection[str] | None = None,
    with_input_rows: bool = False,
) -> ExportSummary:
    """Write a run's merged results to `out` as JSON lines (each shard's line verbatim) or CSV;
    with `with_input_rows`, each carries its input row as `input` (`ledger.results.with_input`)."""
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})")
    found = find_run_results(engine, run_name)
    # Checked before the first line is written, so a missing or damaged file never yields half
    # an output: a stored file is read through once, verified against its recorded sha256.
    for shard in found.shards:
        _check_whole(shard)
    written = 0
    rows = merged_results(found.shards, statuses)
    if with_input_rows:
        from ledger.results.with_input import input_rows, run_input, with_input

        rows = with_input(rows, input_rows(run_input(engine, run_name)))
    if fmt == "jsonl":
        # Without input rows each stored line is written as it is, never parsed.
        lines = (
            (raw for raw, _ in rows) if with_input_rows else merged_lines(found.shards, statuses)
        )
        for raw in lines:
            out.write(raw)
            written += 1
    else:
        text = io.TextIOWrapper(out, encoding="utf-8", newline="")
        try:
            writer = csv.writer(text)
            writer.writerow((*CSV_COLUMNS, INPUT_COLUMN) if with_input_rows else CSV_COLUMNS)
            for _, record in rows:
                writer.writerow(csv_row(record))
                written += 1
            text.flush()
        finally:
            text.detach()  # the caller owns `out`
    return ExportSummary(written, found.jobs_not_normalized)
