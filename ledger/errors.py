"""Every error ledger raises on purpose, in one tree: a caller needs one `except LedgerError`.

The CLI prints any of them as one line, `error: <message>`, and exits with the class's
`exit_code`: 1 when a provider or the run failed, 2 when the user's input or configuration is
wrong (0 is success). `ledger --debug` (or `LEDGER_DEBUG=1`) shows the traceback as well.

    LedgerError                     1
    ├── HeldBack                    1  a job waits for room under a cap; nothing was sent
    ├── ArtifactError               1  a shard or result file could not be stored or read intact
    │   ├── ArtifactCorrupt         1  its bytes differ from the recorded sha256 or size
    │   └── ArtifactUnreachable     1  it is gone, or its store cannot be reached or written
    ├── InputError                  2  a file, a line, a field or an option is wrong
    │   ├── ConfigError             2  ledger.toml; the database's URL, driver, path or revision
    │   ├── RowProblem              2  one bad input row
    │   ├── ContextTooLong          2  a request that cannot fit its model's context
    │   ├── QueryRefused            2  a query that is not one read-only statement, or too slow
    │   └── RequestSetError         2  a request Anthropic's batch API cannot take
    ├── StorageError                1  the database refused a write, or cannot be reached
    │   ├── StaleWrite              1  a guarded update matched no row (the lease was lost)
    │   └── IllegalTransition       1  a state change the transition table forbids
    └── ProviderError               1  a provider call did not succeed
        ├── TransientError          1  back off, try again later
        │   ├── OutcomeUnknown      1  a side effect may or may not have happened
        │   └── BatchesUndecided    1  batches that may be a job's cannot be told apart yet
        ├── FatalError              1  the credentials or the account are refused: pause
        │   └── MissingAPIKey       1  the variable that should hold the key is not set
        ├── QuotaExhausted          1  the account is out of quota or credit: pause its provider
        ├── NotFound                1  the provider does not know the object
        ├── Rejected                1  the provider refused the request itself
        ├── ChatError               1  a synchronous call gave no usable answer
        │   ├── ProviderStatusError 1  a non-2xx status
        │   ├── ProviderUnreachable 1  no answer: refused, dropped or timed out
        │   └── InvalidJSONAnswer   1  JSON was asked for and the answer is not JSON
        ├── UnreadableLine          1  a result line that names no request
        ├── CorruptDownload         1  a result file cut off, or not JSONL
        ├── UnsafeArchive           1  a ZIP that escapes its directory or inflates too far
        │   └── LineTooLong         1  a result line past the line cap
        └── PauseLoop               1  the reconciler stopped for a FatalError

The roots and the batch-provider errors are defined here. A leaf whose meaning belongs to one
module is defined in it: RowProblem in ledger.build.bodies, ContextTooLong and the ChatErrors in
ledger.chat.types, QueryRefused in ledger.query.sql_guard, RequestSetError in
adapters.anthropic.requests, StaleWrite in ledger.core.store, IllegalTransition in
ledger.core.states, UnreadableLine in ledger.results.schema, CorruptDownload, UnsafeArchive and
LineTooLong in ledger.reconcile.downloads, PauseLoop in ledger.reconcile.engine, HeldBack in
ledger.reconcile.steps.create, the ArtifactErrors in ledger.artifacts.errors. `ledger` exports
them all.
Some keep `ValueError` or `RuntimeError` as a second base, so code that caught them as such
still does.

This module imports nothing: anything may import it, `ledger.core` and `adapters` included.
"""

from __future__ import annotations

__all__ = [
    "BatchesUndecided",
    "ConfigError",
    "FatalError",
    "InputError",
    "LedgerError",
    "MissingAPIKey",
    "NotFound",
    "OutcomeUnknown",
    "ProviderError",
    "QuotaExhausted",
    "Rejected",
    "StorageError",
    "TransientError",
]


class LedgerError(Exception):
    """A problem to report as one clear line, without a traceback."""

    #: The CLI's exit status for this error: 1 a provider or runtime failure, 2 the user's input.
    exit_code = 1


# -- the user's input -----------------------------------------------------------------------


class InputError(LedgerError):
    """Bad input (a file, a line, a field, an option): nothing was written or lost."""

    exit_code = 2


class ConfigError(InputError):
    """Bad configuration: ledger.toml, or a database URL whose scheme, driver, path or schema
    revision ledger cannot use."""

    exit_code = 2


# -- the database ---------------------------------------------------------------------------


class StorageError(LedgerError):
    """The database refused a write or could not be reached once it was open."""

    exit_code = 1


# -- providers ------------------------------------------------------------------------------


class ProviderError(LedgerError):
    """A provider call did not succeed. Messages never carry credentials.

    Provider errors are sorted by what the reconciler must do about them, not by HTTP status.
    """

    exit_code = 1


class TransientError(ProviderError):
    """Rate limits, server errors, connection trouble: back off this job, change nothing."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class OutcomeUnknown(TransientError):
    """A call with a side effect may or may not have taken effect (timeout, dropped reply).

    The reconciler must look for the object by its tag before trying the side effect again.
    """


class BatchesUndecided(TransientError):
    """Batches that may be the one a job's create made cannot be told apart from others yet
    (Anthropic shows a batch's custom_ids, and so its tag, only once it has ended).

    `batch_ids` names them, so `ledger cancel` can cancel them rather than leave one running.
    """

    def __init__(self, message: str, *, batch_ids: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.batch_ids = batch_ids


class FatalError(ProviderError):
    """The credentials or the account are refused (401, insufficient quota): pause everything."""


class MissingAPIKey(FatalError):
    """The environment variable that should hold a provider's key is not set: nothing can be
    sent, so the reconciler pauses as for refused credentials."""


class QuotaExhausted(ProviderError):
    """The provider refused for the account's quota or billing (`insufficient_quota`, a billing
    limit, a credit balance too low): retries only burn requests until a person adds money, so
    that provider's batches are paused (ledger.spend.pauses) while the others go on."""


class NotFound(ProviderError):
    """The provider does not know the object (yet, or any more)."""


class Rejected(ProviderError):
    """The provider refused the request itself (400): repeating it will not help."""
