"""The one guarded check before a batch is created: is the job's provider paused, does its token
queue have room, does every money cap have room? If so, the job's reservation (estimated cost,
queue account) is written with its create intent, in the same transaction.

Any number of reconcilers on any number of machines never pass a cap together, because the
check and the reservation are one transaction that holds the ledger's spend lock: on PostgreSQL
a transaction-scoped advisory lock (every create of every reconciler takes the same key, so they
check one after another, each seeing what the one before it committed: READ COMMITTED reads
each statement's snapshot after the lock is granted); on SQLite the write lock that BEGIN
IMMEDIATE takes (ledger.core.db) serializes them already.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.engine import Connection, Row

from ledger.core.models import JobEvent, Run
from ledger.core.states import State
from ledger.spend.budget import Budget
from ledger.spend.caps import caps_for
from ledger.spend.pauses import active_pause, describe_pause
from ledger.spend.queues import queue_verdict
from ledger.usage.capabilities import load_model_table
from ledger.usage.price import Price
from ledger.usage.pricing import PriceTable, usd

#: PostgreSQL advisory-lock key of the spend check (transaction-scoped). It is the key the
#: enqueued-token check used before ledger.spend existed, so reconcilers of both versions exclude
#: each other; never change it while older reconcilers may run against the same database.
SPEND_LOCK_ID = 7354011

#: Bytes per token assumed for a job whose tokens were not counted (`--no-count-tokens`).
BYTES_PER_TOKEN = 4


@dataclass(frozen=True)
class Verdict:
    """What the check decided: `held` says why not (and by how much), else `fields` are the
    reservation to write on the job with its create intent."""

    held: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)


def lock_spend(connection: Connection) -> None:
    """Take the spend lock for the rest of the transaction (PostgreSQL; SQLite holds its write
    lock already)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text(f"SELECT pg_advisory_xact_lock({SPEND_LOCK_ID})"))


def check_and_reserve(
    connection: Connection,
    job: Row[Any],
    budget: Budget,
    now: float,
    *,
    base_url: str | None = None,
    max_enqueued_tokens: int | None = None,
) -> Verdict:
    """Decide, under the spend lock, whether `job`'s batch may be created now.

    Call it in the write transaction that records the create intent, and write `fields` there
    when nothing holds the job: from that commit on, the job counts against every cap and queue.
    """
    lock_spend(connection)
    pause = active_pause(connection, job.provider, now)
    if pause is not None:
        return Verdict(held=describe_pause(pause))
    account = budget.account(job.provider, job.base_url or base_url)
    queue_held = queue_verdict(
        connection, job, account, budget, max_enqueued_tokens=max_enqueued_tokens
    )
    if queue_held:
        return Verdict(held=queue_held)
    run_name, run_options = connection.execute(
        select(Run.name, Run.options).where(Run.id == job.run_id)
    ).one()
    estimate = estimate_job_cost(connection, job, budget, (run_options or {}).get("prices"))
    caps = caps_for(
        connection, budget, provider=job.provider, run_name=run_name, now=now, exclude_job=job.id
    )
    for cap in caps:
        if estimate is None:
            return Verdict(
                held=f"waiting for a price: {cap.describe()} ({usd(cap.usd)}) applies, but "
                f"model {job.model} has no price (add it to ledger.toml [models] or --prices)"
            )
        if cap.used + estimate > cap.usd:
            over = cap.used + estimate - cap.usd
            return Verdict(
                held=f"held by {cap.describe()} of {usd(cap.usd)}: {usd(cap.spent)} spent + "
                f"{usd(cap.reserved)} in flight + {usd(estimate)} this job would pass it by "
                f"{usd(over)}"
            )
    return Verdict(fields={"est_cost_usd": estimate, "account": account, "waiting_for": None})


def estimate_job_cost(
    connection: Connection, job: Row[Any], budget: Budget, price_file: str | None = None
) -> float | None:
    """USD the job's batch may cost: its estimated input tokens, plus its requests' max output
    tokens (as many output tokens as input when some request has no maximum). None: the model
    has no price."""
    price = _price(budget, job.model, price_file)
    if price is None:
        return None
    tokens = job.est_input_tokens or (job.input_bytes // BYTES_PER_TOKEN)
    detail = connection.execute(
        select(JobEvent.detail).where(
            JobEvent.job_id == job.id,
            JobEvent.from_state.is_(None),
            JobEvent.to_state == State.BUILT.value,
        )
    ).scalar()
    output = (detail or {}).get("max_output_tokens")
    output_tokens = output if isinstance(output, int) else tokens
    return price.cost(tokens) + price.cost(0, output_tokens)


def _price(budget: Budget, model: str, price_file: str | None) -> Price | None:
    if price_file is None:
        return budget.prices.price_for(model)
    return _file_prices(budget, price_file).price_for(model)


@lru_cache(maxsize=8)
def _file_prices(budget: Budget, price_file: str) -> PriceTable:
    return PriceTable.from_models(load_model_table(budget.models, price_file=price_file))
