"""The enqueued-token cap (`--max-enqueued-tokens`): a batch is created only while the estimated
prompt tokens of its model already queued at its provider leave room for it (each provider has
its own queue: `gpt-4o-mini` at OpenAI and at Azure are counted apart)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.engine import Connection, Row

from ledger.core.models import Job
from ledger.core.states import IN_FLIGHT, State

#: PostgreSQL advisory-lock key taken (for the transaction) around "check the cap, then record the
#: create intent". Without it two reconcilers could each see room for one more batch and both
#: create one, passing the cap together; SQLite needs no lock (BEGIN IMMEDIATE already serializes
#: writers). Advisory-lock keys are shared by every user of the database, so the value is an
#: arbitrary constant unlikely to collide with another application's; never change it while
#: reconcilers of an older version may still run against the same database.
ENQUEUED_TOKENS_LOCK_ID = 7354011


def held_back_by_token_cap(connection: Connection, job: Row[Any], cap: int | None) -> str | None:
    """Why creating `job`'s batch now would pass the cap, or None when it may go ahead.

    Call it in the write transaction that records the create intent: a job counts as queued from
    that moment (`uploaded` with a submit token) until its batch leaves the provider's queue.
    """
    if cap is None:
        return None
    if connection.dialect.name == "postgresql":
        connection.execute(text(f"SELECT pg_advisory_xact_lock({ENQUEUED_TOKENS_LOCK_ID})"))
    in_flight_states = [s.value for s in IN_FLIGHT]
    in_flight = connection.execute(
        select(func.coalesce(func.sum(Job.est_input_tokens), 0)).where(
            Job.model == job.model,
            Job.provider == job.provider,
            Job.id != job.id,
            (Job.state.in_(in_flight_states))
            | ((Job.state == State.UPLOADED.value) & Job.submit_token.is_not(None)),
        )
    ).scalar_one()
    if in_flight and in_flight + job.est_input_tokens > cap:
        return (
            f"held back: {in_flight} tokens in flight for {job.model} "
            f"+ {job.est_input_tokens} would pass --max-enqueued-tokens {cap}"
        )
    return None
