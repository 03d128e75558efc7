"""The providers' enqueued-token limits, shared by every reconciler.

A provider caps the prompt tokens of the batches an organisation has queued, per model (OpenAI's
"enqueued tokens" by usage tier); a batch created past it fails with `token_limit_exceeded`.
The queue is the account's, not one process's, so the tokens in flight are counted in the
database, per (provider, account, model): the estimated input tokens of every job from its create
intent until its batch leaves the queue (submitted or in progress; `uploaded` with a submit
token). The check runs under the spend lock with the other spend checks (ledger.spend.reserve),
so reconcilers on every machine see one queue. A batch the provider still refuses with
`token_limit_exceeded` goes back to `uploaded` to wait (ledger.reconcile.steps.poll).

The limit of a queue: `[budget] enqueued_tokens` for the model, else `--max-enqueued-tokens`,
else the model table's `enqueued_tokens` at `[budget] queue_tier`; none of them: no limit.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.engine import Connection, Row

from ledger.core.models import Job
from ledger.core.states import IN_FLIGHT, State
from ledger.spend.budget import Budget


def queue_limit(budget: Budget, model: str, max_enqueued_tokens: int | None = None) -> int | None:
    """The enqueued-token limit of `model`'s queue (see the module docstring)."""
    if model in budget.enqueued_tokens:
        return budget.enqueued_tokens[model]
    if max_enqueued_tokens is not None:
        return max_enqueued_tokens
    if budget.queue_tier is None:
        return None
    row = budget.model_table.lookup(model)
    limits = row.enqueued_tokens if row is not None else ()
    return limits[budget.queue_tier - 1] if len(limits) >= budget.queue_tier else None


def tokens_in_flight(
    connection: Connection, provider: str, account: str, model: str, exclude_job: int | None
) -> int:
    """Estimated input tokens queued at `provider` for (`account`, `model`). A job recorded
    before accounts were (account NULL) counts against every account of its provider."""
    query = select(func.coalesce(func.sum(Job.est_input_tokens), 0)).where(
        Job.provider == provider,
        Job.model == model,
        or_(Job.account == account, Job.account.is_(None)),
        or_(
            Job.state.in_([s.value for s in IN_FLIGHT]),
            (Job.state == State.UPLOADED.value) & Job.submit_token.is_not(None),
        ),
    )
    if exclude_job is not None:
        query = query.where(Job.id != exclude_job)
    return int(connection.execute(query).scalar_one())


def queue_verdict(
    connection: Connection,
    job: Row[Any],
    account: str,
    budget: Budget,
    *,
    max_enqueued_tokens: int | None = None,
) -> str | None:
    """Why `job`'s tokens would overfill its queue now, or None when there is room. A job alone
    in its queue always goes, even past the limit: waiting would never make room for it."""
    limit = queue_limit(budget, job.model, max_enqueued_tokens)
    if limit is None:
        return None
    in_flight = tokens_in_flight(connection, job.provider, account, job.model, job.id)
    if in_flight and in_flight + job.est_input_tokens > limit:
        return (
            f"held by the enqueued-token limit of {account} {job.model}: {in_flight:,} tokens in "
            f"flight + {job.est_input_tokens:,} this job would pass {limit:,} by "
            f"{in_flight + job.est_input_tokens - limit:,}"
        )
    return None
