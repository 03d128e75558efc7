"""What `ledger budget show` and `submit --dry-run` print: every cap with what is spent, in
flight and left, the providers paused, and the token queues in use."""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from ledger.core.db import read_db_now
from ledger.core.models import Job, Run
from ledger.core.states import IN_FLIGHT, State
from ledger.spend.budget import Budget, BudgetSource
from ledger.spend.caps import Cap, caps_for, recorded_caps, usage
from ledger.spend.pauses import describe_pause, pauses
from ledger.spend.queues import queue_limit
from ledger.usage.pricing import CostEstimate, usd


def all_caps(engine: Engine, budget: Budget) -> list[Cap]:
    """Every cap recorded in the ledger or set in ledger.toml, with its usage now."""
    with engine.connect() as connection:
        now = read_db_now(connection)
        recorded = recorded_caps(connection)
        scopes: dict[str, tuple[float, str]] = {}
        if budget.daily_usd is not None:
            scopes["daily"] = (budget.daily_usd, "ledger.toml")
        for provider, cap in budget.provider_daily_usd.items():
            scopes[f"provider:{provider}"] = (cap, "ledger.toml")
        for scope, cap in recorded.items():
            scopes[scope] = (cap, "ledger")
        caps = []
        for scope, (cap, origin) in scopes.items():
            spent, reserved = usage(connection, scope, now)
            caps.append(Cap(scope, cap, origin, spent, reserved))
    return caps


def cap_line(cap: Cap) -> str:
    """`daily: $10.00 (ledger.toml); $2.00 spent, $1.50 in flight, $6.50 left`."""
    return (
        f"{cap.scope}: {usd(cap.usd)} ({cap.origin}); {usd(cap.spent)} spent, "
        f"{usd(cap.reserved)} in flight, {usd(max(cap.remaining, 0.0))} left"
    )


def queue_lines(
    engine: Engine, budget: Budget, max_enqueued_tokens: int | None = None
) -> list[str]:
    """One line per (provider, account, model) queue with tokens in flight, and its limit."""
    in_queue = (Job.state.in_([s.value for s in IN_FLIGHT])) | (
        (Job.state == State.UPLOADED.value) & Job.submit_token.is_not(None)
    )
    with engine.connect() as connection:
        rows = connection.execute(
            select(Job.provider, Job.account, Job.model, func.sum(Job.est_input_tokens))
            .where(in_queue)
            .group_by(Job.provider, Job.account, Job.model)
            .order_by(Job.provider, Job.account, Job.model)
        ).all()
    lines = []
    for provider, account, model, tokens in rows:
        limit = queue_limit(budget, model, max_enqueued_tokens)
        shown = "no limit" if limit is None else f"limit {limit:,}"
        lines.append(
            f"{provider} {account or '(no account)'} {model}: {int(tokens):,} tokens ({shown})"
        )
    return lines


def budget_show(engine: Engine, budget: Budget) -> str:
    """`ledger budget show`: caps, pauses, token queues."""
    lines = ["caps:"]
    caps = all_caps(engine, budget)
    lines += [f"  {cap_line(cap)}" for cap in caps] or ["  none"]
    with engine.connect() as connection:
        now = read_db_now(connection)
        paused = pauses(connection)
    lines.append("paused providers:")
    for pause in paused:
        state = "" if pause.until is None or pause.until > now else " (past its time)"
        lines.append(f"  {describe_pause(pause)}{state}")
    if not paused:
        lines.append("  none")
    lines.append("token queues in use:")
    lines += [f"  {line}" for line in queue_lines(engine, budget)] or ["  none"]
    return "\n".join(lines)


class PlannedRun(Protocol):
    """What a dry run's plan tells about the run (ledger.build.plan.BuildPlan has it)."""

    @property
    def run_name(self) -> str: ...
    @property
    def provider(self) -> str: ...
    @property
    def cost(self) -> CostEstimate | None: ...


def estimate_against_budgets(engine: Engine, source: BudgetSource, plan: PlannedRun) -> str:
    """`submit --dry-run`: the run's estimate against what each cap that applies has left, a
    line each ("" when no cap applies)."""
    estimate = plan.cost.total_usd if plan.cost is not None else None
    budget, run_name, provider = source.current(), plan.run_name, plan.provider
    with engine.connect() as connection:
        now = read_db_now(connection)
        # A dry run's own jobs are held, so they count against nothing yet.
        caps = caps_for(connection, budget, provider=provider, run_name=run_name, now=now)
    if not caps:
        return ""
    lines = []
    for cap in caps:
        left = max(cap.remaining, 0.0)
        if estimate is None:
            verdict = "estimate unknown (no price)"
        elif estimate <= left:
            verdict = f"fits, {usd(left - estimate)} would be left"
        else:
            verdict = f"over by {usd(estimate - left)}: batches beyond it will wait"
        lines.append(
            f"budget {cap.scope}: {usd(cap.usd)}, {usd(left)} left; this run's estimate "
            f"{usd(estimate)}: {verdict}"
        )
    return "\n".join(lines)


def waiting_jobs(engine: Engine, run_name: str | None = None) -> list[dict[str, Any]]:
    """Jobs the create step holds back now, with why."""
    query = (
        select(Job.id, Run.name, Job.waiting_for)
        .join(Run, Run.id == Job.run_id)
        .where(Job.waiting_for.is_not(None), Job.state == State.UPLOADED.value)
    )
    if run_name is not None:
        query = query.where(Run.name == run_name)
    with engine.connect() as connection:
        return [
            {"job_id": job_id, "run": run, "waiting_for": why}
            for job_id, run, why in connection.execute(query.order_by(Job.id))
        ]
