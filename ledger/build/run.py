"""Building a run: the user's rows become Batch API shard files, and the run and its jobs are
recorded in state `built`.

`build_run` is the whole step. It streams the input once (constant memory), writes shards into a
staging directory beside the run directory, and only when every line was valid does it record the
run in one transaction, move the staging directory into place and commit. So a bad line leaves
nothing behind: no run, no jobs, no run directory. Building the same input with the same options
under the same run name again reports the recorded plan and changes nothing.

The plan it reports is `ledger.build.plan`, the run directory's manifest.json is
`ledger.build.manifest`, and staging and moving into place are `ledger.build.run_directory`.
"""

from __future__ import annotations

import errno
import gc
import re
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from ledger import settings
from ledger.build import reuse_record
from ledger.build.artifacts import put_shards
from ledger.build.body_options import (
    BodyOptions,
    JsonSchemaFormat,
    read_json_schema,
    read_system_option,
)
from ledger.build.endpoints import resolve_endpoint
from ledger.build.inputs import InputFile
from ledger.build.manifest import MANIFEST, manifest_bytes, manifest_job
from ledger.build.plan import TOKEN_ESTIMATE, BuildPlan, input_sha256, recorded_plan
from ledger.build.record import bulk_session, find_run, insert_jobs, insert_run
from ledger.build.reuse import ledger_lookup
from ledger.build.run_directory import (
    make_staging_dir,
    move_into_place,
    remove_staging_dirs,
    resolve_workdir,
    stale_staging_dirs,
)
from ledger.build.shard_limits import ShardLimits, within_provider_limits
from ledger.build.streaming import SHARD_DIR, Built, SkipReporter, build_shards
from ledger.build.targets import Target, common_endpoint, option_targets, target_parser
from ledger.core.durable import write_durably
from ledger.errors import InputError, StorageError
from ledger.usage.capabilities import ModelTable, default_table, load_model_table
from ledger.usage.pricing import PriceTable

# Names other modules import from here; they live in the modules named above.
__all__ = [
    "BuildOptions",
    "build_fields",
    "build_run",
    "input_sha256",
    "manifest_job",
    "recorded_plan",
    "resolve_workdir",
    "run_name_for",
]

#: Run names become directory names.
RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,199}")


@dataclass(frozen=True)
class BuildOptions:
    """Everything `ledger submit` can say about how to build a run. The defaults of the fields
    that are settings (all but run_name, limit and skip_invalid) are declared in ledger.settings."""

    #: The run's name; the input file's stem when not given.
    run_name: str | None = None
    #: The batch provider the jobs go to: a name in `adapters.REGISTRY`. The shards are
    #: OpenAI-format lines whatever it is; an adapter translates them at upload if it must.
    provider: str = settings.default("provider")
    #: The model of rows that name none, `provider:model` or for `provider`; several: every
    #: row goes to each (`ledger.build.targets`). Rows and ready lines may name theirs.
    model: str | tuple[str, ...] | None = settings.default("model")
    #: `responses`, `chat`, `embeddings` or a URL; None: responses, or the ready lines' url.
    endpoint: str | None = settings.default("endpoint")
    #: System prompt text (instructions for responses, a system message for chat).
    system: str | None = settings.default("system")
    max_output_tokens: int | None = settings.default("max_output_tokens")
    temperature: float | None = settings.default("temperature")
    #: JSON mode (`json_object`).
    json_mode: bool = settings.default("json")
    #: Structured output.
    json_schema: JsonSchemaFormat | None = settings.default("json_schema")
    max_requests: int = settings.default("max_requests")
    max_bytes: int = settings.default("max_bytes")
    max_tokens_per_job: int | None = settings.default("max_tokens_per_job")
    #: Refuse a request whose input (plus max output) tokens exceed this.
    max_context: int | None = settings.default("max_context")
    #: Seconds the provider keeps the result files (passed to create); None: its default.
    output_expires_after: int | None = settings.default("output_expires_after")
    #: Take only the first N requests.
    limit: int | None = None
    #: Report bad rows and leave them out, instead of refusing the input.
    skip_invalid: bool = False
    count_tokens: bool = settings.default("count_tokens")
    #: Answer what already succeeded in the ledger from there, send duplicates once (docs/reuse.md).
    reuse: bool = settings.default("reuse")
    #: Count Claude input tokens with Anthropic's endpoint (`claude_counter`), else approximate.
    count_claude_tokens: bool = settings.default("count_claude_tokens")
    #: Count Gemini input tokens with Google's countTokens (`claude_counter`), else approximate.
    count_gemini_tokens: bool = settings.default("count_gemini_tokens")
    #: Where `runs/<run>/` goes; default: the SQLite file's directory, else the current one.
    workdir: Path | None = settings.default("workdir")
    #: A price file replacing or adding models of the packaged table (else $LEDGER_PRICES).
    prices: Path | None = settings.default("prices")
    #: ledger.toml's `[models."NAME"]` rows, over the packaged model table (not a setting).
    models: Mapping[str, Mapping[str, Any]] | None = None
    #: Counts one chat body's input tokens with the provider's own endpoint
    #: (`adapters.anthropic.tokens`, `adapters.gemini.tokens`), given by the caller with
    #: `count_claude_tokens` / `count_gemini_tokens` (not a setting).
    claude_counter: Callable[[Mapping[str, Any]], int] | None = None

    def __post_init__(self) -> None:
        # One model is recorded as a string, as before several could be given.
        if isinstance(self.model, list | tuple):
            models = tuple(self.model)
            object.__setattr__(self, "model", models[0] if len(models) == 1 else models or None)

    def targets(self, table: ModelTable | None = None) -> tuple[Target, ...]:
        """The targets `model` names (none: each row names its own)."""
        return option_targets(self.model, target_parser(self.provider, table))

    def recorded(self) -> dict[str, Any]:
        """The options that shape the built files, as stored in `runs.options` and compared on
        resubmission (not the run name, the workdir or the price table)."""
        shaping = asdict(replace(self, claude_counter=None))  # a client is not copied
        # The provider has its own column on the run, and is compared from there.
        for key in (
            "run_name",
            "workdir",
            "prices",
            "provider",
            "models",
            "count_claude_tokens",
            "count_gemini_tokens",
            "claude_counter",
        ):
            del shaping[key]
        if not self.reuse:  # runs recorded before --reuse existed hold no such key
            del shaping["reuse"]
        return shaping

    def check(self) -> None:
        """Refuse contradictory or out-of-range options before reading anything."""
        from adapters.registry import REGISTRY, request_rules

        if self.provider not in REGISTRY:
            known = ", ".join(sorted(REGISTRY))
            raise InputError(f"--provider: unknown provider {self.provider!r} (known: {known})")
        self.shard_limits().check()
        targets = self.targets(self.model_table())
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
        endpoint = self.default_endpoint()
        if self.endpoint is not None:
            endpoint = resolve_endpoint(self.endpoint)
            for provider in dict.fromkeys(t.provider for t in targets or [self]):
                takes = request_rules(provider).endpoints
                if takes is not None and endpoint not in takes:
                    raise InputError(
                        f"--endpoint {self.endpoint}: provider {provider} takes "
                        f"{' and '.join(takes)} only"
                    )
        self.body_options(endpoint).check()

    def default_endpoint(self) -> str:
        """The endpoint of simple rows without --endpoint: the first one every provider of
        `--model` takes (the run's provider's when none is named), else responses."""
        return common_endpoint(t.provider for t in self.targets() or [self])

    def model_table(self) -> ModelTable:
        """The model table the build checks and prices with: packaged, ledger.toml's rows, then
        `prices` (else $LEDGER_PRICES)."""
        if not self.models and self.prices is None:
            return default_table()
        return load_model_table(self.models, price_file=self.prices)

    def shard_limits(self, provider: str | None = None) -> ShardLimits:
        """The limits one shard is cut to: the options', within the provider's (the run's
        provider's when none is named)."""
        limits = ShardLimits(self.max_requests, self.max_bytes, self.max_tokens_per_job)
        return within_provider_limits(limits, provider or self.provider)

    def body_options(self, endpoint: str) -> BodyOptions:
        """How simple rows become bodies for `endpoint`."""
        return BodyOptions(
            endpoint=endpoint,
            # Each target's model is set where rows are made (`ledger.build.targets.RowMaker`).
            model=self.model if isinstance(self.model, str) else None,
            system=self.system,
            max_output_tokens=self.max_output_tokens,
            temperature=self.temperature,
            json_mode=self.json_mode,
            json_schema=self.json_schema,
        )


def build_run(
    engine: Engine,
    input_path: str | Path,
    options: BuildOptions | None = None,
    *,
    on_skip: SkipReporter | None = None,
    held_reason: str | None = None,
) -> BuildPlan:
    """Build `input_path` into shard files and record the run and its jobs as `built`.

    Raises `InputError` (nothing written) for a bad input or options, and for a run name that
    already holds a different input or other options. `on_skip` hears each row left out by
    `skip_invalid`. With `held_reason` ("dry run") the jobs are recorded held, in the same
    transaction: no reconciler sends them until they are released (`ledger send`).
    """
    options = options or BuildOptions()
    options.check()
    source_path = Path(input_path)
    name = run_name_for(source_path, options.run_name)
    table = options.model_table()
    prices = PriceTable.from_models(table)
    with engine.connect() as connection:
        existing = find_run(connection, name)
    if existing is not None:
        return recorded_plan(engine, name, prices, expect=(source_path, options))
    workdir = resolve_workdir(engine, options.workdir)
    run_dir = workdir / "runs" / name
    # An earlier submit of this run killed mid-build left its staging directory behind.
    remove_staging_dirs(stale_staging_dirs(workdir, name))
    staging = make_staging_dir(workdir, name)
    built: Built | None = None
    try:
        with _cyclic_gc_paused():
            started = time.perf_counter()
            source = InputFile(source_path, str(input_path))
            lookup = ledger_lookup(engine) if options.reuse else None
            built = build_shards(source, staging, options, on_skip, table, lookup)
            shards_done = time.perf_counter()
            run_id = _record(
                engine, name, source_path, options, built, staging, run_dir, held_reason
            )
        timings = {"build": shards_done - started, "record": time.perf_counter() - shards_done}
    except (OSError, sqlite3.OperationalError) as error:
        if not _disk_full(error):
            raise
        raise StorageError(
            f"{workdir}: no space left on the device while building run {name!r} "
            "(its partial files are removed; free some space and submit again)"
        ) from error
    finally:
        if built is not None:
            built.spool.close()
        shutil.rmtree(staging, ignore_errors=True)
    plan = recorded_plan(engine, name, prices)
    assert plan.run_id == run_id and built is not None
    return replace(plan, skipped=built.skipped, warnings=built.warnings, timings=timings)


def _token_estimate(built: Built) -> str:
    return "exact" if built.tokens_exact else "approximate"


def _disk_full(error: OSError | sqlite3.OperationalError) -> bool:
    """Whether a write failed for want of space: a shard's write (ENOSPC, or EDQUOT over a
    quota) or the spool's SQLite ("database or disk is full")."""
    if isinstance(error, OSError):
        return error.errno in (errno.ENOSPC, errno.EDQUOT)
    return "disk is full" in str(error)


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


def _record(
    engine: Engine,
    name: str,
    source_path: Path,
    options: BuildOptions,
    built: Built,
    staging: Path,
    run_dir: Path,
    held_reason: str | None,
) -> int:
    """Put the shards into the artifact store; record the run, its jobs and requests; move the
    staging directory into place; commit. (A shard stored for a build that then fails is litter
    for `ledger gc`.)"""
    refs = put_shards(engine, built.shards)
    reused = reuse_record.write_reused_results(engine, built.reuser)
    moved = False
    try:
        with engine.connect() as connection, bulk_session(connection), connection.begin():
            try:
                run_id = insert_run(
                    connection,
                    name=name,
                    provider=options.provider,
                    endpoint=built.endpoint,
                    model=built.model,
                    input_path=source_path.resolve(),
                    input_sha256=built.input_sha256,
                    # How the tokens were counted rides along; a resubmission does not compare it.
                    options={**options.recorded(), TOKEN_ESTIMATE: _token_estimate(built)},
                    request_count=sum(s.requests for s in built.shards)
                    + reuse_record.copied_requests(built.reuser),
                )
            except IntegrityError:
                raise InputError(
                    f"run {name!r} was recorded by another submit meanwhile: run again to see it"
                ) from None
            shard_dir = run_dir / SHARD_DIR
            job_ids = insert_jobs(
                connection,
                run_id,
                options.provider,
                built.endpoint,
                built.shards,
                shard_dir,
                held_reason,
                refs,
            )
            reuse_record.record_requests_and_copies(
                connection, run_id, built, job_ids, reused, run_dir
            )
            built.spool.close()
            manifest = manifest_bytes(
                engine, run_id, name, source_path, options, built, job_ids, run_dir
            )
            write_durably(staging / MANIFEST, manifest)
            move_into_place(engine, staging, run_dir)
            moved = True
    except BaseException:
        if moved:
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    return run_id


def build_fields(values: Mapping[str, Any]) -> dict[str, Any]:
    """Setting values by parameter name, as given on the command line or in ledger.toml, turned
    into what the option dataclasses take: `system` @FILE read, `json_schema` read, `max_bytes`
    with a unit parsed, paths as Path."""
    fields = dict(values)
    system = fields.get("system")
    if isinstance(system, str):
        fields["system"] = read_system_option(system)
    schema = fields.get("json_schema")
    if isinstance(schema, str | Path):
        fields["json_schema"] = read_json_schema(schema)
    if isinstance(fields.get("max_bytes"), str):
        fields["max_bytes"] = settings.parse_size(fields["max_bytes"])
    for name in ("workdir", "prices"):
        if isinstance(fields.get(name), str):
            fields[name] = Path(fields[name])
    return fields
