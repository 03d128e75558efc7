"""ledger: a crash-safe, queryable ledger for LLM batch jobs."""

from ledger.db import open_ledger
from ledger.states import TRANSITIONS, State

__all__ = ["TRANSITIONS", "State", "open_ledger"]
__version__ = "0.1.0"
