"""ledger: a crash-safe, queryable ledger for LLM batch jobs.

from ledger import Ledger
ledger = Ledger.open("ledger.db")

Every error ledger raises on purpose descends from `ledger.LedgerError` (the tree is drawn in
`ledger.errors`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ledger.core.db import open_ledger
from ledger.core.states import TRANSITIONS, State
from ledger.errors import (
    ConfigError,
    FatalError,
    InputError,
    LedgerError,
    MissingAPIKey,
    NotFound,
    OutcomeUnknown,
    ProviderError,
    Rejected,
    StorageError,
    TransientError,
)

if TYPE_CHECKING:
    from adapters.anthropic.requests import RequestSetError
    from ledger.api import Ledger, Result
    from ledger.build.bodies import RowProblem
    from ledger.chat.batch import chat_batch
    from ledger.chat.types import (
        ChatError,
        ContextTooLong,
        InvalidJSONAnswer,
        ProviderStatusError,
        ProviderUnreachable,
    )
    from ledger.core.states import IllegalTransition
    from ledger.core.store import StaleWrite
    from ledger.query.sql import QueryRefused
    from ledger.reconcile.downloads import CorruptDownload, UnsafeArchive
    from ledger.reconcile.engine import PauseLoop
    from ledger.results.schema import UnreadableLine

#: Names loaded on first use (the Python API and the errors defined beside the code raising
#: them pull in most of the library) -> the module defining each.
_LAZY = {
    "Ledger": "ledger.api",
    "Result": "ledger.api",
    "chat_batch": "ledger.chat.batch",
    "RowProblem": "ledger.build.bodies",
    "ChatError": "ledger.chat.types",
    "ContextTooLong": "ledger.chat.types",
    "InvalidJSONAnswer": "ledger.chat.types",
    "ProviderStatusError": "ledger.chat.types",
    "ProviderUnreachable": "ledger.chat.types",
    "IllegalTransition": "ledger.core.states",
    "StaleWrite": "ledger.core.store",
    "QueryRefused": "ledger.query.sql",
    "CorruptDownload": "ledger.reconcile.downloads",
    "UnsafeArchive": "ledger.reconcile.downloads",
    "PauseLoop": "ledger.reconcile.engine",
    "UnreadableLine": "ledger.results.schema",
    "RequestSetError": "adapters.anthropic.requests",
}

__all__ = [
    "TRANSITIONS",
    "ChatError",
    "ConfigError",
    "ContextTooLong",
    "CorruptDownload",
    "FatalError",
    "IllegalTransition",
    "InputError",
    "InvalidJSONAnswer",
    "Ledger",
    "LedgerError",
    "MissingAPIKey",
    "NotFound",
    "OutcomeUnknown",
    "PauseLoop",
    "ProviderError",
    "ProviderStatusError",
    "ProviderUnreachable",
    "QueryRefused",
    "Rejected",
    "RequestSetError",
    "Result",
    "RowProblem",
    "StaleWrite",
    "State",
    "StorageError",
    "TransientError",
    "UnreadableLine",
    "UnsafeArchive",
    "chat_batch",
    "open_ledger",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # The Python API pulls in the whole library; load it only when it is asked for.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ledger' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(module), name)
