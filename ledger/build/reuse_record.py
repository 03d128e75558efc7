"""`submit --reuse` when the run is recorded: the answers copied, their jobs, their request rows.

The requests reused from earlier runs (`ledger.build.reuse`) go into one job per (provider, model)
that is recorded already answered, in the build's one transaction: a job with no shard and no
provider batch, created in state `normalized` (its creation event says `reused`), whose results
artifact holds the copied result lines, each re-keyed to the new request's custom_id and line and
carrying `reused_from`. No reconciler ever takes it (normalized is terminal), so it is never sent;
a crash before the commit leaves no run (the copied results file is litter for `ledger gc`), and
resubmitting the same run reads the recorded one back.

A reused request costs nothing: its row is `succeeded` with cost_usd 0.0, and the job's cost is
0.0; the answer's usage stays in the result line (what the answer took, paid by the original).
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import select, text
from sqlalchemy.engine import Connection, Engine

from ledger.artifacts import RecordedFile, store_for
from ledger.build.record import record_requests
from ledger.build.reuse import SUCCEEDED, ReusedTally, Reuser
from ledger.build.spool import RequestSpool
from ledger.build.streaming import Built
from ledger.core.db import db_now
from ledger.core.models import COPY_OUTCOME_OF_SOURCE, Job
from ledger.core.states import State
from ledger.core.store import create_job
from ledger.errors import LedgerError

#: Who the creation events of reused jobs name.
ACTOR = "ledger submit --reuse"
#: Copied lines written to the spool at a time.
COPY_BATCH = 10_000
#: The creation event's detail key holding how many requests a job answered from the ledger.
REUSED = "reused"


@dataclass(frozen=True)
class ReusedShard:
    """The copied results of one (provider, model)'s reused requests."""

    provider: str
    model: str
    tally: ReusedTally
    results_ref: str
    results_bytes: int
    results_sha256: str


def copied_requests(reuser: Reuser | None) -> int:
    """The run's requests answered without being sent: reused ones and within-run duplicates."""
    if reuser is None:
        return 0
    return sum(tally.requests for tally in reuser.reused.values()) + reuser.duplicates


def record_requests_and_copies(
    connection: Connection,
    run_id: int,
    built: Built,
    job_ids: dict[int, int],
    reused: list[ReusedShard],
    run_dir: Path,
) -> None:
    """In the build's transaction: the reused jobs, then every request row (each copy in the
    job that answers it), then the copies' outcomes and lineage."""
    first_index = max((shard.index for shard in built.shards), default=0) + 1
    reused_jobs = insert_reused_jobs(
        connection, run_id, built.endpoint, reused, first_index, run_dir
    )
    record_requests(connection, run_id, built.spool, built.shard_set, job_ids, reused_jobs)
    if built.reuser is not None:
        answer_copied_rows(connection, run_id, list(reused_jobs.values()))
        name_first_copies(connection, run_id, built.spool)


def write_reused_results(engine: Engine, reuser: Reuser | None) -> list[ReusedShard]:
    """Copy each reused request's answer out of its source job's results, re-keyed, into one
    results artifact per (provider, model), lines in input order (none without --reuse).
    `LedgerError` when a source's results can no longer be read (submit without --reuse)."""
    if reuser is None or not reuser.reused:
        return []
    spool = reuser.spool
    db = spool.connection
    db.execute(
        "CREATE TABLE reused_lines (model INTEGER NOT NULL, line_number INTEGER NOT NULL, "
        "custom_id TEXT NOT NULL, raw BLOB NOT NULL, PRIMARY KEY (model, line_number, custom_id))"
        " WITHOUT ROWID"
    )
    wanted: dict[int, dict[str, list[tuple[int, int, str, int]]]] = defaultdict(dict)
    for custom_id, line, model, job_id, source_id, lineage in db.execute(
        "SELECT a.custom_id, a.line_number, a.model, s.job_id, s.custom_id, s.lineage "
        "FROM accepted a JOIN sources s ON s.id = a.source"
    ):
        wanted[job_id].setdefault(source_id, []).append((model, line, custom_id, lineage))
    for job_id, copies in wanted.items():
        _copy_answers(engine, spool, job_id, copies)
    shards = []
    store = store_for(engine)
    with tempfile.TemporaryDirectory(prefix="ledger-reuse-") as scratch:
        for (provider, model), tally in reuser.reused.items():
            path = Path(scratch) / f"reused-{spool.models[provider, model]}.jsonl"
            with path.open("wb") as out:
                for (raw,) in db.execute(
                    "SELECT raw FROM reused_lines WHERE model = ? ORDER BY line_number, custom_id",
                    (spool.models[provider, model],),
                ):
                    out.write(raw)
            ref = store.put(path)
            shards.append(ReusedShard(provider, model, tally, str(ref), ref.size, ref.sha256))
    return shards


def _copy_answers(
    engine: Engine,
    spool: RequestSpool,
    job_id: int,
    copies: Mapping[str, list[tuple[int, int, str, int]]],
) -> None:
    """Read source job `job_id`'s results once; write each wanted line re-keyed per copy."""
    with engine.connect() as connection:
        ref, path = connection.execute(
            select(Job.results_ref, Job.results_path).where(Job.id == job_id)
        ).one()
    results = RecordedFile.of(ref, path, engine)
    if results is None:
        raise LedgerError(f"--reuse: job {job_id}'s results are gone: submit without --reuse")
    found = 0
    rows: list[tuple[int, int, str, bytes]] = []
    insert_lines = "INSERT INTO reused_lines VALUES (?, ?, ?, ?)"
    with results.open() as file:
        for raw in file:
            record = _record_of(raw, copies)
            if record is None:
                continue
            found += 1
            for model, line, custom_id, lineage in copies[record["custom_id"]]:
                record.update(custom_id=custom_id, line_number=line, reused_from=lineage)
                raw_copy = orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
                rows.append((model, line, custom_id, raw_copy))
            if len(rows) >= COPY_BATCH:
                spool.connection.executemany(insert_lines, rows)
                rows = []
    spool.connection.executemany(insert_lines, rows)
    if found < len(copies):
        raise LedgerError(
            f"--reuse: job {job_id}'s results lack {len(copies) - found} answers it recorded as "
            "succeeded: submit without --reuse"
        )


_CUSTOM_ID = b'{"custom_id":'


def _record_of(raw: bytes, copies: Mapping[str, Any]) -> dict[str, Any] | None:
    """The result line parsed, when it answers a wanted custom_id (the others are not parsed:
    a result line starts with its custom_id)."""
    end = raw.find(b'","status":"') if raw.startswith(_CUSTOM_ID) else -1
    plain = end > 0 and b"\\" not in raw[len(_CUSTOM_ID) : end]
    if plain and raw[len(_CUSTOM_ID) + 1 : end].decode() not in copies:
        return None
    record = orjson.loads(raw)
    if record.get("custom_id") not in copies or record.get("status") != SUCCEEDED:
        return None
    return record


def insert_reused_jobs(
    connection: Connection,
    run_id: int,
    endpoint: str,
    shards: list[ReusedShard],
    first_index: int,
    run_dir: Path,
) -> dict[tuple[str, str], int]:
    """One job per reused shard, recorded `normalized` with its copied results; job ids by
    (provider, model)."""
    job_ids = {}
    for offset, shard in enumerate(shards):
        index = first_index + offset
        tally = shard.tally
        job_id = create_job(
            connection,
            actor=ACTOR,
            detail={
                REUSED: tally.requests,
                "max_output_tokens": tally.max_output_tokens,
                "results_ref": shard.results_ref,
            },
            state=State.NORMALIZED,
            run_id=run_id,
            shard_index=index,
            provider=shard.provider,
            endpoint=endpoint,
            model=shard.model,
            # No shard is ever sent: the job's "input" is the results it was answered with.
            input_path=str(run_dir / "results" / f"reused-{index:04d}.jsonl"),
            input_sha256=shard.results_sha256,
            input_bytes=shard.results_bytes,
            request_count=tally.requests,
            est_input_tokens=tally.est_input_tokens,
            results_ref=shard.results_ref,
            requests_total=tally.requests,
            requests_completed=tally.requests,
            requests_failed=0,
            input_tokens=0,
            output_tokens=0,
            cost_usd=0.0,
            est_cost_usd=0.0,
            finished_at=db_now(),
        )
        job_ids[shard.provider, shard.model] = job_id
    return job_ids


def answer_copied_rows(connection: Connection, run_id: int, reused_job_ids: list[int]) -> None:
    """The request rows of the run's copies, once inserted: a reused row takes its source's
    answer (succeeded, nothing paid); a within-run duplicate names its first copy."""
    if reused_job_ids:
        marks = ", ".join(str(int(job_id)) for job_id in reused_job_ids)
        # A source is a succeeded row (only those are reused): its copies are succeeded too.
        connection.execute(
            text(
                f"UPDATE requests SET {COPY_OUTCOME_OF_SOURCE} "
                f"WHERE run_id = :run AND job_id IN ({marks})"
            ),
            {"run": run_id},
        )


def name_first_copies(connection: Connection, run_id: int, spool: RequestSpool) -> None:
    """Each within-run duplicate's `reused_from`: the request row of its first copy."""
    rows = [
        {"run": run_id, "custom_id": custom_id, "first": first}
        for custom_id, first in spool.connection.execute(
            "SELECT custom_id, first_custom_id FROM accepted WHERE first_custom_id IS NOT NULL"
        )
    ]
    if rows:
        connection.execute(
            text(
                "UPDATE requests SET reused_from = (SELECT f.id FROM requests f "
                "WHERE f.run_id = :run AND f.custom_id = :first) "
                "WHERE run_id = :run AND custom_id = :custom_id"
            ),
            rows,
        )
