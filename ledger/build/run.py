"""Building a run: the user's rows become Batch API shard files, and the run and its jobs are
recorded in state `built`.

`build_run` is the whole step. It streams the input once (constant memory), writes shards into a
staging directory beside the run directory, and only when every line was valid does it record the
run in one transaction, move the staging directory into place and commit. So a bad line leaves
nothing behind: no run, no jobs, no run directory. Building the same input with the same options
under the same run name again reports the recorded plan and changes nothing.
"""

from __future__ import annotations

import gc
import hashlib
import re
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from ledger.build.bodies import RESPONSES, BodyOptions, JsonSchemaFormat, resolve_endpoint
from ledger.build.inputs import InputFile
from ledger.build.record import (
    find_run,
    insert_jobs,
    insert_requests,
    insert_run,
    load_jobs,
)
from ledger.build.shards import MAX_BYTES_PER_BATCH, MAX_REQUESTS_PER_BATCH, Shard, ShardLimits
from ledger.build.streaming import SHARD_DIR, Built, SkipReporter, build_shards
from ledger.config import DEFAULT_PROVIDER
from ledger.core.db import sqlite_path
from ledger.core.durable import fsync_directory, write_durably
from ledger.errors import InputError
from ledger.query.report import format_table
from ledger.usage.pricing import (
    CostEstimate,
    ModelUsage,
    PriceTable,
    estimate_cost,
    load_price_table,
)

#: Run names become directory names.
RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,199}")
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class BuildOptions:
    """Everything `ledger submit` can say about how to build a run."""

    #: The run's name; the input file's stem when not given.
    run_name: str | None = None
    #: The batch provider the jobs go to: a name in `adapters.REGISTRY`. The shards are
    #: OpenAI-format lines whatever it is; an adapter translates them at upload if it must.
    provider: str = DEFAULT_PROVIDER
    #: The default model (rows and ready lines may name theirs).
    model: str | None = None
    #: `responses`, `chat`, `embeddings` or a URL; None: responses, or the ready lines' url.
    endpoint: str | None = None
    #: System prompt text (instructions for responses, a system message for chat).
    system: str | None = None
    max_output_tokens: int | None = None
    temperature: float | None = None
    #: JSON mode (`json_object`).
    json_mode: bool = False
    #: Structured output.
    json_schema: JsonSchemaFormat | None = None
    max_requests: int = MAX_REQUESTS_PER_BATCH
    max_bytes: int = MAX_BYTES_PER_BATCH
    max_tokens_per_job: int | None = None
    #: Refuse a request whose input (plus max output) tokens exceed this.
    max_context: int | None = None
    #: Take only the first N requests.
    limit: int | None = None
    #: Report bad rows and leave them out, instead of refusing the input.
    skip_invalid: bool = False
    count_tokens: bool = True
    #: Where `runs/<run>/` goes; default: the SQLite file's directory, else the current one.
    workdir: Path | None = None
    #: A price file replacing or adding models of the packaged table (else $LEDGER_PRICES).
    prices: Path | None = None

    def recorded(self) -> dict[str, Any]:
        """The options that shape the built files, as stored in `runs.options` and compared on
        resubmission (not the run name, the workdir or the price table)."""
        shaping = asdict(self)
        # The provider has its own column on the run, and is compared from there.
        for key in ("run_name", "workdir", "prices", "provider"):
            del shaping[key]
        return shaping

    def check(self) -> None:
        """Refuse contradictory or out-of-range options before reading anything."""
        from adapters import REGISTRY

        if self.provider not in REGISTRY:
            known = ", ".join(sorted(REGISTRY))
            raise InputError(f"--provider: unknown provider {self.provider!r} (known: {known})")
        self.shard_limits().check()
        for option, value in (("--limit", self.limit), ("--max-context", self.max_context)):
            if value is not None and value < 1:
                raise InputError(f"{option}: must be at least 1")
        if not self.count_tokens:
            for option, value in (
                ("--max-tokens-per-job", self.max_tokens_per_job),
                ("--max-context", self.max_context),
            ):
                if value is not None:
                    raise InputError(f"{option}: needs token counting (drop --no-count-tokens)")
        endpoint = resolve_endpoint(self.endpoint) if self.endpoint is not None else RESPONSES
        self.body_options(endpoint).check()

    def shard_limits(self) -> ShardLimits:
        """The limits one shard is cut to."""
        return ShardLimits(self.max_requests, self.max_bytes, self.max_tokens_per_job)

    def body_options(self, endpoint: str) -> BodyOptions:
        """How simple rows become bodies for `endpoint`."""
        return BodyOptions(
            endpoint=endpoint,
            model=self.model,
            system=self.system,
            max_output_tokens=self.max_output_tokens,
            temperature=self.temperature,
            json_mode=self.json_mode,
            json_schema=self.json_schema,
        )


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
    def request_count(self) -> int:
        """Requests in all jobs."""
        return sum(job.requests for job in self.jobs)

    @property
    def bytes(self) -> int:
        """Bytes of all shard files."""
        return sum(job.bytes for job in self.jobs)

    @property
    def est_input_tokens(self) -> int:
        """Estimated input tokens of all jobs."""
        return sum(job.est_input_tokens for job in self.jobs)

    @property
    def manifest_path(self) -> Path:
        """The run's manifest.json."""
        return self.run_dir / MANIFEST


def build_run(
    engine: Engine,
    input_path: str | Path,
    options: BuildOptions | None = None,
    *,
    on_skip: SkipReporter | None = None,
) -> BuildPlan:
    """Build `input_path` into shard files and record the run and its jobs as `built`.

    Raises `InputError` (nothing written) for a bad input or options, and for a run name that
    already holds a different input or other options. `on_skip` hears each row left out by
    `skip_invalid`.
    """
    options = options or BuildOptions()
    options.check()
    source_path = Path(input_path)
    name = run_name_for(source_path, options.run_name)
    prices = load_price_table(options.prices)
    with engine.connect() as connection:
        existing = find_run(connection, name)
    if existing is not None:
        return recorded_plan(engine, name, prices, expect=(source_path, options))
    workdir = resolve_workdir(engine, options.workdir)
    run_dir = workdir / "runs" / name
    # Staged beside runs/, so a failed build leaves not even an empty runs/ directory behind.
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".ledger-build-{name}-", dir=workdir))
    except OSError as error:
        raise InputError(f"--workdir: cannot write in {workdir} ({error.strerror})") from None
    built: Built | None = None
    try:
        with _cyclic_gc_paused():
            started = time.perf_counter()
            source = InputFile(source_path, str(input_path))
            built = build_shards(source, staging, options, on_skip)
            shards_done = time.perf_counter()
            run_id = _record(engine, name, source_path, options, built, staging, run_dir)
        timings = {"build": shards_done - started, "record": time.perf_counter() - shards_done}
    finally:
        if built is not None:
            built.spool.close()
        shutil.rmtree(staging, ignore_errors=True)
    plan = recorded_plan(engine, name, prices)
    assert plan.run_id == run_id and built is not None
    return replace(plan, skipped=built.skipped, warnings=built.warnings, timings=timings)


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for a build.

    A build allocates millions of short-lived dicts and lists and no reference cycles; the
    collector's passes over them cost about 30% of the build (measured with bench/build.py).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def run_name_for(input_path: Path, given: str | None) -> str:
    """The run's name: as given (checked), or the input file's stem made directory-safe."""
    if given is not None:
        if not RUN_NAME.fullmatch(given):
            raise InputError(
                f"--run: {given!r} is not a run name (letters, digits, _ . -; at most 200)"
            )
        return given
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", input_path.stem).strip("-._")[:200]
    return stem or "run"


def resolve_workdir(engine: Engine, override: Path | None) -> Path:
    """Where `runs/` lives: as given, beside a SQLite ledger file, or the current directory."""
    if override is not None:
        workdir = Path(override).expanduser().resolve()
    else:
        database = sqlite_path(engine.url.render_as_string(hide_password=True))
        workdir = database.parent if database is not None else Path.cwd().resolve()
    try:
        workdir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"--workdir: cannot create {workdir} ({error.strerror})") from None
    return workdir


def _record(
    engine: Engine,
    name: str,
    source_path: Path,
    options: BuildOptions,
    built: Built,
    staging: Path,
    run_dir: Path,
) -> int:
    """Record the run, its jobs and requests; move the staging directory into place; commit."""
    moved = False
    try:
        with engine.begin() as connection:
            try:
                run_id = insert_run(
                    connection,
                    name=name,
                    provider=options.provider,
                    endpoint=built.endpoint,
                    model=built.model,
                    input_path=source_path.resolve(),
                    input_sha256=built.input_sha256,
                    options=options.recorded(),
                    request_count=sum(s.requests for s in built.shards),
                )
            except IntegrityError:
                raise InputError(
                    f"run {name!r} was recorded by another submit meanwhile: run again to see it"
                ) from None
            shard_dir = run_dir / SHARD_DIR
            job_ids = insert_jobs(
                connection, run_id, options.provider, built.endpoint, built.shards, shard_dir
            )
            shard_of = built.shard_set.shard_of
            insert_requests(
                connection,
                run_id,
                (
                    [
                        (job_ids[shard_of(model, line)], custom_id, line, tokens)
                        for custom_id, line, model, tokens in batch
                    ]
                    for batch in built.spool.batches()
                ),
            )
            built.spool.close()
            manifest = _manifest(
                engine, run_id, name, source_path, options, built, job_ids, run_dir
            )
            write_durably(staging / MANIFEST, manifest)
            _move_into_place(engine, staging, run_dir)
            moved = True
    except BaseException:
        if moved:
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    return run_id


def _manifest(
    engine: Engine,
    run_id: int,
    name: str,
    source_path: Path,
    options: BuildOptions,
    built: Built,
    job_ids: Mapping[int, int],
    run_dir: Path,
) -> bytes:
    """manifest.json: the run and its jobs as the ledger records them."""
    shard_dir = run_dir / SHARD_DIR
    return orjson.dumps(
        {
            "ledger": engine.url.render_as_string(hide_password=True),
            "run": {
                "id": run_id,
                "name": name,
                "provider": options.provider,
                "endpoint": built.endpoint,
                "model": built.model,
                "input_path": str(source_path.resolve()),
                "input_sha256": built.input_sha256,
                "request_count": sum(s.requests for s in built.shards),
                "skipped": built.skipped,
            },
            "options": options.recorded(),
            "jobs": [
                manifest_job(job_ids[shard.index], shard, shard_dir / shard.path.name)
                for shard in built.shards
            ],
        },
        option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS,
    )


def manifest_job(job_id: int, shard: Shard, path: Path) -> dict[str, Any]:
    """One job's entry in a run's manifest.json."""
    return {
        "job_id": job_id,
        "shard_index": shard.index,
        "model": shard.model,
        "path": str(path),
        "sha256": shard.sha256,
        "bytes": shard.bytes,
        "requests": shard.requests,
        "est_input_tokens": shard.est_input_tokens,
        "max_output_tokens": shard.max_output_tokens,
    }


def _move_into_place(engine: Engine, staging: Path, run_dir: Path) -> None:
    """Rename the staging directory to the run directory, replacing only our own leftovers."""
    if not run_dir.parent.exists():
        run_dir.parent.mkdir(parents=True)
        fsync_directory(run_dir.parent.parent)
    if run_dir.exists():
        # The ledger has no such run (checked in this transaction), so a directory here is the
        # leftover of a submit that died between this rename and its commit, or someone else's.
        if not _left_by_this_ledger(engine, run_dir):
            raise InputError(
                f"{run_dir} exists but the ledger has no run {run_dir.name!r}: "
                "move it away or choose another --run"
            )
        shutil.rmtree(run_dir)
    staging.rename(run_dir)
    fsync_directory(run_dir.parent)


def _left_by_this_ledger(engine: Engine, run_dir: Path) -> bool:
    try:
        manifest = orjson.loads((run_dir / MANIFEST).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return False
    return manifest.get("ledger") == engine.url.render_as_string(hide_password=True)


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
        )
        for job, detail in jobs
    )
    cost = None
    if options.get("count_tokens", True):
        cost = estimate_cost(
            prices,
            (ModelUsage(j.model, j.est_input_tokens, j.max_output_tokens) for j in job_plans),
        )
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
    given = orjson.loads(orjson.dumps(options.recorded()))
    changed = sorted(k for k in set(recorded) | set(given) if recorded.get(k) != given.get(k))
    if changed:
        what = ", ".join(f"{k}: {recorded.get(k)!r} then, {given.get(k)!r} now" for k in changed)
        raise InputError(
            f"run {run.name!r} already exists with other options ({what}): "
            "choose another --run name"
        )


def human_bytes(count: int) -> str:
    """`532 B`, `14.2 kB`, `199.8 MB` (decimal units, as the provider counts)."""
    size = float(count)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{count} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def format_plan(plan: BuildPlan) -> str:
    """The plan as `ledger submit` prints it: totals, one line per job, the estimated cost."""
    tokens = f"{plan.est_input_tokens:,} est. input tokens" if plan.cost else "tokens not counted"
    lines = [
        f"run {plan.run_name}: {len(plan.jobs)} job{'s' * (len(plan.jobs) != 1)}, "
        f"{plan.request_count:,} requests, {human_bytes(plan.bytes)}, {tokens}",
        f"  {plan.provider} {plan.endpoint}, model {plan.model}; files in {plan.run_dir}",
    ]
    columns = ["job", "shard", "model", "requests", "bytes", "est_tokens", "file"]
    rows = [
        [
            job.job_id,
            job.shard_index,
            job.model,
            job.requests,
            job.bytes,
            job.est_input_tokens if plan.cost else "",
            job.path.name,
        ]
        for job in plan.jobs
    ]
    lines.append(format_table(columns, rows))
    if plan.cost is None:
        lines.append("estimated cost: unknown (token counting was off)")
    else:
        lines.append(f"estimated cost: {plan.cost.describe()}")
    return "\n".join(lines)
