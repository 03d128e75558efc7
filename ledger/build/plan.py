"""A built run as the ledger holds it (`BuildPlan`): read back from the ledger after a build, or
when the same submission comes again, which must then hold the same input and options.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy.engine import Engine

from ledger.build.manifest import MANIFEST
from ledger.build.record import copies_by_job, find_run, load_jobs
from ledger.build.reuse_record import REUSED
from ledger.errors import InputError
from ledger.usage.pricing import CostEstimate, ModelUsage, PriceTable, estimate_cost

if TYPE_CHECKING:
    from ledger.build.run import BuildOptions


#: The `runs.options` key saying how the tokens were counted: "exact" (tiktoken for OpenAI
#: models, Anthropic's endpoint for Claude) or "approximate" (another model's tokenizer).
TOKEN_ESTIMATE = "token_estimate"


@dataclass(frozen=True)
class JobPlan:
    """One built job: a shard file and what it holds."""

    job_id: int
    shard_index: int
    model: str
    path: Path
    sha256: str
    bytes: int
    requests: int
    est_input_tokens: int
    #: Sum of its requests' max output tokens; None when one has no maximum.
    max_output_tokens: int | None
    #: The batch provider it goes to (a run may fan out to several).
    provider: str = ""
    #: True for a job answered from the ledger (`--reuse`): nothing of it is sent.
    reused: bool = False
    #: Within-run duplicates riding with it: answered by its send, not in its file.
    duplicates: int = 0


@dataclass(frozen=True)
class BuildPlan:
    """A built run as the ledger holds it: what will be sent, and what it should cost."""

    run_id: int
    run_name: str
    provider: str
    endpoint: str
    model: str
    input_path: Path
    input_sha256: str
    run_dir: Path
    options: dict[str, Any]
    jobs: tuple[JobPlan, ...]
    #: None when tokens were not counted.
    cost: CostEstimate | None
    #: True when the run was already recorded and nothing was built now.
    existing: bool = False

    #: Rows left out by `--skip-invalid` (0 for an existing run: not recorded).
    skipped: int = 0
    warnings: tuple[str, ...] = ()
    #: Seconds spent building the shards and recording the run.
    timings: Mapping[str, float] = field(default_factory=dict)

    @property
    def tokens_approximate(self) -> bool:
        """Whether the token estimate is approximate (some model counted with another
        model's tokenizer, such as Claude without Anthropic's count)."""
        return self.options.get(TOKEN_ESTIMATE) == "approximate"

    #: The estimated cost of the requests reused from earlier runs, at today's prices: the money
    #: `--reuse` saved (None when tokens were not counted).
    saved: CostEstimate | None = None

    @property
    def request_count(self) -> int:
        """Requests of the run: sent, reused, and within-run duplicates."""
        return sum(job.requests + job.duplicates for job in self.jobs)

    @property
    def sent_jobs(self) -> tuple[JobPlan, ...]:
        """The jobs that go to a provider (not those answered from the ledger)."""
        return tuple(job for job in self.jobs if not job.reused)

    @property
    def reused_requests(self) -> int:
        """Requests answered from earlier runs (`--reuse`), never sent."""
        return sum(job.requests for job in self.jobs if job.reused)

    @property
    def duplicates(self) -> int:
        """Requests identical to an earlier one of the run, answered by its one send."""
        return sum(job.duplicates for job in self.jobs)

    @property
    def bytes(self) -> int:
        """Bytes of all shard files (of the jobs sent)."""
        return sum(job.bytes for job in self.sent_jobs)

    @property
    def est_input_tokens(self) -> int:
        """Estimated input tokens of the jobs sent."""
        return sum(job.est_input_tokens for job in self.sent_jobs)

    @property
    def manifest_path(self) -> Path:
        """The run's manifest.json."""
        return self.run_dir / MANIFEST


def recorded_plan(
    engine: Engine,
    name: str,
    prices: PriceTable,
    *,
    expect: tuple[Path, BuildOptions] | None = None,
) -> BuildPlan:
    """The plan of a recorded run; with `expect`, refuse unless it holds that input and options."""
    with engine.connect() as connection:
        run = find_run(connection, name)
        if run is None:
            raise InputError(f"no run named {name!r}")
        jobs = load_jobs(connection, run.id)
        copies = copies_by_job(connection, run.id)
    options = dict(run.options or {})
    if expect is not None:
        _check_same_submission(run, *expect)
    job_plans = tuple(
        JobPlan(
            job_id=job.id,
            shard_index=job.shard_index,
            model=job.model,
            path=Path(job.input_path),
            sha256=job.input_sha256,
            bytes=job.input_bytes,
            requests=job.request_count,
            est_input_tokens=job.est_input_tokens,
            max_output_tokens=detail.get("max_output_tokens"),
            provider=job.provider,
            reused=REUSED in detail,
            duplicates=0 if REUSED in detail else copies.get(job.id, 0),
        )
        for job, detail in jobs
    )
    cost = saved = None
    if options.get("count_tokens", True):
        cost = _estimate(prices, (j for j in job_plans if not j.reused))
        if any(j.reused for j in job_plans):
            saved = _estimate(prices, (j for j in job_plans if j.reused))
    run_dir = job_plans[0].path.parent.parent if job_plans else Path(run.input_path).parent
    return BuildPlan(
        run_id=run.id,
        run_name=run.name,
        provider=run.provider,
        endpoint=run.endpoint,
        model=run.model,
        input_path=Path(run.input_path),
        input_sha256=run.input_sha256,
        run_dir=run_dir,
        options=options,
        jobs=job_plans,
        cost=cost,
        existing=expect is not None,
        saved=saved,
    )


def _estimate(prices: PriceTable, jobs: Iterable[JobPlan]) -> CostEstimate:
    return estimate_cost(
        prices,
        (ModelUsage(j.model, j.est_input_tokens, j.max_output_tokens, j.provider) for j in jobs),
    )


def _check_same_submission(run: Any, input_path: Path, options: BuildOptions) -> None:
    """Refuse a resubmission under `run`'s name unless input and options are the same."""
    digest = input_sha256(input_path, str(input_path))
    if digest != run.input_sha256:
        raise InputError(
            f"run {run.name!r} already exists with a different input ({run.input_path}, "
            f"sha256 {run.input_sha256[:12]}; {input_path} has {digest[:12]}): "
            "choose another --run name"
        )
    if run.provider != options.provider:
        raise InputError(
            f"run {run.name!r} already exists for provider {run.provider!r}, not "
            f"{options.provider!r}: choose another --run name"
        )
    recorded = orjson.loads(orjson.dumps(run.options or {}))
    recorded.pop(TOKEN_ESTIMATE, None)  # how tokens were counted, not an option
    given = orjson.loads(orjson.dumps(options.recorded()))
    changed = sorted(k for k in set(recorded) | set(given) if recorded.get(k) != given.get(k))
    if changed:
        what = ", ".join(f"{k}: {recorded.get(k)!r} then, {given.get(k)!r} now" for k in changed)
        raise InputError(
            f"run {run.name!r} already exists with other options ({what}): "
            "choose another --run name"
        )


def input_sha256(path: Path, display: str) -> str:
    """The SHA-256 of a whole input file."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
    except FileNotFoundError:
        raise InputError(f"{display}: no such file") from None
    return digest.hexdigest()
