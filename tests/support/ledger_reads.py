"""What the reconciler tests read back from the ledger about one job."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from ledger.core.models import Job, JobEvent, Request


def job_row(engine: Engine, job_id: int) -> Any:
    """The job's whole row."""
    with engine.connect() as connection:
        return connection.execute(select(Job.__table__).where(Job.id == job_id)).one()


def statuses(engine: Engine, job_id: int) -> list[str]:
    """Its requests' statuses, in input order."""
    with engine.connect() as connection:
        return list(
            connection.execute(
                select(Request.status).where(Request.job_id == job_id).order_by(Request.line_number)
            ).scalars()
        )


def states_reached(engine: Engine, job_id: int) -> list[str]:
    """The states its events moved it to, in order."""
    with engine.connect() as connection:
        return list(
            connection.execute(
                select(JobEvent.to_state).where(JobEvent.job_id == job_id).order_by(JobEvent.id)
            ).scalars()
        )
