"""ledger: a crash-safe, queryable ledger for LLM batch jobs.

from ledger import Ledger
ledger = Ledger.open("ledger.db")

Every error ledger raises on purpose descends from `ledger.LedgerError` (the tree is drawn in
`ledger.errors`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ledger.errors import (
    BatchesUndecided,
    ConfigError,
    FatalError,
    InputError,
    LedgerError,
    MissingAPIKey,
    NotFound,
    OutcomeUnknown,
    ProviderError,
    QuotaExhausted,
    Rejected,
    StorageError,
    TransientError,
)

if TYPE_CHECKING:
    from adapters.anthropic.requests import RequestSetError
    from ledger.api import Ledger, Result
    from ledger.artifacts.errors import ArtifactCorrupt, ArtifactError, ArtifactUnreachable
    from ledger.build.bodies import RowProblem
    from ledger.chat.batch import chat_batch
    from ledger.chat.types import (
        ChatError,
        ContextTooLong,
        InvalidJSONAnswer,
        ProviderStatusError,
        ProviderUnreachable,
    )
    from ledger.core.db import open_ledger
    from ledger.core.states import TRANSITIONS, IllegalTransition, State
    from ledger.core.store import StaleWrite
    from ledger.query.sql_guard import QueryRefused
    from ledger.reconcile.downloads import CorruptDownload, LineTooLong, UnsafeArchive
    from ledger.reconcile.engine import PauseLoop
    from ledger.reconcile.steps.create import HeldBack
    from ledger.results.schema import UnreadableLine

#: Names loaded on first use (the Python API and the errors defined beside the code raising
#: them pull in most of the library) -> the module defining each.
_LAZY = {
    "open_ledger": "ledger.core.db",
    "State": "ledger.core.states",
    "TRANSITIONS": "ledger.core.states",
    "Ledger": "ledger.api",
    "Result": "ledger.api",
    "chat_batch": "ledger.chat.batch",
    "ArtifactError": "ledger.artifacts.errors",
    "ArtifactCorrupt": "ledger.artifacts.errors",
    "ArtifactUnreachable": "ledger.artifacts.errors",
    "RowProblem": "ledger.build.bodies",
    "ChatError": "ledger.chat.types",
    "ContextTooLong": "ledger.chat.types",
    "InvalidJSONAnswer": "ledger.chat.types",
    "ProviderStatusError": "ledger.chat.types",
    "ProviderUnreachable": "ledger.chat.types",
    "IllegalTransition": "ledger.core.states",
    "StaleWrite": "ledger.core.store",
    "QueryRefused": "ledger.query.sql_guard",
    "CorruptDownload": "ledger.reconcile.downloads",
    "UnsafeArchive": "ledger.reconcile.downloads",
    "LineTooLong": "ledger.reconcile.downloads",
    "PauseLoop": "ledger.reconcile.engine",
    "HeldBack": "ledger.reconcile.steps.create",
    "UnreadableLine": "ledger.results.schema",
    "RequestSetError": "adapters.anthropic.requests",
}

__all__ = [
    "TRANSITIONS",
    "ArtifactCorrupt",
    "ArtifactError",
    "ArtifactUnreachable",
    "BatchesUndecided",
    "ChatError",
    "ConfigError",
    "ContextTooLong",
    "CorruptDownload",
    "FatalError",
    "HeldBack",
    "IllegalTransition",
    "InputError",
    "InvalidJSONAnswer",
    "Ledger",
    "LedgerError",
    "LineTooLong",
    "MissingAPIKey",
    "NotFound",
    "OutcomeUnknown",
    "PauseLoop",
    "ProviderError",
    "ProviderStatusError",
    "ProviderUnreachable",
    "QueryRefused",
    "QuotaExhausted",
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

#: The distribution's name on the package index (the import name is `ledger`).
DISTRIBUTION = "llm-batch-ledger"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "0+unknown"


def __getattr__(name: str) -> Any:
    # Loaded on first use, so `import ledger` (which every `ledger.x` import runs first) stays
    # cheap for the command line: no SQLAlchemy, no SDK.
    if name == "__version__":
        return _version()
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ledger' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(module), name)
