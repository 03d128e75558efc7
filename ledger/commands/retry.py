"""`ledger retry`: rerun what did not succeed, over `ledger.results.retry`."""

from __future__ import annotations

import json

import click

from ledger import settings
from ledger.commands import ledger_budget, ledger_engine
from ledger.commands.run import send_built
from ledger.errors import ProviderError


@click.command()
@click.argument("run_name", metavar="RUN")
@click.option("--failed", "statuses", flag_value="failed", multiple=True, help="Failed requests.")
@click.option("--expired", "statuses", flag_value="expired", multiple=True, help="Expired ones.")
@click.option(
    "--cancelled", "statuses", flag_value="cancelled", multiple=True, help="Cancelled ones."
)
@click.option(
    "--missing", "statuses", flag_value="missing", multiple=True, help="Ones with no result."
)
@click.option(
    "--unavailable",
    "statuses",
    flag_value="unavailable",
    multiple=True,
    help="Ones whose result files were gone.",
)
@click.option(
    "--only",
    "only",
    multiple=True,
    metavar="WORDS",
    help="Only these, comma-separated: request statuses (failed, expired ...), HTTP statuses or "
    "classes (429, 5xx) and error codes (rate_limit_exceeded).",
)
@click.option(
    "--max-output-tokens",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Ask each retried request for N output tokens (a truncated answer gets room to "
    "finish); default: the limit each was sent with.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Build and record the retry job, held: nothing sent until `ledger send RUN`.",
)
@click.option("--base-url", default=None, help="Provider base URL (default: the parent job's).")
@settings.options("retry")
@click.option("--json", "as_json", is_flag=True, help="Print the retry jobs as one JSON object.")
@click.pass_context
def retry(
    ctx: click.Context,
    run_name: str,
    statuses: tuple[str, ...],
    only: tuple[str, ...],
    max_output_tokens: int | None,
    dry_run: bool,
    base_url: str | None,
    poll_min: float,
    as_json: bool,
) -> None:
    """Rerun the requests of RUN that did not succeed, in new jobs of the same run.

    With no flag, every failed, expired, cancelled, missing and unavailable request of the jobs
    already normalized is retried (jobs still running are left alone). The retry jobs keep the
    run's limits. Requests that succeeded are never sent again; once a retry job is normalized
    its results replace the old ones in `ledger results`. Nothing to retry is not an error;
    exits 1 when every retry job sent failed.

    Answers not worth scoring are re-asked only when named: `--only invalid,truncated
    --max-output-tokens 2000` re-asks the answers that broke their schema or were cut short,
    with a larger output budget.
    """
    from ledger.results.retry import retry_run
    from ledger.spend import record_estimates

    engine = ledger_engine(ctx)
    plan = retry_run(
        engine,
        run_name,
        (*statuses, *only),
        held_reason="dry run" if dry_run else None,
        max_output_tokens=max_output_tokens,
    )
    record_estimates(engine, ledger_budget(ctx).current(), run_name)
    summary = {
        "run": run_name,
        "requests": plan.request_count,
        "sent": not dry_run and bool(plan.jobs),
        "held": dry_run and bool(plan.jobs),
        "jobs": [
            {"job_id": job_id, "requests": count, "parents": parents, "file": str(path)}
            for job_id, path, count, parents in plan.jobs
        ],
    }
    if plan.note is not None:
        click.echo(json.dumps({**summary, "note": plan.note}, indent=2) if as_json else plan.note)
        return
    for job_id, path, count, parents in plan.jobs if not as_json else ():
        click.echo(
            f"job {job_id}: {count} request(s) from job(s) "
            f"{', '.join(map(str, parents))} -> {path.name}"
        )
    if dry_run and as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    if dry_run:
        click.echo(
            f"dry run: {plan.request_count} request(s) recorded for retry, held; nothing sent "
            f"(`ledger send {run_name}` sends them)."
        )
        return
    _, failure = send_built(ctx, run_name, base_url, poll_min, quiet=as_json)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    elif failure is None:
        click.echo(
            f"sent {plan.request_count} request(s); `ledger reconcile --run {run_name}` follows."
        )
    if failure is not None:
        raise ProviderError(failure)


#: The commands `cli.py` adds to the group.
COMMANDS: tuple[click.Command, ...] = (retry,)
