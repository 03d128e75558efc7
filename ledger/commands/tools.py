"""Tools around the ledger: the emulator, the offline demo, doctor."""

from __future__ import annotations

from pathlib import Path

import click

from ledger.commands import (
    EMULATOR_SCENARIOS,
    ledger_budget,
    ledger_config,
    ledger_engine,
)
from ledger.errors import InputError


@click.group()
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


@click.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to put the demo's ledger and files (default: a new temporary directory).",
)
@click.option(
    "--provider",
    type=click.Choice(
        ["openai", "anthropic", "azure", "groq", "together", "xai", "mistral", "gemini"]
    ),
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


@click.command()
@click.option(
    "--json", "as_json", is_flag=True, help='Print {"ok": ..., "checks": [{name, ok, detail}]}.'
)
@click.pass_context
def doctor(ctx: click.Context, as_json: bool) -> None:
    """Check the database and its schema, the offline tokenizer, and each configured provider
    (a tiny chat call, and embeddings where it has them; for an OpenAI-compatible batch host such
    as groq or azure: its key variable is set and one list of its batches answers); exit code 1
    if anything fails.

    Providers come from ledger.toml, else the default OpenAI one ($OPENAI_API_KEY,
    $OPENAI_BASE_URL). Prints one line per check: `ok <check>: ...` or `FAIL <check>: ...`.
    """
    from ledger.query.doctor import run_checks

    results = run_checks(ledger_config(ctx), ctx.obj["db"])
    if as_json:
        import json

        checks = [{"name": r.name, "ok": r.ok, "detail": r.detail} for r in results]
        click.echo(json.dumps({"ok": all(r.ok for r in results), "checks": checks}, indent=2))
    for result in results if not as_json else ():
        click.echo(result.line())
    if not all(result.ok for result in results):
        ctx.exit(1)


@click.command()
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where runs/ lives (default: the SQLite ledger's directory, else the current one).",
)
@click.option("--dry-run", is_flag=True, help="Only list what would be removed.")
@click.pass_context
def gc(ctx: click.Context, workdir: Path | None, dry_run: bool) -> None:
    """Remove what is left behind: the staging directories (partial shard files and a spool
    database) of `ledger submit` processes that are gone, or untouched for a day, and the
    artifacts in the artifact store that no job references and were stored over a day ago.

    A build in progress is never touched, nor a directory whose builder cannot be proved dead
    (another machine's, say) until a day has passed. Prints one line per directory and per
    artifact. The next submit of the same run removes its own leftovers too.
    """
    from ledger.artifacts import store_for
    from ledger.artifacts.collect import remove_artifacts, unreferenced_artifacts
    from ledger.build.run_directory import default_workdir, remove_staging_dirs, stale_staging_dirs
    from ledger.core.db import resolve_url

    where = (
        workdir.expanduser().resolve() if workdir else default_workdir(resolve_url(ctx.obj["db"]))
    )
    verb = "would remove" if dry_run else "removed"
    leftovers = stale_staging_dirs(where)
    if not dry_run:
        remove_staging_dirs(leftovers)
    for leftover in leftovers:
        click.echo(f"{verb} {leftover.path} (run {leftover.run}: {leftover.reason})")
    if not leftovers:
        click.echo(f"no build leftovers in {where}")
    engine = ledger_engine(ctx)
    store = store_for(engine)
    litter = unreferenced_artifacts(engine, store)
    if not dry_run:
        remove_artifacts(store, litter)
    for item in litter:
        hours = item.age / 3600
        click.echo(f"{verb} {item.ref} (no job references it; stored {hours:.0f} h ago)")
    if not litter:
        click.echo(f"no unreferenced artifacts in {store.url}")


@click.group()
def budget() -> None:
    """Spending caps, paused providers and token queues (see docs/spend.md)."""


@budget.command("show")
@click.pass_context
def budget_show(ctx: click.Context) -> None:
    """Every cap with what is spent, in flight and left; paused providers; token queues."""
    from ledger.spend.show import budget_show as show

    click.echo(show(ledger_engine(ctx), ledger_budget(ctx).current()))


@budget.command("set")
@click.argument("scope")
@click.argument("usd")
@click.pass_context
def budget_set(ctx: click.Context, scope: str, usd: str) -> None:
    """Record the cap of SCOPE (daily, provider:NAME or run:NAME) as USD, over ledger.toml's;
    USD `none` removes it. Held jobs go on the next reconcile pass."""
    from ledger.core.db import read_db_now
    from ledger.spend import set_cap

    try:
        amount = None if usd.lower() == "none" else float(usd)
    except ValueError:
        raise InputError(f"budget set: {usd!r} is not an amount in USD (or none)") from None
    engine = ledger_engine(ctx)
    with engine.begin() as connection:
        set_cap(connection, scope, amount, read_db_now(connection))
    click.echo(f"budget {scope}: {'removed' if amount is None else f'${amount:,.2f}'}")


@budget.command("resume")
@click.argument("provider")
@click.pass_context
def budget_resume(ctx: click.Context, provider: str) -> None:
    """End PROVIDER's pause for its quota or billing: its batches are created again."""
    from ledger.spend import resume_provider

    resumed = resume_provider(ledger_engine(ctx), provider)
    click.echo(f"provider {provider}: {'resumed' if resumed else 'was not paused'}")


#: The commands `cli.py` adds to the group.
COMMANDS: tuple[click.Command, ...] = (
    emulator,
    demo,
    doctor,
    gc,
    budget,
)
