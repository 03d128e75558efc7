"""ledger: a crash-safe, queryable ledger for LLM batch jobs.

from ledger import Ledger
ledger = Ledger.open("ledger.db")

Every public name is loaded on first use, so `import ledger` (and each `ledger.x` submodule
import, which runs this file first) stays cheap for the command line.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ledger.api import Ledger, Result
    from ledger.chat.batch import chat_batch
    from ledger.core.db import open_ledger
    from ledger.core.states import TRANSITIONS, State

__all__ = ["TRANSITIONS", "Ledger", "Result", "State", "chat_batch", "open_ledger"]

#: Public name -> the module that defines it.
_PUBLIC: dict[str, str] = {
    "Ledger": "ledger.api",
    "Result": "ledger.api",
    "chat_batch": "ledger.chat.batch",
    "open_ledger": "ledger.core.db",
    "State": "ledger.core.states",
    "TRANSITIONS": "ledger.core.states",
}

#: The distribution's name on the package index (the import name is `ledger`).
DISTRIBUTION = "llm-batch-ledger"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "0+unknown"


def __getattr__(name: str) -> Any:
    if name == "__version__":
        return _version()
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'ledger' has no attribute {name!r}")
    return getattr(import_module(module), name)
