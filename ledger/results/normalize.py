"""Normalizing a downloaded job: exactly one result line per input request, in input order, one
shape whatever the endpoint, and the fate of every request recorded in the ledger.

The steps, a function each:

1. `_index_inputs`: read the job's input shard into a scratch join index (position, custom_id,
   what each request asked for).
2. `_attach_request_rows`: find each input request's `requests` row and its line number.
3. `_park_provider_lines`: read the output and error files once, normalizing each line as it is
   read (with the `ResultReader` of the job's provider) and parking the record by custom_id; a
   line naming no input request is quarantined.
4. `_write_results`: walk the inputs in order and write the results file into the artifact
   store, and its local copy (`ledger.results.results_file`); within-run duplicates
   (`submit --reuse`) take their first copy's answer (`ledger.results.duplicates`).
5. `_record`: one short transaction moves the job to `normalized` and updates every request row
   (`ledger.results.request_rows`).

A crash before step 5 commits leaves the job `downloaded` and its files merely rewritten by the
next attempt, so normalizing is idempotent. The rules (missing, quarantine, conflicts, failed
batches) are documented for users in `docs/results.md`; what a request no line answered ends as
is `ledger.results.unanswered`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import orjson
from sqlalchemy import bindparam, select
from sqlalchemy.engine import Engine

from ledger.artifacts import store_for
from ledger.core.durable import publish
from ledger.core.models import Request
from ledger.core.states import State
from ledger.core.store import Lease, advance
from ledger.errors import LedgerError
from ledger.results.duplicates import Duplicate, answering_duplicates, find_duplicates
from ledger.results.jobcontext import JobContext, load_job
from ledger.results.joinindex import InputRequest, JoinIndex
from ledger.results.quarantine import Quarantine
from ledger.results.request_rows import ROWS_PER_BATCH, write_request_rows
from ledger.results.results_file import results_file
from ledger.results.schema import (
    RANK,
    STATUSES,
    Answer,
    Outcome,
    UnreadableLine,
    build_result,
    request_flags,
    unanswered_result,
)
from ledger.usage.pricing import PriceTable, load_price_table, request_cost

#: How many custom_ids the event detail lists when lines conflict (the count is always whole).
CONFLICTS_LISTED = 20


@dataclass(frozen=True)
class NormalizeSummary:
    """What normalizing one job found and wrote."""

    job_id: int
    #: The local copy of the results in the run's folder (written only when `kept_locally`).
    results_path: Path
    #: Where the results are in the artifact store (what `ledger results` reads).
    results_ref: str
    #: False on a machine that does not hold the run's folder: the store alone has the results.
    kept_locally: bool
    #: Results per status; every status in `ledger.results.schema.STATUSES` is a key.
    counts: dict[str, int]
    quarantined: int
    #: The quarantine file, or None when no line was quarantined.
    quarantine_path: Path | None
    #: Requests answered by more than one line (the best line was kept).
    conflicts: int
    conflict_custom_ids: tuple[str, ...]
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    #: None when the price table has no price for the job's model.
    cost_usd: float | None


@dataclass
class _Tally:
    counts: dict[str, int]
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: float = 0.0


def normalize_job(
    engine: Engine,
    lease: Lease,
    job_id: int,
    *,
    workdir_for_results: str | os.PathLike[str] | None = None,
    prices: PriceTable | None = None,
    before_record: Callable[[], None] | None = None,
) -> NormalizeSummary:
    """Write a leased `downloaded` job's results file and move the job to `normalized`.

    The results go to `runs/<run>/results/shard-NNNN.jsonl` beside the job's input shard (or into
    `workdir_for_results`): one line per input request, in input order. `prices` overrides the
    price table (`ledger.usage.pricing`; default: the packaged one, with `$LEDGER_PRICES`).
    StaleWrite: the job is not `downloaded` or the lease was lost; LedgerError: the input or the
    ledger's request rows are inconsistent."""
    if lease.job_id != job_id:
        raise ValueError(f"lease is for job {lease.job_id}, not job {job_id}")
    job = load_job(engine, job_id)
    job = replace(job, price=(prices or load_price_table()).price_for(job.model, job.provider))
    run_dir = job.input_path.parent.parent
    # A copy of the results stays in the run's folder on the machine that holds it; any other
    # machine works in a scratch folder and leaves the results in the artifact store only.
    local = workdir_for_results is not None or run_dir.is_dir()
    results_dir = (
        Path(workdir_for_results) if workdir_for_results is not None else run_dir / "results"
    )
    stem = f"shard-{job.shard_index:04d}"
    results_path = results_dir / f"{stem}.jsonl"
    quarantine_path = results_dir / f"{stem}.quarantine.jsonl"
    if local:
        results_dir.mkdir(parents=True, exist_ok=True)
        # Leftovers of an attempt killed mid-way; a live attempt on this job holds a lost lease.
        for stale in results_dir.glob(f".normalize-{stem}-*"):
            shutil.rmtree(stale, ignore_errors=True)
    scratch = Path(
        tempfile.mkdtemp(prefix=f".normalize-{stem}-", dir=results_dir if local else None)
    )
    try:
        with JoinIndex(scratch / "records.spill") as index:
            try:
                _index_inputs(index, job, json_by_default=job.json_by_default)
            except LedgerError:
                # A line of a damaged stored shard may fail before the damage is read: say so.
                job.input.check_whole()
                raise
            _attach_request_rows(engine, index, job)
            quarantined = _park_provider_lines(index, job, scratch / "quarantine.jsonl")
            # Found once: their lines go into the results, their rows into the transaction.
            with engine.connect() as connection:
                duplicates = find_duplicates(connection, job.run_id, index)
            with (
                results_file(
                    store_for(engine), scratch, results_path if local else None
                ) as results,
                answering_duplicates(duplicates, results.write) as write,
            ):
                tally = _write_results(index, job, write)
            if local and quarantined:
                publish(scratch / "quarantine.jsonl", quarantine_path)
            elif local:
                quarantine_path.unlink(missing_ok=True)
            conflicts = index.conflicts()
            summary = NormalizeSummary(
                job_id=job.job_id,
                results_path=results_path,
                results_ref=results.ref,
                kept_locally=local,
                counts=tally.counts,
                quarantined=quarantined,
                quarantine_path=quarantine_path if quarantined and local else None,
                conflicts=len(conflicts),
                conflict_custom_ids=tuple(conflicts),
                input_tokens=tally.input_tokens,
                output_tokens=tally.output_tokens,
                cached_tokens=tally.cached_tokens,
                cost_usd=None if job.price is None else tally.cost_usd,
            )
            if before_record is not None:
                before_record()  # the crash-test hook: results written, nothing recorded yet
            _record(engine, lease, job, index, summary, duplicates)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return summary


def _index_inputs(index: JoinIndex, job: JobContext, *, json_by_default: bool) -> None:
    input_path = job.input.name
    with job.input.open() as file:
        for number, raw in enumerate(file, 1):
            if raw.isspace():
                continue
            try:
                line = orjson.loads(raw)
            except orjson.JSONDecodeError as error:
                raise LedgerError(f"{input_path}:{number}: not JSON ({error})") from None
            custom_id = line.get("custom_id") if isinstance(line, dict) else None
            if not isinstance(custom_id, str):
                raise LedgerError(f"{input_path}:{number}: no custom_id")
            body = line.get("body")
            index.add_input(custom_id, request_flags(body, json_by_default=json_by_default))
            job.schemas.add(body)
    index.inputs_complete()


def _attach_request_rows(engine: Engine, index: JoinIndex, job: JobContext) -> None:
    by_job = select(Request.id, Request.line_number, Request.custom_id).where(
        Request.run_id == job.run_id, Request.job_id == job.job_id
    )
    # A retry job's requests may still point at their first job: found by (run, custom_id).
    by_custom_id = select(Request.id, Request.line_number, Request.custom_id).where(
        Request.run_id == job.run_id, Request.custom_id.in_(bindparam("ids", expanding=True))
    )
    with engine.connect() as connection:
        for row_id, line_number, custom_id in connection.execute(by_job):
            index.attach_row(custom_id, row_id, line_number)
        left = index.unattached()
        for start in range(0, len(left), ROWS_PER_BATCH):
            ids = left[start : start + ROWS_PER_BATCH]
            for row_id, line_number, custom_id in connection.execute(by_custom_id, {"ids": ids}):
                index.attach_row(custom_id, row_id, line_number, taken_over=True)
    left = index.unattached()
    if left:
        raise LedgerError(
            f"job {job.job_id}: {len(left)} input requests have no row in `requests` "
            f"(first: {', '.join(left[:5])})"
        )


def _park_provider_lines(index: JoinIndex, job: JobContext, quarantine_path: Path) -> int:
    # The files are plain JSONL: a ZIP delivery was flattened (and capped) at download
    # (`ledger.reconcile.downloads.finish_download`).
    quarantine = Quarantine(quarantine_path)
    parse_line, lookup, park = job.reader.parse_line, index.lookup, _parker(index, job)
    try:
        for provider_file in job.provider_files:
            source = provider_file.name
            with provider_file.open() as file:
                for number, raw in enumerate(file, 1):
                    if raw.isspace():
                        continue
                    try:
                        outcome = parse_line(raw)
                    except UnreadableLine as error:
                        quarantine.add(source, number, None, str(error), raw)
                        continue
                    request = lookup(outcome.custom_id)
                    if request is None:
                        reason = "custom_id not in input"
                        quarantine.add(source, number, outcome.custom_id, reason, raw)
                        continue
                    park(request, outcome)
        index.finish_parking()
    finally:
        quarantine.close()
    return quarantine.count


def _parker(index: JoinIndex, job: JobContext) -> Callable[[InputRequest, Outcome], None]:
    """What parks each provider line's result, the job's constants bound once (it runs for
    every line: 50,000 in a full batch)."""
    read_body, validator, price = job.reader.read_body, job.schemas.validator, job.price
    model, provider, batch_id, job_id = job.model, job.provider, job.batch_id, job.job_id
    park_record, note_conflict, dumps = index.park, index.note_conflict, orjson.dumps

    def park(request: InputRequest, outcome: Outcome) -> None:
        position, flags, line_number, parked_rank = request
        body = outcome.body
        answer = read_body(body, flags) if body is not None else _NO_ANSWER
        record = build_result(
            outcome,
            answer,
            flags=flags,
            model=model,
            provider=provider,
            batch_id=batch_id,
            job_id=job_id,
            line_number=line_number,
            validator=validator(position),
        )
        status = record["status"]
        rank = RANK[status]
        if parked_rank is not None:
            note_conflict(position)
            if rank <= parked_rank:
                return
        usage = record["usage"]
        # Priced per request, from the body's own usage: cache writes and long-context bands
        # are per request, and the normalized usage keeps neither.
        cost = request_cost(price, None if body is None else body.get("usage"))
        tokens = (
            (usage["input_tokens"], usage["output_tokens"], usage["cached_tokens"], cost)
            if usage
            else (None, None, None, cost)
        )
        line = dumps(record, option=orjson.OPT_APPEND_NEWLINE)  # one write in the results
        park_record(position, line, rank, status, record["http_status"], tokens)

    return park


#: What a line with no 2xx body answers.
_NO_ANSWER = Answer()


def _write_results(index: JoinIndex, job: JobContext, write: Callable[[bytes], object]) -> _Tally:
    counts = dict.fromkeys(STATUSES, 0)
    input_tokens = output_tokens = cached_tokens = 0
    cost_usd = 0.0
    status, error = job.end.unanswered()
    record = index.record
    for _, custom_id, _, line_number, parked, _ in index.in_order():
        if parked is None:
            counts[status] += 1
            unanswered = unanswered_result(
                custom_id,
                status,
                error,
                model=job.model,
                provider=job.provider,
                batch_id=job.batch_id,
                job_id=job.job_id,
                line_number=line_number,
            )
            write(orjson.dumps(unanswered, option=orjson.OPT_APPEND_NEWLINE))
        else:
            counts[parked.status] += 1
            input_tokens += parked.input_tokens or 0
            output_tokens += parked.output_tokens or 0
            cached_tokens += parked.cached_tokens or 0
            cost_usd += parked.cost_usd or 0.0
            write(record(parked))
    return _Tally(counts, input_tokens, output_tokens, cached_tokens, cost_usd)


def _record(
    engine: Engine,
    lease: Lease,
    job: JobContext,
    index: JoinIndex,
    summary: NormalizeSummary,
    duplicates: list[Duplicate],
) -> None:
    detail = {
        "counts": summary.counts,
        "quarantined": summary.quarantined,
        "conflicts": summary.conflicts,
        "conflict_custom_ids": list(summary.conflict_custom_ids[:CONFLICTS_LISTED]),
        "results_path": str(summary.results_path) if summary.kept_locally else None,
        "results_ref": summary.results_ref,
    }
    with engine.begin() as connection:
        # The guarded move first: a lost lease refuses it before any request row is touched.
        advance(
            connection,
            lease,
            State.DOWNLOADED,
            State.NORMALIZED,
            detail=detail,
            results_path=str(summary.results_path) if summary.kept_locally else None,
            results_ref=summary.results_ref,
            input_tokens=summary.input_tokens,
            output_tokens=summary.output_tokens,
            cost_usd=summary.cost_usd,
        )
        write_request_rows(connection, index, job.job_id, job.end.unanswered(), duplicates)
