"""Commands that read the ledger: init, status, show, history, sql, results, prices, ui."""

from __future__ import annotations

from contextlib import nullcontext
from typing import BinaryIO

import click

from ledger.commands import (
    RESULT_FORMATS,
    RESULT_STATUSES,
    SQL_MAX_ROWS,
    SQL_TIME_BUDGET,
    ledger_engine,
)
from ledger.errors import InputError


@click.command()
@click.pass_context
def init(ctx: click.Context) -> None:
    """Create the ledger database (or upgrade it to the newest schema)."""
    from ledger.core.db import schema_revision

    engine = ledger_engine(ctx)
    click.echo(f"ledger ready: {engine.url.render_as_string()} (schema {schema_revision(engine)})")


@click.command()
@click.argument("run_name", metavar="[RUN]", required=False)
@click.option("--run", "run_option", default=None, hidden=True, help="Same as RUN (older form).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (every run with its jobs).")
@click.pass_context
def status(ctx: click.Context, run_name: str | None, run_option: str | None, as_json: bool) -> None:
    """Show each run on one line: provider, model, requests done by status, jobs by state, cost
    against the estimate stored at submit, and its last error. With RUN, that run's line, its
    estimated against actual tokens and cost, and a table of its jobs (state, model, batch,
    estimated and actual tokens and cost, last error). `unknown`: a model has no price."""
    import json

    from ledger.console import format_status
    from ledger.query.report import status_report

    run_name = run_name or run_option
    report = status_report(ledger_engine(ctx, readonly=True), run_name)
    if run_name is not None and not report:
        raise InputError(f"no run named {run_name!r}")
    click.echo(json.dumps(report, indent=2) if as_json else format_status(report, run_name))


@click.command()
@click.argument("job_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def show(ctx: click.Context, job_id: int, as_json: bool) -> None:
    """Show one job's fields and its full event history."""
    import json

    from ledger.console import format_job
    from ledger.query.report import job_detail

    found = job_detail(ledger_engine(ctx, readonly=True), job_id)
    if found is None:
        raise InputError(f"no job with id {job_id}")
    job, events = found
    if as_json:
        click.echo(json.dumps({"job": job, "events": events}, indent=2, default=str))
    else:
        click.echo(format_job(job, events))


@click.command()
@click.option("--limit", default=50, show_default=True, help="How many events.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def history(ctx: click.Context, limit: int, as_json: bool) -> None:
    """Show the most recent state changes of all jobs, oldest first."""
    import json

    from ledger.console import format_history
    from ledger.query.report import recent_events

    events = recent_events(ledger_engine(ctx, readonly=True), limit)
    click.echo(json.dumps(events, indent=2, default=str) if as_json else format_history(events))


@click.command()
@click.argument("query")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of row objects.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV with a header row.")
@click.option(
    "--time-budget",
    type=click.FloatRange(min=0, min_open=True),
    default=SQL_TIME_BUDGET,
    show_default=True,
    help="Stop the query (running and fetching its rows) after this many seconds.",
)
@click.option(
    "--max-rows",
    type=click.IntRange(min=1),
    default=SQL_MAX_ROWS,
    show_default=True,
    help="Return at most this many rows (a note on stderr says when rows were cut).",
)
@click.pass_context
def sql(
    ctx: click.Context, query: str, as_json: bool, as_csv: bool, time_budget: float, max_rows: int
) -> None:
    """Run one read-only SQL query over the ledger (tables, and views such as run_progress).

    Writes, ATTACH, PRAGMA, more than one statement, and functions that reach outside the
    ledger (server files, settings, locks, extensions) are refused. See docs/schema.md.
    """
    from ledger.console import format_csv, format_json_rows, format_table
    from ledger.core.db import resolve_url
    from ledger.query.sql import run_readonly_query

    result = run_readonly_query(
        resolve_url(ctx.obj["db"]), query, time_budget=time_budget, max_rows=max_rows
    )
    if as_json:
        click.echo(format_json_rows(result.columns, result.rows))
    elif as_csv:
        click.echo(format_csv(result.columns, result.rows), nl=False)
    else:
        click.echo(format_table(result.columns, result.rows))
    if result.truncated:
        click.echo(f"note: {result.truncated}; more rows matched", err=True)


@click.command()
@click.argument("run_name", metavar="RUN")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(RESULT_FORMATS),
    default="jsonl",
    show_default=True,
    help="JSON lines (the full result), CSV (flattened, no embeddings) or Parquet (the CSV "
    "columns typed, plus cost_usd; needs -o and the parquet extra).",
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
@click.option(
    "--with-input",
    is_flag=True,
    help="Add each request's input row, every field of it, as `input` (CSV: a last column of "
    "JSON text): an eval's gold label beside the answer.",
)
@click.option(
    "--json-summary",
    is_flag=True,
    help="Write a summary object on stderr after the results: run, written, jobs_not_normalized.",
)
@click.pass_context
def results(
    ctx: click.Context,
    run_name: str,
    fmt: str,
    output: BinaryIO,
    statuses: tuple[str, ...],
    with_input: bool,
    json_summary: bool,
) -> None:
    """Write a run's results: one per input request, in input order (see docs/results.md).

    Only normalized jobs have results; when a retry job carried a request again, its result
    replaces the earlier one.
    """
    from ledger.results.arrow_process import lean_arrow
    from ledger.results.export import export_results

    if fmt == "parquet" and getattr(output, "name", "-") in ("-", "<stdout>"):
        raise InputError("--format parquet writes a file: give -o FILE")
    # This process is the command's own: Arrow may take its leanest settings (about 75 MB less).
    with lean_arrow() if fmt == "parquet" else nullcontext():
        summary = export_results(
            ledger_engine(ctx, readonly=True),
            run_name,
            output,
            fmt=fmt,
            statuses=statuses,
            with_input_rows=with_input,
        )
    if json_summary:
        import json

        fields = {"run": run_name, "written": summary.written}
        fields["jobs_not_normalized"] = list(summary.jobs_not_normalized)
        click.echo(json.dumps(fields), err=True)
    elif summary.jobs_not_normalized:
        jobs = ", ".join(str(job_id) for job_id in summary.jobs_not_normalized)
        click.echo(f"note: jobs not normalized yet, their requests are left out: {jobs}", err=True)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8780, show_default=True, help="Port to bind (0: a free one).")
@click.option(
    "--token",
    envvar="LEDGER_UI_TOKEN",
    default=None,
    help="Required of every request (?token= once, then a cookie; or a Bearer header); "
    "needed to bind anything but loopback. Default $LEDGER_UI_TOKEN.",
)
@click.pass_context
def ui(ctx: click.Context, host: str, port: int, token: str | None) -> None:
    """Serve a live, read-only dashboard of the ledger in the browser (the `ui` extra):
    runs and their progress, jobs and their timelines, requests, errors and charts."""
    from ledger.ui import serve

    serve(ctx.obj["db"], host=host, port=port, token=token, echo=click.echo)


@click.command()
@click.argument("model", required=False)
@click.option(
    "--prices",
    type=click.Path(dir_okay=False),
    default=None,
    help="A price file over the packaged table (else $LEDGER_PRICES).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def prices(ctx: click.Context, model: str | None, prices: str | None, as_json: bool) -> None:
    """List the model table's batch prices (USD per 1M tokens) and limits, or MODEL's, with each
    row's source and the date it was checked; then the ledger's models that have no price."""
    import json

    from ledger.commands import ledger_config
    from ledger.console import format_prices
    from ledger.usage.capabilities import load_model_table
    from ledger.usage.listing import price_listing

    table = load_model_table(ledger_config(ctx).models, price_file=prices)
    listing = price_listing(ledger_engine(ctx), model, table=table)
    if as_json:
        rows = [row.as_dict() for row in listing.rows]
        click.echo(json.dumps({"models": rows, "unpriced": listing.unpriced}, indent=2))
    else:
        click.echo(format_prices(listing))


#: The commands `cli.py` adds to the group.
COMMANDS: tuple[click.Command, ...] = (
    init,
    status,
    show,
    history,
    sql,
    results,
    prices,
    ui,
)
