"""The Protocol every batch provider implements, and the small types it speaks.

The other Protocols are re-exported here: `ChatClient` (`adapters.chat_types`, with the chat
vocabulary) and `ResultReader` (`adapters.results`, with the neutral result vocabulary).

The provider's own words (`validating`, `finalizing`, `cancelling`, `ended`) are mapped to ledger
states inside each adapter; nothing outside `adapters/` sees them. Errors are sorted by what the
reconciler must do about them, not by HTTP status.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

from adapters.chat_types import ChatClient as ChatClient
from adapters.results import ResultReader as ResultReader
from ledger.core.states import State

# The provider errors are defined in ledger.errors, in the one tree every error hangs from; they
# are re-exported here under the names adapters and their callers have always imported.
from ledger.errors import FatalError as FatalError
from ledger.errors import MissingAPIKey as MissingAPIKey
from ledger.errors import NotFound as NotFound
from ledger.errors import OutcomeUnknown as OutcomeUnknown
from ledger.errors import ProviderError as ProviderError
from ledger.errors import QuotaExhausted as QuotaExhausted
from ledger.errors import Rejected as Rejected
from ledger.errors import TransientError as TransientError

log = logging.getLogger("ledger.adapters")
_warned_statuses: set[tuple[str, str]] = set()

#: The batch error code that means "your organisation's queue is full": not the batch's fault.
TOKEN_LIMIT_EXCEEDED = "token_limit_exceeded"

# Keys (`sk-...`, `sk-ant-...`, whole or masked as 401 messages show them), and whatever follows
# an auth header name, wherever they appear.
_KEY_PATTERN = re.compile(
    r"\b(sk-[A-Za-z0-9_\-*]{3,}|Bearer\s+\S+)|(x-api-key['\"]?\s*[:=]\s*['\"]?)[^\s'\",}]+",
    re.IGNORECASE,
)


def scrub(text: str, secret: str | None) -> str:
    """Remove the API key (and anything shaped like a key or an auth header) from text: every
    provider error passes through here before it is logged, recorded or shown."""
    for variant in secret_variants(secret):
        text = text.replace(variant, "[redacted]")
    return _KEY_PATTERN.sub(
        lambda m: m.group(2) + "[redacted]" if m.group(2) else "[redacted]", text
    )


#: The shortest part of a key, left after its prefixes, that is still removed on its own.
_MIN_SECRET_TAIL = 12
_KEY_PREFIX = re.compile(r"[A-Za-z]{2,8}-")


def secret_variants(secret: str | None) -> list[str]:
    """The key, and the key without its leading prefixes (`sk-`, `sk-ant-`, `sk-proj-`...) as
    long as what is left is at least 12 characters: a server may echo the key without them.
    Longest first, so the whole key is removed before a part of it."""
    if not secret:
        return []
    variants = [secret]
    rest = secret
    while (prefix := _KEY_PREFIX.match(rest)) and len(rest) - prefix.end() >= _MIN_SECRET_TAIL:
        rest = rest[prefix.end() :]
        variants.append(rest)
    return variants


def unknown_status(provider: str, word: str) -> State:
    """The state of a batch whose status word this adapter does not know (a new one the API
    added): still running, so the job keeps being polled and its word is recorded as the
    provider's status, rather than failing every poll. Warns once per word per process."""
    if (provider, word) not in _warned_statuses:
        _warned_statuses.add((provider, word))
        log.warning("%s: unknown batch status %r, treated as in_progress", provider, word)
    return State.IN_PROGRESS


def retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """The seconds the response asks us to wait: `retry-after-ms` (OpenAI's, more precise) first,
    else `retry-after` as seconds or as an HTTP date (RFC 9110); None when neither reads.
    `now` (epoch seconds) is for tests; a date already past means no wait."""
    milliseconds = _number(headers.get("retry-after-ms"))
    if milliseconds is not None:
        return milliseconds / 1000
    value = headers.get("retry-after")
    if value is None:
        return None
    seconds = _number(value)
    if seconds is not None:
        return seconds
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP date is always GMT, even when it fails to say so
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _number(value: str | None) -> float | None:
    try:
        number = float(value) if value is not None else None
    except ValueError:
        return None
    # `nan`, `inf` and negative waits are not waits.
    return number if number is not None and 0 <= number < float("inf") else None


@dataclass(frozen=True)
class RemoteFile:
    """A file held by the provider."""

    id: str
    filename: str
    bytes: int
    created_at: int


@dataclass(frozen=True)
class BatchError:
    """One reason the provider gave for failing a whole batch."""

    code: str | None
    message: str | None
    line: int | None = None
    param: str | None = None


@dataclass(frozen=True)
class BatchSnapshot:
    """What the provider says about one batch, already in the ledger's words."""

    id: str
    #: The ledger state this provider status maps to.
    state: State
    #: The provider's own status word, kept for the record.
    provider_status: str
    input_file_id: str | None
    created_at: int
    output_file_id: str | None = None
    error_file_id: str | None = None
    requests_total: int | None = None
    requests_completed: int | None = None
    requests_failed: int | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    errors: tuple[BatchError, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def failed_for_token_limit(self) -> bool:
        """A failure the ledger retries later instead of recording (the queue was full)."""
        return self.state is State.FAILED and any(
            e.code == TOKEN_LIMIT_EXCEEDED for e in self.errors
        )

    def error_summary(self) -> str | None:
        if not self.errors:
            return None
        return "; ".join(
            f"{e.code or 'error'}: {e.message or ''}".strip()
            + (f" (line {e.line})" if e.line is not None else "")
            for e in self.errors
        )


class BatchProvider(Protocol):
    """What the reconciler needs from a batch provider."""

    #: The registry name ("openai"), recorded on each job.
    name: str
    #: The API base URL used, recorded on each job (never the key).
    base_url: str | None

    def upload_input(self, path: Path, *, filename: str) -> RemoteFile:
        """Upload a shard's input file under `filename` (which carries the job's tag); where
        the host takes an expiry, the file is set to expire once the batch no longer needs it."""
        ...

    def find_uploads(self, filename: str) -> list[RemoteFile]:
        """Uploaded input files named `filename`, oldest first (to adopt after a crash)."""
        ...

    def create_batch(
        self,
        *,
        input_file_id: str,
        endpoint: str,
        metadata: dict[str, str],
        output_expires_after: int | None = None,
    ) -> BatchSnapshot:
        """Create a batch over an uploaded input, tagged with `metadata`, its result files kept
        `output_expires_after` seconds where the host takes that (None: the host's default).
        Never retried inside."""
        ...

    def find_batches(
        self, *, input_file_id: str, metadata: dict[str, str], created_after: int
    ) -> list[BatchSnapshot]:
        """Batches over `input_file_id` carrying every pair of `metadata`, oldest first."""
        ...

    def get_batch(self, batch_id: str) -> BatchSnapshot:
        """The batch's current status; raises NotFound when the provider does not know it."""
        ...

    def cancel_batch(self, batch_id: str) -> BatchSnapshot:
        """Ask the provider to cancel; returns the status it reports right after."""
        ...

    def download_file(self, file_id: str, destination: Path) -> int:
        """Stream a result file to `destination`; returns its size, checked against the
        provider's own byte count (a cut-off download raises TransientError)."""
        ...

    def delete_file(self, file_id: str) -> None:
        """Delete a file held by the provider (orphaned uploads)."""
        ...


@runtime_checkable
class LocalInputs(Protocol):
    """A provider whose "upload" keeps the input as a file on the machine that made it
    (Anthropic's request set: its requests travel inline with the create). Another machine
    makes that file again from the job's shard before it creates or looks for the batch."""

    def has_local_input(self, file_id: str) -> bool:
        """Whether the input `file_id` names can be read on this machine."""
        ...

    def local_input_from(self, file_id: str, shard: Path) -> AbstractContextManager[None]:
        """While the block runs, `file_id` reads as made again here from `shard` (the job's
        verified shard), in a scratch place removed afterwards."""
        ...
