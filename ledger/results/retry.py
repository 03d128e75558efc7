"""Retrying what did not succeed: a new job (same run, `parent_job_id` set) that carries only the
requests of a run that failed, expired, were cancelled or went missing, so a rerun never repeats
(or pays again for) what succeeded.

The retry's shards are cut from the parents' own shards, line for line, so a retried request is
byte-for-byte the request that was sent before (but for its output token limit, when
`--max-output-tokens` gives a new one: `ledger.results.reask`). Each parent's shard is read
from the artifact store, verified against its recorded sha256, and the retry's shards are
stored there like a build's (`put_shards`), so a retry runs on any machine that reaches the
ledger: they are cut into the run's `batch_inputs/` where this machine holds the run's folder
(its readable copy), else into a scratch folder removed afterwards. Once the retry job is
normalized, its results win over the parent's for those requests (see docs/results.md).
"""

from __future__ import annotations

import shutil
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import and_, func, insert, literal, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from ledger.build.artifacts import put_shards
from ledger.build.manifest import manifest_job, manifest_lock, replace_manifest
from ledger.build.record import shard_job_fields
from ledger.build.shard_limits import ShardLimits, within_provider_limits
from ledger.build.shards import Shard, ShardSet
from ledger.core.db import read_db_now
from ledger.core.models import (
    OUTCOME_COLUMNS,
    PENDING,
    Job,
    JobParent,
    Request,
    RequestAttempt,
    Run,
)
from ledger.core.states import State
from ledger.core.store import create_job
from ledger.errors import InputError
from ledger.results.retry_lock import busy, exclusive_retry
from ledger.results.retry_select import DEFAULT_WORDS, RetrySelection, parse_selection
from ledger.results.retry_source import requests_of

#: Request statuses a plain retry takes again (`--only` takes any other word too).
RETRYABLE: tuple[str, ...] = DEFAULT_WORDS

ACTOR = "ledger retry"

#: Requests are copied to the history and moved this many at a time.
_CHUNK = 500


@dataclass(frozen=True)
class RetryPlan:
    """The jobs one retry recorded (none: nothing to retry, and `note` says why)."""

    run_name: str
    statuses: tuple[str, ...]
    #: (job id, shard file, requests, parent job ids).
    jobs: list[tuple[int, Path, int, list[int]]]
    #: Why nothing was recorded, when nothing was.
    note: str | None = None

    @property
    def request_count(self) -> int:
        return sum(count for _, _, count, _ in self.jobs)


def retry_run(
    engine: Engine,
    run_name: str,
    statuses: Sequence[str] = RETRYABLE,
    *,
    held_reason: str | None = None,
    max_output_tokens: int | None = None,
) -> RetryPlan:
    """Record new `built` jobs for the requests of `run_name` that `statuses` selects (status
    words, HTTP statuses or classes, error codes: `ledger.results.retry_select`), among the
    jobs already normalized: jobs still running are left alone. The jobs are cut to the run's
    own limits (`--max-requests`, `--max-bytes`, `--max-tokens-per-job`, one model a shard) and
    held (no reconciler sends them) when `held_reason` is given. With `max_output_tokens`,
    each retried body asks for that output budget (`ledger.results.reask`). InputError
    ("busy") when another retry of the run is running (`retry_lock`)."""
    if max_output_tokens is not None and max_output_tokens < 1:
        raise InputError("--max-output-tokens: must be at least 1")
    with exclusive_retry(engine, run_name):
        return _retry_run(
            engine, run_name, statuses, held_reason=held_reason, budget=max_output_tokens
        )


def _retry_run(
    engine: Engine,
    run_name: str,
    statuses: Sequence[str] = RETRYABLE,
    *,
    held_reason: str | None = None,
    budget: int | None = None,
) -> RetryPlan:
    selection = parse_selection(statuses)
    chosen = selection.words
    with engine.connect() as connection:
        run = connection.execute(
            select(Run.id, Run.name, Run.options).where(Run.name == run_name)
        ).first()
        if run is None:
            raise InputError(f"no run named {run_name!r}")
        wanted = _wanted_by_parent(connection, run.id, selection)
        unfinished = connection.execute(
            select(func.count())
            .select_from(Job)
            .where(Job.run_id == run.id, Job.state != State.NORMALIZED.value)
        ).scalar_one()
        parents = connection.execute(
            select(
                Job.id,
                Job.input_path,
                Job.input_ref,
                Job.input_sha256,
                Job.input_bytes,
                Job.endpoint,
                Job.provider,
                Job.base_url,
                Job.model,
            )
            .where(Job.id.in_(list(wanted)))
            .order_by(Job.shard_index)
        ).all()
        first_index = (
            connection.execute(
                select(func.max(Job.shard_index)).where(Job.run_id == run.id)
            ).scalar_one()
            or 0
        ) + 1
    if not wanted:
        running = f"; {unfinished} job(s) not normalized yet are left alone" if unfinished else ""
        note = f"nothing to retry: no request of run {run_name!r} is {'/'.join(chosen)}{running}"
        return RetryPlan(run_name=run.name, statuses=chosen, jobs=[], note=note)
    # The run's shard folder as the submit recorded it: where this machine holds the run's
    # folder, the retry's shards are cut beside the parents' (a readable copy, as the build
    # leaves); elsewhere into a scratch folder, the stored copies being the ones used.
    shard_dir = Path(parents[0].input_path).parent
    here = shard_dir.is_dir()
    folder = shard_dir if here else Path(tempfile.mkdtemp(prefix="ledger-retry-"))
    try:
        return _cut_and_record(
            engine,
            run,
            parents,
            wanted,
            first_index,
            chosen,
            held_reason,
            shard_dir,
            folder,
            budget,
        )
    finally:
        if not here:
            shutil.rmtree(folder, ignore_errors=True)


def _cut_and_record(
    engine: Engine,
    run: Any,
    parents: Sequence[Any],
    wanted: dict[int, dict[str, tuple[int, int | None]]],
    first_index: int,
    chosen: tuple[str, ...],
    held_reason: str | None,
    shard_dir: Path,
    folder: Path,
    budget: int | None,
) -> RetryPlan:
    """Cut the retry's shards into `folder` (each body asking for the output `budget` when
    given), store them, and record the jobs with their files named as they are (or would be) in
    the run's `shard_dir`."""
    # Each request goes again to its parent's provider (a run may go to several): a shard holds
    # one provider's requests, cut to the run's own limits within that provider's.
    given = run_limits(run.options or {})
    shard_set = ShardSet(
        folder,
        within_provider_limits(given, parents[0].provider),
        first_index=first_index,
        limits_for=lambda provider: within_provider_limits(given, provider),
    )
    origin: dict[int, list[int]] = defaultdict(list)  # new shard index -> parent job ids
    ids_of_shard: dict[int, list[str]] = defaultdict(list)
    try:
        for parent in parents:
            for request in requests_of(engine, parent, wanted[parent.id], budget):
                shard_set.place([request])
                index = shard_set.open_index(request.model, request.provider)
                ids_of_shard[index].append(request.custom_id)
                if parent.id not in origin[index]:
                    origin[index].append(parent.id)
        shards = shard_set.close()
    except BaseException:
        shard_set.abandon()
        raise
    paths = {shard.index: shard_dir / shard.path.name for shard in shards}
    try:
        # Stored before they are recorded, as a build's: a retry that then fails leaves litter
        # for `ledger gc`, never a job without its shard.
        refs = put_shards(engine, shards)
        jobs = _record(
            engine, run.id, parents, shards, origin, ids_of_shard, chosen, held_reason, refs, paths
        )
    except BaseException as error:
        for shard in shards:
            shard.path.unlink(missing_ok=True)
        if isinstance(error, IntegrityError):  # another machine's retry took these indexes
            raise busy(run.name) from None
        raise
    _extend_manifest(shard_dir.parent / "manifest.json", shards, jobs, origin, chosen, paths)
    return RetryPlan(
        run_name=run.name,
        statuses=chosen,
        jobs=[(jobs[s.index], paths[s.index], s.requests, origin[s.index]) for s in shards],
    )


def run_limits(options: dict[str, Any]) -> ShardLimits:
    """The shard limits a run was built with (`runs.options`); the defaults for what a run
    recorded before they were kept lacks."""
    default = ShardLimits()
    return ShardLimits(
        max_requests=options.get("max_requests") or default.max_requests,
        max_bytes=options.get("max_bytes") or default.max_bytes,
        max_tokens=options.get("max_tokens_per_job"),
    )


def _wanted_by_parent(
    connection: Any, run_id: int, selection: RetrySelection
) -> dict[int, dict[str, tuple[int, int | None]]]:
    """custom_id -> (input line number, estimated tokens) of the requests to retry, by the
    normalized job that last carried them."""
    wanted: dict[int, dict[str, tuple[int, int | None]]] = defaultdict(dict)
    rows = connection.execute(
        select(Request.job_id, Request.custom_id, Request.line_number, Request.est_input_tokens)
        .join(Job, Job.id == Request.job_id)
        .where(
            Request.run_id == run_id,
            Job.state == State.NORMALIZED.value,
            selection.condition(),
        )
    )
    for job_id, custom_id, line_number, tokens in rows:
        wanted[job_id][custom_id] = (line_number, tokens)
    return dict(wanted)


def _record(
    engine: Engine,
    run_id: int,
    parents: Iterable[Any],
    shards: list[Shard],
    origin: dict[int, list[int]],
    ids_of_shard: dict[int, list[str]],
    statuses: tuple[str, ...],
    held_reason: str | None,
    refs: dict[int, str],
    paths: dict[int, Path],
) -> dict[int, int]:
    """One transaction: the new jobs with every parent, each request's outcome so far kept in
    `request_attempts`, and the requests moved to their new job as `pending`."""
    by_id = {p.id: p for p in parents}
    jobs: dict[int, int] = {}
    with engine.begin() as connection:
        now = read_db_now(connection)
        for shard in shards:
            parent = by_id[origin[shard.index][0]]
            job_id = jobs[shard.index] = create_job(
                connection,
                actor=ACTOR,
                detail={
                    "retry_of": origin[shard.index],
                    "statuses": list(statuses),
                    "max_output_tokens": shard.max_output_tokens,
                    "held": held_reason,
                },
                run_id=run_id,
                provider=parent.provider,
                base_url=parent.base_url,
                endpoint=parent.endpoint,
                parent_job_id=parent.id,
                held_reason=held_reason,
                input_ref=refs[shard.index],
                **shard_job_fields(shard, paths[shard.index]),
            )
            connection.execute(
                insert(JobParent),
                [{"job_id": job_id, "parent_job_id": p} for p in origin[shard.index]],
            )
            ids = ids_of_shard[shard.index]
            for start in range(0, len(ids), _CHUNK):
                _move(connection, run_id, job_id, ids[start : start + _CHUNK], now)
    return jobs


def _move(connection: Any, run_id: int, job_id: int, custom_ids: list[str], now: float) -> None:
    """Keep the outcome so far of these requests in `request_attempts`, then move them to
    `job_id` as `pending`. A request another retry moved meanwhile is no longer finished: the
    whole retry is refused (and rolled back) rather than send it twice."""
    ours = and_(
        Request.run_id == run_id,
        Request.custom_id.in_(custom_ids),
        Request.status != PENDING,
    )
    # The attempt's outcome as the row holds it now, with the job that carried it.
    kept = ("job_id", *OUTCOME_COLUMNS)
    connection.execute(
        insert(RequestAttempt).from_select(
            ["request_id", *kept, "retry_job_id", "recorded_at"],
            select(
                Request.id,
                *(getattr(Request, column) for column in kept),
                literal(job_id),
                literal(now),
            ).where(ours),
        )
    )
    # The row starts again: pending in the retry job, every outcome column the attempt kept
    # emptied.
    cleared = {**dict.fromkeys(OUTCOME_COLUMNS), "status": PENDING}
    moved = connection.execute(
        update(Request).where(ours).values(job_id=job_id, **cleared)
    ).rowcount
    if moved != len(custom_ids):
        raise InputError(
            "another retry of this run took some of these requests meanwhile: run it again"
        )


def _extend_manifest(
    path: Path,
    shards: list[Shard],
    jobs: dict[int, int],
    origin: dict[int, list[int]],
    statuses: tuple[str, ...],
    paths: dict[int, Path],
) -> None:
    """Add the retry jobs to the run's manifest.json, which mirrors what the ledger holds."""
    if not path.exists():
        return
    with manifest_lock(path):
        manifest = orjson.loads(path.read_bytes())
        manifest.setdefault("jobs", []).extend(
            {
                **manifest_job(jobs[shard.index], shard, paths[shard.index]),
                "retry_of": origin[shard.index],
                "retry_statuses": list(statuses),
            }
            for shard in shards
        )
        replace_manifest(path, manifest)
