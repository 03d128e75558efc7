"""The money caps and what counts against them.

A job counts against a cap from its create intent on: its reservation is the estimate recorded
with the intent (`jobs.est_cost_usd`), held while the job is `uploaded` with a submit token or
has a batch; once normalized it is settled to the job's actual cost (`jobs.cost_usd`). A create
that failed, a job cancelled before its batch, and a batch sent back by `token_limit_exceeded`
hold nothing (no batch, no token). So a reservation is never a row to forget to delete: it is
what the job's own state says, written by the same guarded transitions that move it.

The caps: `daily` (the whole ledger per UTC day), `provider:NAME` (one provider per UTC day),
`run:NAME` (one run, from `submit --max-cost`). The day of a job is the UTC day of its create
intent (`jobs.submitted_at`, by the database's clock). A cap recorded in the ledger (`ledger
budget set`, `--max-cost`) wins over ledger.toml's for the same scope.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, case, delete, func, insert, or_, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.elements import ColumnElement

from ledger.core.db import read_db_now
from ledger.core.models import BudgetCap, Job, Run
from ledger.core.states import State
from ledger.errors import InputError
from ledger.spend.budget import Budget

DAY = 86_400.0


@dataclass(frozen=True)
class Cap:
    """One cap that applies, and what already counts against it."""

    #: `daily`, `provider:NAME` or `run:NAME`.
    scope: str
    usd: float
    #: `ledger` (recorded by `ledger budget set` / `--max-cost`) or `ledger.toml`.
    origin: str
    #: Actual cost of the normalized jobs in scope.
    spent: float = 0.0
    #: Estimates of the jobs in scope whose cost is not known yet.
    reserved: float = 0.0

    @property
    def used(self) -> float:
        return self.spent + self.reserved

    @property
    def remaining(self) -> float:
        return self.usd - self.used

    def describe(self) -> str:
        """`the daily budget`, `provider openai's daily budget`, `run r's --max-cost`."""
        kind, _, name = self.scope.partition(":")
        if kind == "daily":
            return "the daily budget"
        if kind == "provider":
            return f"provider {name}'s daily budget"
        return f"run {name}'s --max-cost"


def charge() -> ColumnElement[float]:
    """What one job counts against a cap (see the module docstring)."""
    holding = or_(
        Job.batch_id.is_not(None),
        and_(Job.state == State.UPLOADED.value, Job.submit_token.is_not(None)),
    )
    return case(
        (Job.state == State.NORMALIZED.value, func.coalesce(Job.cost_usd, 0.0)),
        (holding, func.coalesce(Job.est_cost_usd, 0.0)),
        else_=0.0,
    )


def usage(
    connection: Connection, scope: str, now: float, *, exclude_job: int | None = None
) -> tuple[float, float]:
    """(spent, reserved) of the jobs in `scope` (see Cap)."""
    normalized = Job.state == State.NORMALIZED.value
    query = select(
        func.coalesce(func.sum(case((normalized, charge()), else_=0.0)), 0.0),
        func.coalesce(func.sum(case((normalized, 0.0), else_=charge())), 0.0),
    )
    kind, _, name = scope.partition(":")
    if kind == "run":
        query = query.join(Run, Run.id == Job.run_id).where(Run.name == name)
    else:
        start = day_start(now)
        query = query.where(Job.submitted_at >= start, Job.submitted_at < start + DAY)
        if kind == "provider":
            query = query.where(Job.provider == name)
    if exclude_job is not None:
        query = query.where(Job.id != exclude_job)
    spent, reserved = connection.execute(query).one()
    return float(spent), float(reserved)


def day_start(now: float) -> float:
    """Midnight UTC of the day `now` (epoch seconds) falls in."""
    return now - now % DAY


def recorded_caps(connection: Connection) -> dict[str, float]:
    """Every cap recorded in the ledger, by scope."""
    rows = connection.execute(select(BudgetCap.scope, BudgetCap.usd)).all()
    return {scope: float(usd) for scope, usd in rows}


def caps_for(
    connection: Connection,
    budget: Budget,
    *,
    provider: str,
    run_name: str,
    now: float,
    exclude_job: int | None = None,
) -> list[Cap]:
    """The caps a job of `provider` in `run_name` must stay under, each with its usage."""
    recorded = recorded_caps(connection)
    configured: dict[str, float | None] = {
        "daily": budget.daily_usd,
        f"provider:{provider}": budget.provider_daily_usd.get(provider),
        f"run:{run_name}": None,
    }
    caps = []
    for scope, from_file in configured.items():
        if scope in recorded:
            usd, origin = recorded[scope], "ledger"
        elif from_file is not None:
            usd, origin = from_file, "ledger.toml"
        else:
            continue
        spent, reserved = usage(connection, scope, now, exclude_job=exclude_job)
        caps.append(Cap(scope, usd, origin, spent, reserved))
    return caps


def check_scope(scope: str) -> str:
    """`scope` when it names a cap (`daily`, `provider:NAME`, `run:NAME`); InputError else."""
    kind, sep, name = scope.partition(":")
    if scope == "daily" or (kind in ("provider", "run") and sep and name):
        return scope
    raise InputError(f"{scope!r} is no budget scope: daily, provider:NAME or run:NAME")


def set_cap(connection: Connection, scope: str, usd: float | None, now: float) -> None:
    """Record the cap of `scope` (None: remove it, so ledger.toml's applies again)."""
    scope = check_scope(scope)
    if usd is not None and usd < 0:
        raise InputError(f"budget {scope}: must be at least 0")
    connection.execute(delete(BudgetCap).where(BudgetCap.scope == scope))
    if usd is not None:
        connection.execute(insert(BudgetCap).values(scope=scope, usd=usd, set_at=now))


def record_run_cap(engine: Engine, run_name: str, usd: float | None) -> None:
    """Record `submit --max-cost`: the cap of run `run_name` (None: leave it as it is)."""
    if usd is None:
        return
    with engine.begin() as connection:
        set_cap(connection, f"run:{run_name}", usd, read_db_now(connection))
