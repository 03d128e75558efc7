"""The ledger's side of a build: the run row, its jobs in state `built`, one row per request, and
reading a recorded run back. Every write here runs inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection, Row

from ledger.build.shards import Shard, ShardSet
from ledger.build.spool import RequestSpool
from ledger.build.sql import placeholders
from ledger.core.db import db_now
from ledger.core.models import PENDING, Job, JobEvent, Request, Run
from ledger.core.store import create_job

#: Who the creation events name.
ACTOR = "ledger submit"


def find_run(connection: Connection, name: str) -> Row[Any] | None:
    """The run named `name`, if the ledger has one."""
    return connection.execute(select(Run).where(Run.name == name)).first()


def insert_run(
    connection: Connection,
    *,
    name: str,
    provider: str,
    endpoint: str,
    model: str,
    input_path: Path,
    input_sha256: str,
    options: Mapping[str, Any],
    request_count: int,
) -> int:
    """Insert the run row and return its id."""
    return connection.execute(
        insert(Run)
        .values(
            name=name,
            provider=provider,
            endpoint=endpoint,
            model=model,
            input_path=str(input_path),
            input_sha256=input_sha256,
            options=dict(options),
            request_count=request_count,
            created_at=db_now(),
        )
        .returning(Run.id)
    ).scalar_one()


def insert_jobs(
    connection: Connection,
    run_id: int,
    provider: str,
    endpoint: str,
    shards: Iterable[Shard],
    shard_dir: Path,
    held_reason: str | None = None,
    refs: Mapping[int, str] | None = None,
) -> dict[int, int]:
    """One job in state `built` per shard, for the shard's provider, else `provider` (its file as
    it will be in `shard_dir`, its artifact ref in `refs`), by shard; held (no reconciler takes
    it) when `held_reason` is given."""
    job_ids = {}
    for shard in shards:
        job_ids[shard.index] = create_job(
            connection,
            actor=ACTOR,
            # The output bound has no column; the creation event keeps it for the cost estimate.
            detail={"max_output_tokens": shard.max_output_tokens, "held": held_reason},
            run_id=run_id,
            # A run fanned out to several providers: each shard names its own.
            provider=shard.provider or provider,
            endpoint=endpoint,
            held_reason=held_reason,
            input_ref=(refs or {}).get(shard.index),
            **shard_job_fields(shard, shard_dir / shard.path.name),
        )
    return job_ids


def shard_job_fields(shard: Shard, input_path: Path) -> dict[str, Any]:
    """The columns a job takes from the shard file it carries (at `input_path`)."""
    return {
        "shard_index": shard.index,
        "model": shard.model,
        "input_path": str(input_path),
        "input_sha256": shard.sha256,
        "input_bytes": shard.bytes,
        "request_count": shard.requests,
        "est_input_tokens": shard.est_input_tokens,
    }


def insert_requests(
    connection: Connection,
    run_id: int,
    batches: Iterable[list[tuple[int, str, int, int | None, bytes | None, int | None]]],
) -> int:
    """Insert `pending` request rows from batches of (job_id, custom_id, line, tokens, body
    hash, reused_from)."""
    table = Request.__tablename__
    columns = (
        "run_id",
        "job_id",
        "custom_id",
        "line_number",
        "status",
        "est_input_tokens",
        "body_hash",
        "reused_from",
    )
    # Raw executemany: a million rows through the ORM's per-row processing is several times slower.
    marks = placeholders(connection, len(columns))
    statement = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
    count = 0
    for batch in batches:
        connection.exec_driver_sql(
            statement,
            [
                (run_id, job, custom_id, line, PENDING, tokens, digest, source)
                for job, custom_id, line, tokens, digest, source in batch
            ],
        )
        count += len(batch)
    return count


def record_requests(
    connection: Connection,
    run_id: int,
    spool: RequestSpool,
    shard_set: ShardSet,
    job_ids: dict[int, int],
    reused_jobs: Mapping[tuple[str, str], int] | None = None,
) -> None:
    """The run's request rows: on SQLite copied from the spool in one statement, elsewhere
    read back from it in batches, each request's job found from its (provider, model) and
    line (a within-run duplicate's: its first copy's line), a reused request's job from its
    (provider, model) in `reused_jobs` (`ledger.build.reuse_record`)."""
    reused_jobs = reused_jobs or {}
    if connection.dialect.name == "sqlite":
        starts = shard_set.starts()
        spool.record_shards(
            ((key, line, job_ids[index]) for key, line, index in starts), reused_jobs
        )
        copy_requests(connection, run_id, spool.path)
        return
    shard_of = shard_set.shard_of
    insert_requests(
        connection,
        run_id,
        (
            [
                (
                    reused_jobs[key]
                    if source is not None
                    else job_ids[shard_of(key, answer_line or line)],
                    custom_id,
                    line,
                    tokens,
                    digest,
                    source,
                )
                for custom_id, line, key, tokens, digest, answer_line, source in batch
            ]
            for batch in spool.batches()
        ),
    )


def copy_requests(connection: Connection, run_id: int, spool_path: Path) -> int:
    """Insert the `pending` request rows of a SQLite ledger straight from the build's spool
    file (its `accepted`, `shards` and `reused_jobs` tables, see `RequestSpool.record_shards`),
    in one INSERT ... SELECT: no Python object per request. Attaches the spool as `spool`,
    inside a `bulk_session`, which detaches it after the transaction."""
    raw = connection.connection.driver_connection
    assert raw is not None
    raw.execute("ATTACH DATABASE ? AS spool", (str(spool_path),))
    # A request belongs to the last shard of its (provider, model) that opened at or before
    # the line whose send answers it (its own, or its first copy's); a reused one to the
    # reused job of its (provider, model).
    result = connection.exec_driver_sql(
        f"INSERT INTO {Request.__tablename__} "
        "(run_id, job_id, custom_id, line_number, status, est_input_tokens, body_hash, "
        "reused_from) "
        f"SELECT ?, CASE WHEN a.source IS NULL THEN {_shard_job(raw)} "
        "ELSE (SELECT r.job_id FROM spool.reused_jobs r WHERE r.model = a.model) END, "
        "a.custom_id, a.line_number, ?, a.tokens, a.body_hash, "
        "CASE WHEN a.source IS NULL THEN NULL "
        "ELSE (SELECT o.lineage FROM spool.sources o WHERE o.id = a.source) END "
        "FROM spool.accepted a",
        (run_id, PENDING),
    )
    return result.rowcount


#: The most shards whose jobs `copy_requests` writes into its statement (more: one lookup each).
SHARDS_IN_STATEMENT = 1_000


def _shard_job(raw: Any) -> str:
    """The SQL expression of the job of the shard holding spooled request `a` (sent, not reused):
    for a build of at most `SHARDS_IN_STATEMENT` shards the shards' first lines and jobs written
    into it, a binary search on the line a few comparisons deep (a lookup in `spool.shards` per
    request cost a quarter of the copy, bench/build.py); else that lookup."""
    line = "COALESCE(a.answer_line, a.line_number)"
    shards = raw.execute(
        "SELECT model, first_line, job_id FROM spool.shards ORDER BY model, first_line"
    ).fetchall()
    if len(shards) > SHARDS_IN_STATEMENT:
        return (
            "(SELECT s.job_id FROM spool.shards s WHERE s.model = a.model AND s.first_line <= "
            f"{line} ORDER BY s.first_line DESC LIMIT 1)"
        )
    starts: dict[int, list[tuple[int, int]]] = {}
    for model, first_line, job_id in shards:
        starts.setdefault(int(model), []).append((int(first_line), int(job_id)))
    whens = " ".join(
        f"WHEN {model} THEN CASE WHEN {line} < {runs[0][0]} THEN NULL "
        f"ELSE {_search(runs, line)} END"
        for model, runs in starts.items()
    )
    return f"(CASE a.model {whens} END)" if whens else "NULL"


def _search(starts: list[tuple[int, int]], line: str) -> str:
    """The job of the last of `starts` (first line, job; in order) at or before `line`, for a
    line at or after the first, as nested CASE expressions halving them."""
    if len(starts) == 1:
        return str(starts[0][1])
    middle = len(starts) // 2
    before, after = _search(starts[:middle], line), _search(starts[middle:], line)
    return f"CASE WHEN {line} < {starts[middle][0]} THEN {before} ELSE {after} END"


@contextmanager
def bulk_session(connection: Connection) -> Iterator[None]:
    """Around the transaction that records a build on SQLite (enter it before `begin`): no
    foreign-key check per request row, whose run and jobs that same transaction inserts; on
    the way out the spool `copy_requests` attached is detached (which SQLite allows only
    outside a transaction) and the checks are on again. Nothing on other databases."""
    raw = connection.connection.driver_connection if connection.dialect.name == "sqlite" else None
    if raw is None:
        yield
        return
    raw.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
    finally:
        try:
            if "spool" in [row[1] for row in raw.execute("PRAGMA database_list")]:
                raw.execute("DETACH DATABASE spool")
        finally:
            raw.execute("PRAGMA foreign_keys=ON")


def load_jobs(connection: Connection, run_id: int) -> list[tuple[Row[Any], dict[str, Any]]]:
    """A run's jobs by shard, each with the detail of its creation event."""
    jobs = connection.execute(
        select(Job).where(Job.run_id == run_id).order_by(Job.shard_index)
    ).all()
    details = dict(
        connection.execute(
            select(JobEvent.job_id, JobEvent.detail).where(
                JobEvent.job_id.in_([job.id for job in jobs]),
                # A reused job is created `normalized` (`ledger.build.reuse_record`).
                JobEvent.from_state.is_(None),
            )
        ).all()
    )
    return [(job, details.get(job.id) or {}) for job in jobs]


def copies_by_job(connection: Connection, run_id: int) -> dict[int, int]:
    """How many of a run's requests each job answers without sending them (`--reuse`): a
    reused job's requests, or the within-run duplicates riding with a job sent."""
    return {
        job_id: count
        for job_id, count in connection.execute(
            select(Request.job_id, func.count())
            .where(Request.run_id == run_id, Request.reused_from.is_not(None))
            .group_by(Request.job_id)
        )
    }
