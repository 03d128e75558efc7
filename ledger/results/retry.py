"""Retrying what did not succeed: a new job (same run, `parent_job_id` set) that carries only the
requests of a run that failed, expired, were cancelled or went missing, so a rerun never repeats
(or pays again for) what succeeded.

The retry's shards are cut from the parents' own shard files, line for line, so a retried request
is byte-for-byte the request that was sent before. Once the retry job is normalized, its results
win over the parent's for those requests (see docs/results.md).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from ledger.build.bodies import BatchRequest, ReadyLineChecker, RowProblem
from ledger.build.record import shard_job_fields
from ledger.build.run import manifest_job
from ledger.build.shards import Shard, ShardLimits, ShardSet, within_provider_limits
from ledger.core.durable import write_durably
from ledger.core.models import Job, Request, Run
from ledger.core.states import State
from ledger.core.store import create_job
from ledger.errors import InputError
from ledger.results.retry_lock import busy, exclusive_retry
from ledger.results.schema import CANCELLED, EXPIRED, FAILED, MISSING

#: Request statuses a retry can take again.
RETRYABLE: tuple[str, ...] = (FAILED, EXPIRED, CANCELLED, MISSING)

ACTOR = "ledger retry"


@dataclass(frozen=True)
class RetryPlan:
    """The jobs one retry recorded."""

    run_name: str
    statuses: tuple[str, ...]
    #: (job id, shard file, requests, parent job ids).
    jobs: list[tuple[int, Path, int, list[int]]]

    @property
    def request_count(self) -> int:
        return sum(count for _, _, count, _ in self.jobs)


def retry_run(
    engine: Engine,
    run_name: str,
    statuses: Sequence[str] = RETRYABLE,
    *,
    limits: ShardLimits | None = None,
) -> RetryPlan:
    """Record new `built` jobs for the requests of `run_name` whose status is in `statuses`;
    InputError ("busy") when another retry of the run is running (`retry_lock`)."""
    with exclusive_retry(engine, run_name):
        return _retry_run(engine, run_name, statuses, limits=limits)


def _retry_run(
    engine: Engine,
    run_name: str,
    statuses: Sequence[str] = RETRYABLE,
    *,
    limits: ShardLimits | None = None,
) -> RetryPlan:
    chosen = tuple(s for s in RETRYABLE if s in statuses)
    if not chosen:
        raise InputError(f"nothing to retry: choose among {', '.join(RETRYABLE)}")
    with engine.connect() as connection:
        run = connection.execute(select(Run.id, Run.name).where(Run.name == run_name)).first()
        if run is None:
            raise InputError(f"no run named {run_name!r}")
        unfinished = connection.execute(
            select(func.count())
            .select_from(Job)
            .where(Job.run_id == run.id, Job.state != State.NORMALIZED.value)
        ).scalar_one()
        if unfinished:
            raise InputError(
                f"run {run_name!r} has {unfinished} job(s) not normalized yet: "
                "reconcile it first (`ledger reconcile --run "
                f"{run_name} --until-done`)"
            )
        wanted = _wanted_by_parent(connection, run.id, chosen)
        parents = connection.execute(
            select(Job.id, Job.input_path, Job.endpoint, Job.provider, Job.base_url, Job.model)
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
        raise InputError(f"nothing to retry: no request of run {run_name!r} is {'/'.join(chosen)}")
    shard_dir = Path(parents[0].input_path).parent
    # The retry goes to the run's provider: its shards are cut to that provider's limits too.
    limits = within_provider_limits(limits or ShardLimits(), parents[0].provider)
    shard_set = ShardSet(shard_dir, limits, first_index=first_index)
    origin: dict[int, list[int]] = defaultdict(list)  # new shard index -> parent job ids
    ids_of_shard: dict[int, list[str]] = defaultdict(list)
    try:
        for parent in parents:
            for request in _requests_of(parent, wanted[parent.id]):
                shard_set.place([request])
                index = shard_set.open_index(request.model)
                ids_of_shard[index].append(request.custom_id)
                if parent.id not in origin[index]:
                    origin[index].append(parent.id)
        shards = shard_set.close()
    except BaseException:
        shard_set.abandon()
        raise
    try:
        jobs = _record(engine, run.id, parents, shards, origin, ids_of_shard, chosen)
    except IntegrityError:  # another machine's retry recorded these shard indexes first
        raise busy(run_name) from None
    _extend_manifest(shard_dir.parent / "manifest.json", shards, jobs, origin, chosen)
    return RetryPlan(
        run_name=run.name,
        statuses=chosen,
        jobs=[(jobs[s.index], s.path, s.requests, origin[s.index]) for s in shards],
    )


def _wanted_by_parent(
    connection: Any, run_id: int, statuses: tuple[str, ...]
) -> dict[int, dict[str, int]]:
    """custom_id -> input line number of the requests to retry, by the job that last carried
    them."""
    wanted: dict[int, dict[str, int]] = defaultdict(dict)
    rows = connection.execute(
        select(Request.job_id, Request.custom_id, Request.line_number).where(
            Request.run_id == run_id, Request.status.in_(statuses)
        )
    )
    for job_id, custom_id, line_number in rows:
        wanted[job_id][custom_id] = line_number
    return dict(wanted)


def _requests_of(parent: Any, lines: dict[str, int]) -> Iterator[BatchRequest]:
    """The parent's shard lines for the custom_ids in `lines`, as they were sent, in shard
    order, each carrying its line number in the user's input."""
    checker = ReadyLineChecker(parent.endpoint, None)
    path = Path(parent.input_path)
    with path.open("rb") as shard:
        for shard_line, raw in enumerate(shard, start=1):
            line = raw.rstrip(b"\r\n")
            if not line:
                continue
            record = orjson.loads(line)
            custom_id = record.get("custom_id")
            if custom_id not in lines:
                continue
            try:
                yield checker.request(record, line, lines[custom_id])
            except RowProblem as problem:
                raise InputError(f"{path}:{shard_line}: {problem}") from None


def _record(
    engine: Engine,
    run_id: int,
    parents: Iterable[Any],
    shards: list[Shard],
    origin: dict[int, list[int]],
    ids_of_shard: dict[int, list[str]],
    statuses: tuple[str, ...],
) -> dict[int, int]:
    """One transaction: the new jobs, and their requests moved to them as `pending`."""
    by_id = {p.id: p for p in parents}
    jobs: dict[int, int] = {}
    with engine.begin() as connection:
        for shard in shards:
            parent = by_id[origin[shard.index][0]]
            jobs[shard.index] = create_job(
                connection,
                actor=ACTOR,
                detail={
                    "retry_of": origin[shard.index],
                    "statuses": list(statuses),
                    "max_output_tokens": shard.max_output_tokens,
                },
                run_id=run_id,
                provider=parent.provider,
                base_url=parent.base_url,
                endpoint=parent.endpoint,
                parent_job_id=parent.id,
                **shard_job_fields(shard, shard.path),
            )
            move = (
                update(Request)
                .where(Request.run_id == run_id, Request.custom_id == bindparam("cid"))
                .values(
                    job_id=jobs[shard.index],
                    status="pending",
                    http_status=None,
                    error_code=None,
                    error_message=None,
                    input_tokens=None,
                    output_tokens=None,
                )
            )
            connection.execute(move, [{"cid": c} for c in ids_of_shard[shard.index]])
    return jobs


def _extend_manifest(
    path: Path,
    shards: list[Shard],
    jobs: dict[int, int],
    origin: dict[int, list[int]],
    statuses: tuple[str, ...],
) -> None:
    """Add the retry jobs to the run's manifest.json, which mirrors what the ledger holds."""
    if not path.exists():
        return
    manifest = orjson.loads(path.read_bytes())
    manifest.setdefault("jobs", []).extend(
        {
            **manifest_job(jobs[shard.index], shard, shard.path),
            "retry_of": origin[shard.index],
            "retry_statuses": list(statuses),
        }
        for shard in shards
    )
    write_durably(path, orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
