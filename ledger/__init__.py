"""ledger: a crash-safe, queryable ledger for LLM batch jobs.

from ledger import Ledger
ledger = Ledger.open("ledger.db")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ledger.core.states import TRANSITIONS, State

if TYPE_CHECKING:
    from ledger.api import Ledger, Result
    from ledger.chat.batch import chat_batch
    from ledger.core.db import open_ledger

__all__ = ["TRANSITIONS", "Ledger", "Result", "State", "chat_batch", "open_ledger"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # The Python API pulls in the whole library (and the database layer SQLAlchemy); load it only
    # when it is asked for, so that `import ledger.settings` (the CLI's options) stays fast.
    if name == "open_ledger":
        from ledger.core.db import open_ledger

        return open_ledger
    if name in ("Ledger", "Result"):
        from ledger import api

        return getattr(api, name)
    if name == "chat_batch":
        from ledger.chat.batch import chat_batch

        return chat_batch
    raise AttributeError(f"module 'ledger' has no attribute {name!r}")
