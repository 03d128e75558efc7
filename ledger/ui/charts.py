"""The run page's two charts: requests with a result over time, and cost by model.

The server reads the figures with SQL and renders them as JSON into the page; dashboard.js draws
them with Chart.js, and redraws them from the new JSON whenever htmx refreshes the run.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.engine import Connection

from ledger.core.models import Job, JobEvent, Request
from ledger.core.states import State
from ledger.results.schema import STATUSES
from ledger.ui.queries import RunSummary, priced_usage
from ledger.usage.pricing import ModelUsage, PriceTable, estimate_cost


def finished_over_time(connection: Connection, run_id: int) -> dict[str, list[list[float]]]:
    """Per status, the cumulative count of the run's requests with a result over time: a
    request's result lands when the job that last carried it is normalized."""
    query = (
        select(JobEvent.at, Request.status, func.count())
        .join(Request, Request.job_id == JobEvent.job_id)
        .where(
            Request.run_id == run_id,
            Request.status.in_(STATUSES),
            JobEvent.to_state == State.NORMALIZED.value,
        )
        .group_by(JobEvent.at, Request.status)
        .order_by(JobEvent.at)
    )
    series: dict[str, list[list[float]]] = {}
    totals: dict[str, int] = defaultdict(int)
    for at, status, count in connection.execute(query):
        totals[status] += count
        series.setdefault(status, []).append([at, totals[status]])
    return {status: series[status] for status in STATUSES if status in series}


@dataclass(frozen=True)
class ModelCost:
    model: str
    #: None: unknown (a normalized job of this model has no price).
    cost_usd: float | None
    #: What `ledger submit` estimated for this model; None without token counting.
    estimate_usd: float | None


def cost_by_model(connection: Connection, run_id: int, prices: PriceTable) -> list[ModelCost]:
    """The run's cost so far per model (retries included), beside the estimate for it."""
    # A normalized job without a cost (no price for its model) makes its model's cost unknown.
    normalized = func.coalesce(Job.results_ref, Job.results_path).is_not(None)
    unpriced = case((and_(normalized, Job.cost_usd.is_(None)), 1), else_=0)
    spent = connection.execute(
        select(Job.model, func.coalesce(func.sum(Job.cost_usd), 0.0), func.sum(unpriced))
        .where(Job.run_id == run_id)
        .group_by(Job.model)
        .order_by(Job.model)
    ).all()
    by_model: dict[str, list[ModelUsage]] = defaultdict(list)
    for part in priced_usage(connection, [run_id]).get(run_id, []):
        by_model[part.model].append(part)
    return [
        ModelCost(
            model=model,
            cost_usd=None if unknown else float(cost or 0.0),
            estimate_usd=(
                estimate_cost(prices, by_model[model]).total_usd if model in by_model else None
            ),
        )
        for model, cost, unknown in spent
    ]


def chart_data(
    run: RunSummary, finished: dict[str, list[list[float]]], costs: list[ModelCost]
) -> dict[str, Any]:
    """What dashboard.js draws: cumulative results over seconds since the first batch was sent,
    and cost (and estimate) per model."""
    start = run.started_at or run.created_at
    end = run.now if run.live else (run.last_change_at or run.now)
    series = []
    for status, points in finished.items():
        shifted = [[0.0, 0]] + [[round(at - start, 3), count] for at, count in points]
        # Carry each line to the end of the time axis so every status reads at its total.
        shifted.append([round(max(end - start, shifted[-1][0]), 3), shifted[-1][1]])
        series.append({"status": status, "points": shifted})
    return {
        # A list, not a mapping: `tojson` sorts keys, and the statuses keep their own order.
        "finished": series,
        "models": [cost.model for cost in costs],
        "cost": [None if c.cost_usd is None else round(c.cost_usd, 6) for c in costs],
        "estimate": [None if c.estimate_usd is None else round(c.estimate_usd, 6) for c in costs],
    }
