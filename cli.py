"""The `ledger` command: a thin click shell over the `ledger` library.

Each command's docstring is its `--help`. Commands parse options, call one library function and
print; anything that decides or writes lives in `ledger/`.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import click

from ledger import settings
from ledger.errors import InputError, LedgerError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from ledger.config import LedgerConfig

# Choices click needs to build --help. They are spelled out here so that starting `ledger` loads
# neither the emulator nor the database layer; tests/unit/test_cli.py keeps each equal to
# the library's own (named in the comment).
#: ledger.emulator.SCENARIOS
EMULATOR_SCENARIOS = (
    "normal",
    "expire",
    "cancel",
    "fail_validation",
    "token_limit_exceeded",
    "request_failures",
    "all_fail",
    "slow_finalizing",
    "not_found_grace",
    "zipped_output",
)
#: ledger.results.export.FORMATS
RESULT_FORMATS = ("jsonl", "csv")
#: ledger.results.schema.STATUSES
RESULT_STATUSES = ("succeeded", "failed", "expired", "cancelled", "missing")
#: ledger.query.sql.DEFAULT_TIME_BUDGET
SQL_TIME_BUDGET = 10.0


class LedgerGroup(click.Group):
    """The one place errors meet exit codes: every LedgerError (the library's errors a user can
    cause) is printed as one line on stderr, `error: <message>`, and ends the command with its
    class's exit code (1 a provider or runtime failure, 2 the user's input or configuration).
    With --debug (or LEDGER_DEBUG=1) the traceback comes first. Any other exception is a bug
    and propagates with its traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LedgerError as error:
            if ctx.params.get("debug"):
                traceback.print_exc()
            click.echo(f"error: {_one_line(error)}", err=True)
            ctx.exit(error.exit_code)


def _one_line(error: BaseException) -> str:
    """The error's message on a single line (a database or SDK message may span several)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return " ".join(lines) or type(error).__name__


@click.group(cls=LedgerGroup)
@click.option(
    "--db",
    envvar="LEDGER_DB",
    default=None,
    metavar="PATH|URL",
    help="Ledger database: SQLite path or SQLAlchemy URL (default ./ledger.db, or $LEDGER_DB).",
)
@click.option(
    "--config",
    "config_path",
    envvar="LEDGER_CONFIG",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="FILE",
    help="Settings file (default ./ledger.toml when present, or $LEDGER_CONFIG); "
    "see docs/config.md.",
)
@click.option(
    "--debug",
    is_flag=True,
    envvar="LEDGER_DEBUG",
    help="Show the traceback of an error, not just its one line (or $LEDGER_DEBUG=1).",
)
@click.version_option(package_name="llm-batch-ledger")
@click.pass_context
def cli(ctx: click.Context, db: str | None, config_path: Path | None, debug: bool) -> None:
    """A crash-safe, queryable ledger for LLM batch jobs.

    Exit codes: 0 success, 1 a provider or runtime failure, 2 bad input or configuration.
    """
    from ledger.config import load_config

    config = load_config(config_path)
    ctx.obj = {"db": db, "config": config}
    # The file's [defaults] become the options' defaults; an option given on the line wins.
    ctx.default_map = config.command_defaults()


def _ledger(ctx: click.Context) -> Engine:
    """The ledger `--db` names, opened (created and migrated when needed)."""
    from ledger.core.db import open_ledger

    return open_ledger(ctx.obj["db"])


def _config(ctx: click.Context) -> LedgerConfig:
    return ctx.obj["config"]


@cli.command()
@click.pass_context
def init(ctx: click.Context) -> None:
    """Create the ledger database (or upgrade it to the newest schema)."""
    from ledger.core.db import schema_revision

    engine = _ledger(ctx)
    click.echo(f"ledger ready: {engine.url.render_as_string()} (schema {schema_revision(engine)})")


@cli.command()
@click.option("--run", "run_name", default=None, help="Only this run.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@click.pass_context
def status(ctx: click.Context, run_name: str | None, as_json: bool) -> None:
    """Show each run and its jobs: state, request counts, tokens, cost and age."""
    import json

    from ledger.console import format_status
    from ledger.query.report import status_report

    report = status_report(_ledger(ctx), run_name)
    click.echo(json.dumps(report, indent=2) if as_json else format_status(report, run_name))


@cli.command()
@click.argument("job_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def show(ctx: click.Context, job_id: int, as_json: bool) -> None:
    """Show one job's fields and its full event history."""
    import json

    from ledger.console import format_job
    from ledger.query.report import job_detail

    found = job_detail(_ledger(ctx), job_id)
    if found is None:
        raise InputError(f"no job with id {job_id}")
    job, events = found
    if as_json:
        click.echo(json.dumps({"job": job, "events": events}, indent=2, default=str))
    else:
        click.echo(format_job(job, events))


@cli.command()
@click.option("--limit", default=50, show_default=True, help="How many events.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def history(ctx: click.Context, limit: int, as_json: bool) -> None:
    """Show the most recent state changes of all jobs, oldest first."""
    import json

    from ledger.console import format_history
    from ledger.query.report import recent_events

    events = recent_events(_ledger(ctx), limit)
    click.echo(json.dumps(events, indent=2, default=str) if as_json else format_history(events))


@cli.command()
@click.argument("query")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of row objects.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV with a header row.")
@click.option(
    "--time-budget",
    default=SQL_TIME_BUDGET,
    show_default=True,
    help="Stop the query after this many seconds.",
)
@click.pass_context
def sql(ctx: click.Context, query: str, as_json: bool, as_csv: bool, time_budget: float) -> None:
    """Run one read-only SQL query over the ledger (tables, and views such as run_progress).

    Writes, ATTACH, PRAGMA and more than one statement are refused.
    """
    from ledger.console import format_csv, format_json_rows, format_table
    from ledger.core.db import resolve_url
    from ledger.query.sql import QueryRefused, run_readonly_query

    try:
        result = run_readonly_query(resolve_url(ctx.obj["db"]), query, time_budget=time_budget)
    except QueryRefused as error:
        raise InputError(str(error)) from None
    if as_json:
        click.echo(format_json_rows(result.columns, result.rows))
    elif as_csv:
        click.echo(format_csv(result.columns, result.rows), nl=False)
    else:
        click.echo(format_table(result.columns, result.rows))


def _configure_logging(verbose: bool) -> None:
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("ledger")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG if verbose else logging.WARNING)


@cli.command()
@click.option("--run", "run_name", default=None, help="Only this run's jobs (default: all).")
@click.option("--loop", is_flag=True, help="Keep reconciling until SIGINT or SIGTERM.")
@click.option(
    "--until-done",
    is_flag=True,
    help="Loop until no job has a step left (all normalized, or stuck for a person to look at).",
)
@click.option(
    "--base-url",
    default=None,
    help="Provider base URL for jobs not yet sent, recorded on each (default: the provider's in "
    "ledger.toml, else $OPENAI_BASE_URL).",
)
@settings.options("reconcile")
@click.option("-v", "--verbose", is_flag=True, help="Log every step (debug level).")
@click.pass_context
def reconcile(
    ctx: click.Context,
    loop: bool,
    until_done: bool,
    interval: float,
    verbose: bool,
    **options: Any,
) -> None:
    """Advance jobs through their provider: upload, create, poll, download, normalize.

    One pass by default; --loop keeps going, --until-done stops once nothing is left to do.
    SIGINT/SIGTERM finish the current step and release leases.
    """
    from ledger.config import batch_provider_for
    from ledger.console import ProgressDisplay, install_stop_signals
    from ledger.reconcile.engine import PauseLoop, ReconcileOptions, Reconciler

    _configure_logging(verbose)
    engine = _ledger(ctx)
    display = ProgressDisplay(engine, options["run_name"])
    reconciler = Reconciler(
        engine,
        ReconcileOptions(**options),
        provider_for=batch_provider_for(_config(ctx)),
        on_transition=display.on_transition,
    )
    install_stop_signals(reconciler.stop_requested.set)
    try:
        if loop or until_done:
            reconciler.run_loop(interval=interval, until_done=until_done, on_pass=display.on_pass)
        else:
            report = reconciler.run_pass()
            display.on_pass(report)
            if report.paused:
                raise PauseLoop(report.paused)
    except PauseLoop as pause:
        raise LedgerError(f"paused: {pause}") from None
    finally:
        display.close()


@cli.command()
@click.argument("target")
@click.option("--base-url", default=None, help="Provider base URL for jobs with none recorded.")
@click.pass_context
def cancel(ctx: click.Context, target: str, base_url: str | None) -> None:
    """Cancel a run (by name) or one job (by id): unsent jobs at once, live batches at the
    provider (their partial results are still downloaded)."""
    from ledger.config import batch_provider_for
    from ledger.query.report import job_ids_for
    from ledger.reconcile.cancel import cancel_jobs

    engine = _ledger(ctx)
    job_ids = job_ids_for(engine, target)
    provider_for = batch_provider_for(_config(ctx))
    outcomes = cancel_jobs(engine, job_ids, base_url=base_url, provider_for=provider_for)
    for job_id, outcome in outcomes.items():
        click.echo(f"job {job_id}: {outcome}")


@cli.command()
@click.argument("run_name", metavar="RUN")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(RESULT_FORMATS),
    default="jsonl",
    show_default=True,
    help="JSON lines (the full result) or CSV (flattened, no embeddings).",
)
@click.option(
    "-o",
    "--output",
    type=click.File("wb"),
    default="-",
    metavar="FILE",
    help="Write to FILE instead of standard output.",
)
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(RESULT_STATUSES),
    help="Only results with this status (repeat for several).",
)
@click.pass_context
def results(
    ctx: click.Context, run_name: str, fmt: str, output: BinaryIO, statuses: tuple[str, ...]
) -> None:
    """Write a run's results: one per input request, in input order (see docs/results.md).

    Only normalized jobs have results; when a retry job carried a request again, its result
    replaces the earlier one.
    """
    from ledger.results.export import export_results

    summary = export_results(_ledger(ctx), run_name, output, fmt=fmt, statuses=statuses)
    if summary.jobs_not_normalized:
        jobs = ", ".join(str(job_id) for job_id in summary.jobs_not_normalized)
        click.echo(f"note: jobs not normalized yet, their requests are left out: {jobs}", err=True)


@cli.group()
def emulator() -> None:
    """A local OpenAI Batch API (and Anthropic Message Batches API) for offline rehearsals."""


@emulator.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=0, show_default=True, help="Port to bind (0: a free one).")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Keep files and batches in this directory across restarts (default: in memory).",
)
@click.option("--api-key", default=None, help="Accept only this bearer key (default: any key).")
@click.option(
    "--stage-seconds",
    type=float,
    default=1.0,
    show_default=True,
    help="Wall seconds per lifecycle stage.",
)
@click.option(
    "--polls-per-stage",
    type=int,
    default=None,
    help="Move a batch one stage every N GETs of it instead of by wall time.",
)
@click.option(
    "--scenario",
    type=click.Choice(EMULATOR_SCENARIOS),
    default="normal",
    show_default=True,
    help="Default scenario for new batches.",
)
@click.option(
    "--scenario-rule",
    "scenario_rules",
    multiple=True,
    metavar="TEXT=SCENARIO",
    help="Play SCENARIO for batches whose input file name contains TEXT (repeatable).",
)
@click.option(
    "--failure-rate",
    type=float,
    default=0.25,
    show_default=True,
    help="Share of requests that fail in the request_failures scenario.",
)
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="JSON",
    help='Inject a fault, e.g. \'{"kind": "http_500", "every": 3}\' (repeatable).',
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of every shuffle.")
@click.option("--verbose", is_flag=True, help="Log each request on stderr.")
def emulator_serve(
    host: str,
    port: int,
    state_dir: str | None,
    api_key: str | None,
    stage_seconds: float,
    polls_per_stage: int | None,
    scenario: str,
    scenario_rules: tuple[str, ...],
    failure_rate: float,
    faults: tuple[str, ...],
    seed: int,
    verbose: bool,
) -> None:
    """Serve the emulator until SIGINT or SIGTERM; prints its base URL first.

    Point the SDK at it: OPENAI_BASE_URL=<base URL> OPENAI_API_KEY=sk-anything. The Anthropic
    Message Batches routes are there too: ANTHROPIC_BASE_URL=<base URL without /v1>.
    """
    from ledger.emulator import Emulator, EmulatorConfig, run_until_signalled
    from ledger.emulator.config import parse_fault, parse_scenario_rule

    try:
        config = EmulatorConfig(
            host=host,
            port=port,
            state_dir=state_dir,
            api_key=api_key,
            stage_seconds=stage_seconds,
            polls_per_stage=polls_per_stage,
            scenario=scenario,
            scenario_rules=[parse_scenario_rule(rule) for rule in scenario_rules],
            failure_rate=failure_rate,
            faults=[parse_fault(fault) for fault in faults],
            seed=seed,
            verbose=verbose,
        )
        server = Emulator(config)
    except ValueError as error:
        raise InputError(str(error)) from None
    try:
        run_until_signalled(server, lambda running: click.echo(running.base_url))
    except OSError as error:
        raise InputError(f"cannot serve on {host}:{port}: {error}") from None


def _echo_transition(job_id: int, old: object, new: object) -> None:
    click.echo(f"job {job_id}: {old} -> {new}")


@cli.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.option(
    "--run",
    "run_name",
    help="Run name: letters, digits, _ . - (at most 200; default: the input file's name "
    "without suffix).",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Build and record the jobs, send nothing (a later submit or reconcile sends them).",
)
@click.option(
    "--base-url",
    default=None,
    help="Provider base URL, recorded on each job (default: the provider's in ledger.toml, else "
    "$OPENAI_BASE_URL).",
)
@click.option("--limit", type=int, help="Take only the first N valid requests.")
@click.option(
    "--skip-invalid",
    is_flag=True,
    help="Report bad rows and leave them out, instead of refusing the input.",
)
@settings.options("submit")
@click.pass_context
def submit(
    ctx: click.Context,
    input_path: Path,
    dry_run: bool,
    base_url: str | None,
    provider: str | None,
    poll_min: float,
    **options: Any,
) -> None:
    """Build INPUT into Batch API shard files, record the run, then upload and create its batches.

    INPUT is JSONL or CSV: ready Batch API lines, or rows with an id and a prompt, messages or
    input. Prints the plan: jobs, requests, bytes, estimated tokens and cost. With --dry-run
    nothing is sent. Submitting the same input under the same run name again sends only what
    was not sent yet; `ledger reconcile` takes the batches the rest of the way.
    """
    from ledger.build.run import BuildOptions, build_run, format_plan
    from ledger.config import submit_provider

    build_options = BuildOptions(
        provider=submit_provider(_config(ctx), provider), **settings.as_fields(options)
    )
    engine = _ledger(ctx)
    plan = build_run(
        engine,
        input_path,
        build_options,
        on_skip=lambda message: click.echo(f"skipped: {message}", err=True),
    )
    for warning in plan.warnings:
        click.echo(f"warning: {warning}", err=True)
    if plan.skipped:
        click.echo(f"skipped {plan.skipped} invalid row(s)", err=True)
    click.echo(format_plan(plan))
    if plan.existing:
        click.echo(f"run {plan.run_name} was already built from this input: nothing rebuilt.")
    if dry_run:
        click.echo(f"dry run: {len(plan.jobs)} job(s) built and recorded; nothing sent.")
        return
    from ledger.config import batch_provider_for
    from ledger.reconcile.send import send_run

    report = send_run(
        engine,
        plan.run_name,
        base_url=base_url,
        poll_min=poll_min,
        provider_for=batch_provider_for(_config(ctx)),
        on_transition=_echo_transition,
    )
    if report.paused:
        raise LedgerError(f"paused: {report.paused}")
    for error in report.errors:
        click.echo(f"warning: {error}", err=True)
    click.echo(f"sent run {plan.run_name}; `ledger reconcile --run {plan.run_name}` follows it.")


@cli.command()
@click.argument("run_name", metavar="RUN")
@click.option("--failed", "statuses", flag_value="failed", multiple=True, help="Failed requests.")
@click.option("--expired", "statuses", flag_value="expired", multiple=True, help="Expired ones.")
@click.option(
    "--cancelled", "statuses", flag_value="cancelled", multiple=True, help="Cancelled ones."
)
@click.option(
    "--missing", "statuses", flag_value="missing", multiple=True, help="Ones with no result."
)
@click.option("--dry-run", is_flag=True, help="Build and record the retry job, send nothing.")
@click.option("--base-url", default=None, help="Provider base URL (default: the parent job's).")
@settings.options("retry")
@click.pass_context
def retry(
    ctx: click.Context,
    run_name: str,
    statuses: tuple[str, ...],
    dry_run: bool,
    base_url: str | None,
    poll_min: float,
) -> None:
    """Rerun the requests of RUN that did not succeed, in a new job of the same run.

    With no flag, every failed, expired, cancelled and missing request is retried. Requests
    that succeeded are never sent again; once the retry job is normalized its results replace
    the old ones in `ledger results`.
    """
    from ledger.config import batch_provider_for
    from ledger.reconcile.send import send_run
    from ledger.results.retry import RETRYABLE, retry_run

    engine = _ledger(ctx)
    plan = retry_run(engine, run_name, statuses or RETRYABLE)
    for job_id, path, count, parents in plan.jobs:
        click.echo(
            f"job {job_id}: {count} request(s) from job(s) "
            f"{', '.join(map(str, parents))} -> {path.name}"
        )
    if dry_run:
        click.echo(f"dry run: {plan.request_count} request(s) recorded for retry; nothing sent.")
        return
    report = send_run(
        engine,
        run_name,
        base_url=base_url,
        poll_min=poll_min,
        provider_for=batch_provider_for(_config(ctx)),
        on_transition=_echo_transition,
    )
    if report.paused:
        raise LedgerError(f"paused: {report.paused}")
    click.echo(
        f"sent {plan.request_count} request(s); `ledger reconcile --run {run_name}` follows."
    )


@cli.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to put the demo's ledger and files (default: a new temporary directory).",
)
@click.option(
    "--provider",
    type=click.Choice(["openai", "anthropic"]),
    default="openai",
    show_default=True,
    help="Which batch API the emulator plays.",
)
def demo(directory: Path | None, provider: str) -> None:
    """Run a whole batch lifecycle offline against the built-in emulator, in under a minute.

    Submits bundled prompts as three batches (one expires part way), reconciles them to
    normalized results, retries what expired, and shows status, results and SQL views.
    """
    from ledger.demo import run_demo

    run_demo(directory, echo=click.echo, provider=provider)


@cli.command()
@click.pass_context
def doctor(ctx: click.Context) -> None:
    """Check the database and its schema, the offline tokenizer, and each configured provider
    (a tiny chat call, and embeddings where it has them); exit code 1 if anything fails.

    Providers come from ledger.toml, else the default OpenAI one ($OPENAI_API_KEY,
    $OPENAI_BASE_URL). Prints one line per check: `ok <check>: ...` or `FAIL <check>: ...`.
    """
    from ledger.query.doctor import run_checks

    results = run_checks(_config(ctx), ctx.obj["db"])
    for result in results:
        click.echo(result.line())
    if not all(result.ok for result in results):
        ctx.exit(1)


def main() -> None:
    cli(prog_name="ledger")


if __name__ == "__main__":
    sys.exit(main())
