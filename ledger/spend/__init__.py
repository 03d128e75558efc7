"""Spend under control: money caps and the providers' token queues, honoured by every
reconciler on every machine, and providers paused for their quota or billing.

- `reserve.check_and_reserve`: the one guarded check the create step makes before a batch is
  created (caps, queues, pauses), writing the job's reservation with its create intent.
- `caps`: what counts against a cap (reservations are the jobs' own state), and `ledger budget
  set`; `queues`: the enqueued-token limits; `pauses`: quota and billing pauses.
- `budget`: what ledger.toml's `[budget]` says, re-read when the file changes.
- `estimates`: each job's estimated cost, stored when it is recorded (estimated vs actual).
- `show`: `ledger budget show`, and `submit --dry-run`'s estimate against each budget.

docs/spend.md says how to use them.
"""

from ledger.spend.budget import Budget, BudgetSource, fixed
from ledger.spend.caps import Cap, check_scope, record_run_cap, set_cap
from ledger.spend.estimates import record_estimates
from ledger.spend.pauses import pause_provider, resume_provider
from ledger.spend.reserve import SPEND_LOCK_ID, Verdict, check_and_reserve
from ledger.spend.show import estimate_against_budgets

__all__ = [
    "SPEND_LOCK_ID",
    "Budget",
    "BudgetSource",
    "Cap",
    "Verdict",
    "check_and_reserve",
    "check_scope",
    "estimate_against_budgets",
    "fixed",
    "pause_provider",
    "record_estimates",
    "record_run_cap",
    "resume_provider",
    "set_cap",
]
