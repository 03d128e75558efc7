"""Commands that move runs: submit, send, reconcile, cancel (retry: `ledger.commands.retry`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ledger import settings
from ledger.commands import (
    echo_transition,
    ledger_budget,
    ledger_config,
    ledger_engine,
)
from ledger.errors import LedgerError, ProviderError


@click.command()
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
@click.option(
    "--on-done",
    "on_done",
    default=None,
    metavar="CMD",
    help="With --loop or --until-done: run CMD through the shell once each run ends (every job "
    "normalized), with $LEDGER_RUN and $LEDGER_RUN_STATUS (succeeded, partial, failed) set.",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(min=0, max=65535),
    default=None,
    help="With --loop or --until-done: serve Prometheus metrics on 127.0.0.1:PORT/metrics "
    "(needs the `metrics` extra).",
)
@click.option(
    "--metrics-host",
    default="127.0.0.1",
    show_default=True,
    help="Interface the metrics are served on.",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Log lines on stderr: text, or one JSON object a line with run, job and batch ids "
    "(json logs each transition).",
)
@click.option(
    "--otlp-endpoint",
    default=None,
    metavar="URL",
    help="Send OpenTelemetry traces (a span per pass and per provider call) over OTLP/HTTP to "
    "URL, e.g. http://collector:4318/v1/traces (needs the otel extra).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log every step (debug level).")
@click.pass_context
def reconcile(
    ctx: click.Context,
    loop: bool,
    until_done: bool,
    interval: float,
    on_done: str | None,
    metrics_port: int | None,
    metrics_host: str,
    log_format: str,
    otlp_endpoint: str | None,
    verbose: bool,
    **options: Any,
) -> None:
    """Advance jobs through their provider: upload, create, poll, download, normalize.

    One pass by default; --loop keeps going, --until-done stops once nothing is left to do.
    On a terminal a live table shows each run's progress; otherwise plain lines (see
    docs/reconcile.md). SIGINT/SIGTERM finish the current step and release leases.
    """
    from ledger import observe
    from ledger.config import batch_provider_for
    from ledger.console import install_stop_signals, progress_display
    from ledger.errors import InputError
    from ledger.observe.logs import configure_logging
    from ledger.reconcile.engine import PassReport, PauseLoop, ReconcileOptions, Reconciler

    looping = loop or until_done
    if (on_done or metrics_port is not None) and not looping:
        raise InputError("--on-done and --metrics-port need --loop or --until-done")
    engine = ledger_engine(ctx)
    configure_logging(verbose, log_format, engine)
    provider_for = batch_provider_for(ledger_config(ctx))
    metrics = None
    if metrics_port is not None:
        metrics = observe.metrics_for(engine, options["run_name"])
        provider_for = metrics.wrap(provider_for)
    tracing = observe.tracing_for(otlp_endpoint) if otlp_endpoint else None
    display = progress_display(engine, options["run_name"])
    on_transition = display.on_transition
    if tracing is not None:
        provider_for = tracing.wrap(provider_for)
        on_transition = observe.both(display.on_transition, tracing.on_transition)
    reconciler = Reconciler(
        engine,
        ReconcileOptions(**options, budget=ledger_budget(ctx)),
        provider_for=provider_for,
        on_transition=on_transition,
    )
    hooks = [display.on_pass]
    if on_done:
        from ledger.observe.ondone import OnDone

        hooks.append(OnDone(engine, options["run_name"], on_done).on_pass)

    def on_pass(report: PassReport) -> None:
        for hook in hooks:
            hook(report)

    install_stop_signals(reconciler.stop_requested.set)
    if tracing is not None:
        tracing.watch(reconciler)
    if metrics is not None:
        metrics.watch(reconciler)
        try:
            port = metrics.serve(metrics_port or 0, metrics_host)
        except OSError as error:
            raise InputError(f"cannot serve metrics on {metrics_host}: {error}") from None
        click.echo(f"metrics on http://{metrics_host}:{port}/metrics", err=True)
    try:
        display.start()
        if looping:
            reconciler.run_loop(interval=interval, until_done=until_done, on_pass=on_pass)
        else:
            report = reconciler.run_pass()
            display.on_pass(report)
            if report.paused:
                raise PauseLoop(report.paused)
    except PauseLoop as pause:
        raise LedgerError(f"paused: {pause}") from None
    finally:
        display.close()
        if metrics is not None:
            metrics.close()
        if tracing is not None:
            tracing.close()


@click.command()
@click.argument("target")
@click.option("--base-url", default=None, help="Provider base URL for jobs with none recorded.")
@click.option("--json", "as_json", is_flag=True, help='Print [{"job_id": ..., "outcome": ...}].')
@click.pass_context
def cancel(ctx: click.Context, target: str, base_url: str | None, as_json: bool) -> None:
    """Cancel a run (by name) or one job (by id): unsent jobs at once, live batches at the
    provider (their partial results are still downloaded). A job whose create may have gone
    through unheard is looked up at the provider by its tag first, and its batch cancelled."""
    from ledger.config import batch_provider_for
    from ledger.query.report import job_ids_for
    from ledger.reconcile.cancel import cancel_jobs

    engine = ledger_engine(ctx)
    job_ids = job_ids_for(engine, target)
    provider_for = batch_provider_for(ledger_config(ctx))
    outcomes = cancel_jobs(engine, job_ids, base_url=base_url, provider_for=provider_for)
    if as_json:
        rows = [{"job_id": job_id, "outcome": str(o)} for job_id, o in outcomes.items()]
        click.echo(json.dumps(rows, indent=2))
        return
    for job_id, outcome in outcomes.items():
        click.echo(f"job {job_id}: {outcome}")


@click.command()
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
    help="Build and record the jobs, held: nothing is sent, not even by a running reconcile, "
    "until `ledger send RUN` or a submit without --dry-run.",
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
@click.option(
    "--json-output",
    "as_json",
    is_flag=True,
    help="Print the plan and outcome as one JSON object (--json is the requests' JSON mode).",
)
@click.pass_context
def submit(
    ctx: click.Context,
    input_path: Path,
    dry_run: bool,
    base_url: str | None,
    provider: str | None,
    poll_min: float,
    as_json: bool,
    **options: Any,
) -> None:
    """Build INPUT into Batch API shard files, record the run, then upload and create its batches.

    INPUT is JSONL or CSV: ready Batch API lines, or rows with an id and a prompt, messages or
    input. Prints the plan: jobs, requests, bytes, estimated tokens and cost. With --dry-run
    nothing is sent. Submitting the same input under the same run name again sends only what
    was not sent yet; `ledger reconcile` takes the batches the rest of the way. Exits 1 when
    every job it sent failed (the provider refused each upload or create).
    """
    from ledger.build.claude_tokens import with_claude_counter
    from ledger.build.run import BuildOptions, build_fields, build_run
    from ledger.build.targets import check_target_providers
    from ledger.config import submit_provider
    from ledger.console import format_plan, plan_fields
    from ledger.spend import estimate_against_budgets, record_estimates, record_run_cap

    config = ledger_config(ctx)
    max_cost = options.pop("max_cost", None)
    build_options = BuildOptions(
        provider=submit_provider(config, provider),
        models=config.models,
        **build_fields(options),
    )
    check_target_providers(config, (t.provider for t in build_options.targets()), base_url)
    build_options = with_claude_counter(build_options, config, base_url)
    engine = ledger_engine(ctx)
    plan = build_run(
        engine,
        input_path,
        build_options,
        on_skip=lambda message: click.echo(f"skipped: {message}", err=True),
        held_reason="dry run" if dry_run else None,
    )
    record_run_cap(engine, plan.run_name, max_cost)
    record_estimates(engine, ledger_budget(ctx).current(), plan.run_name)
    for warning in plan.warnings:
        click.echo(f"warning: {warning}", err=True)
    if plan.skipped:
        click.echo(f"skipped {plan.skipped} invalid row(s)", err=True)
    if not as_json:
        click.echo(format_plan(plan))
    if plan.existing and not as_json:
        click.echo(f"run {plan.run_name} was already built from this input: nothing rebuilt.")
    if dry_run:
        if as_json:
            click.echo(json.dumps(plan_fields(plan, sent=False, errors=[]), indent=2))
        else:
            if lines := estimate_against_budgets(engine, ledger_budget(ctx), plan):
                click.echo(lines)
            click.echo(
                f"dry run: {len(plan.sent_jobs)} job(s) built and recorded, held; nothing sent "
                f"(`ledger send {plan.run_name}` sends them)."
            )
        return
    errors, failure = _send(ctx, plan.run_name, base_url, poll_min, quiet=as_json)
    if as_json:
        click.echo(json.dumps(plan_fields(plan, sent=True, errors=errors), indent=2))
    if failure is not None:
        raise ProviderError(failure)


@click.command()
@click.argument("run_name", metavar="RUN")
@click.option("--base-url", default=None, help="Provider base URL for jobs with none recorded.")
@settings.options("send")
@click.pass_context
def send(ctx: click.Context, run_name: str, base_url: str | None, poll_min: float) -> None:
    """Send RUN's batches: release the jobs a `submit --dry-run` held, then upload and create
    them, as `ledger submit` does; `ledger reconcile` takes them the rest of the way. Exits 1
    when every job it sent failed."""
    _, failure = _send(ctx, run_name, base_url, poll_min)
    if failure is not None:
        raise ProviderError(failure)


def _send(
    ctx: click.Context, run_name: str, base_url: str | None, poll_min: float, *, quiet: bool = False
) -> tuple[list[str], str | None]:
    """Release the run's held jobs and send what is built (submit and send); the send's errors,
    and why, when every job sent failed (the command then exits 1). `quiet` (submit
    --json-output) leaves stdout to the JSON."""
    from ledger.reconcile.send import release_run

    released = release_run(ledger_engine(ctx), run_name)
    if released and not quiet:
        click.echo(f"released {released} held job(s) of run {run_name}.")
    errors, failure = send_built(ctx, run_name, base_url, poll_min, quiet=quiet)
    if not quiet and failure is None:
        click.echo(f"sent run {run_name}; `ledger reconcile --run {run_name}` follows it.")
    return errors, failure


def send_built(
    ctx: click.Context, run_name: str, base_url: str | None, poll_min: float, *, quiet: bool
) -> tuple[list[str], str | None]:
    """Upload and create the run's built jobs (submit, send and retry): the send's errors,
    printed as warnings, and why, when every job sent failed. A paused provider or budget is
    an error of its own."""
    from ledger.config import batch_provider_for
    from ledger.reconcile.send import all_failed, send_run, sendable_jobs

    engine = ledger_engine(ctx)
    taken = sendable_jobs(engine, run_name)
    report = send_run(
        engine,
        run_name,
        base_url=base_url,
        poll_min=poll_min,
        provider_for=batch_provider_for(ledger_config(ctx)),
        on_transition=None if quiet else echo_transition,
        budget=ledger_budget(ctx),
    )
    if report.paused:
        raise LedgerError(f"paused: {report.paused}")
    for error in report.errors:
        click.echo(f"warning: {error}", err=True)
    return list(report.errors), all_failed(engine, taken)


#: The commands `cli.py` adds to the group.
COMMANDS: tuple[click.Command, ...] = (
    reconcile,
    cancel,
    submit,
    send,
)
