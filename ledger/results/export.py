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
from operator import itemgetter
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

FORMATS = ("jsonl", "csv", "parquet")


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


def _shard_lines(shard: ResultShard) -> Iterator[tuple[int, str, int, bytes, dict[str, Any]]]:
    with shard.file.open() as file:
        for raw in file:
            record = orjson.loads(raw)
            # Sorting by (line, custom_id, -job) puts a line's requests (one per model when the
            # run fans out) in custom_id order, the newest job's result for each first.
            yield record["line_number"], record["custom_id"], -shard.job_id, raw, record


def merged_results(
    shards: Sequence[ResultShard], statuses: Collection[str] | None = None
) -> Iterator[tuple[bytes, dict[str, Any]]]:
    """Every result line of the shards in input order, the newest job's per request, as
    (raw line, record); only those with a status in `statuses` when given."""
    merged = heapq.merge(*(_shard_lines(shard) for shard in shards), key=itemgetter(0, 1, 2))
    last: tuple[int, str] | None = None
    for line_number, custom_id, _, raw, record in merged:
        if (line_number, custom_id) == last:
            continue  # an older job's result for a request a newer job carried again
        last = (line_number, custom_id)
        if statuses and record["status"] not in statuses:
            continue
        yield raw, record


def csv_row(record: dict[str, Any]) -> list[Any]:
    """A result flattened to `CSV_COLUMNS`."""
    usage = record.get("usage") or {}
    error = record.get("error") or {}
    flat = {
        **record,
        # Nested values are one cell each, as JSON text.
        **{key: _json_text(record.get(key)) for key in ("json", "tool_calls", "choices")},
        "input_tokens": usage.get("input_tokens"),
        "output_tokens": usage.get("output_tokens"),
        "cached_tokens": usage.get("cached_tokens"),
        "reasoning_tokens": usage.get("reasoning_tokens"),
        "error_code": error.get("code"),
        "error_message": error.get("message"),
    }
    row = ["" if flat.get(column) is None else flat[column] for column in CSV_COLUMNS]
    if INPUT_COLUMN in record:
        row.append(_json_text(record[INPUT_COLUMN]) or "")
    return row


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
    """Write a run's merged results to `out` as JSON lines (each shard's line verbatim), CSV or
    Parquet; with `with_input_rows`, each carries its input row as `input`
    (`ledger.results.with_input`)."""
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
    header = (*CSV_COLUMNS, INPUT_COLUMN) if with_input_rows else CSV_COLUMNS
    if fmt == "jsonl":
        for raw, _ in rows:
            out.write(raw)
            written += 1
    elif fmt == "parquet":  # the CSV columns, typed, plus cost (ledger.results.parquet)
        from ledger.results.parquet import export_parquet

        records = (record for _, record in rows)
        written = export_parquet(engine, run_name, records, out, columns=header, csv_row=csv_row)
    else:
        text = io.TextIOWrapper(out, encoding="utf-8", newline="")
        try:
            writer = csv.writer(text)
            writer.writerow(header)
            for _, record in rows:
                writer.writerow(csv_row(record))
                written += 1
            text.flush()
        finally:
            text.detach()  # the caller owns `out`
    return ExportSummary(written, found.jobs_not_normalized)
