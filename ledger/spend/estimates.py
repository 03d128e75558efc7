"""The estimate made at submit, stored: each job's estimated cost (`jobs.est_cost_usd`) is
written when the job is recorded (by `submit`, `retry` and the API), so `ledger status`, `status
--json` and the SQL views show estimated against actual from the start, not only once a batch is
created. It is the figure the create step reserves against the budget caps
(`reserve.estimate_job_cost`: input tokens plus the requests' max output tokens), which that
step writes again, at the prices of that moment. NULL: the model has no price (unknown, never $0).
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from ledger.core.models import Job, Run
from ledger.core.states import State
from ledger.spend.budget import Budget
from ledger.spend.reserve import estimate_job_cost


def record_estimates(engine: Engine, budget: Budget, run_name: str) -> int:
    """Write the estimated cost of each of the run's jobs that has none and no batch yet (built
    by this submit or retry); returns how many jobs got a figure. Idempotent."""
    written = 0
    with engine.begin() as connection:
        row = connection.execute(select(Run.id, Run.options).where(Run.name == run_name)).first()
        if row is None:
            return 0
        price_file = (row.options or {}).get("prices")
        jobs = connection.execute(
            select(Job).where(
                Job.run_id == row.id,
                Job.est_cost_usd.is_(None),
                Job.state == State.BUILT.value,
            )
        ).all()
        for job in jobs:
            estimate = estimate_job_cost(connection, job, budget, price_file)
            if estimate is None:
                continue
            # Guarded: a reconciler that reserved the job meanwhile wrote its own figure.
            written += connection.execute(
                update(Job)
                .where(
                    Job.id == job.id,
                    Job.est_cost_usd.is_(None),
                    Job.state == State.BUILT.value,
                )
                .values(est_cost_usd=estimate)
            ).rowcount
    return written
