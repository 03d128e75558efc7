"""The knobs of `ledger reconcile`, as one plain dataclass. The defaults of every knob a user can
set come from its one declaration in `ledger.settings` (docs/cli.md lists them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ledger import settings
from ledger.core.states import State
from ledger.spend import BudgetSource

#: States the reconciler has a step for (the engine's `STEPS` table; a test keeps them equal).
ACTIVE_STATES: tuple[State, ...] = (
    State.BUILT,
    State.UPLOADED,
    State.SUBMITTED,
    State.IN_PROGRESS,
    State.COMPLETED,
    State.FAILED,
    State.EXPIRED,
    State.CANCELLED,
    State.DOWNLOADED,
)


@dataclass
class ReconcileOptions:
    """Every knob of `ledger reconcile` (documented in docs/reconcile.md)."""

    run_name: str | None = None
    #: Base URL for jobs that have none recorded yet (default: the adapter's, or $OPENAI_BASE_URL).
    base_url: str | None = None
    #: Polling backoff: the first check after create waits poll_min, each unchanged answer
    #: multiplies the wait by poll_factor, up to poll_max; jitter spreads checks apart.
    poll_min: float = settings.default("poll_min")
    poll_max: float = settings.default("poll_max")
    poll_factor: float = 1.5
    jitter: float = 0.1
    #: How many jobs one process steps at once (provider calls run in parallel).
    concurrency: int = settings.default("concurrency")
    lease_seconds: float = settings.default("lease_seconds")
    #: Hold jobs back so that the estimated prompt tokens in flight per model stay under this.
    max_enqueued_tokens: int | None = settings.default("max_enqueued_tokens")
    #: ledger.toml's `[budget]` (caps, queue limits, accounts), re-read as the file changes;
    #: None: no caps but those recorded in the ledger (`ledger budget set`, `--max-cost`).
    budget: BudgetSource | None = None
    #: A batch not found right after create is looked for again within this window.
    not_found_grace: float = settings.default("not_found_grace")
    #: Past the grace, a batch is declared missing only after this many 404s in a row ...
    not_found_answers: int = 3
    #: ... spanning at least this many seconds, and only if a lookup by its tag finds nothing.
    not_found_window: float = 600.0
    #: Only these states are stepped (`ledger submit` uses upload and create only).
    states: Sequence[State] = ACTIVE_STATES
    #: Largest number of jobs one pass claims.
    claim_limit: int = 10_000
