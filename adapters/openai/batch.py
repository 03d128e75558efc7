"""The OpenAI Batch API through the official `openai` SDK (3.x, on httpx2).

Works with api.openai.com and any compatible server (`OPENAI_BASE_URL` / `--base-url`: the
built-in emulator, gateways), and with the compatible batch hosts (Azure, Groq, Together, xAI, or
one declared in `ledger.toml`) through their `HostProfile` (`adapters.openai.profiles`).

The SDK's own retries are off: a retried upload or create after a timeout can make a second
file or batch (measured: one timed-out create sent three POSTs), so retrying is the reconciler's
job, which looks for the object by its tag first.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, cast

import httpx2
import openai
from openai.types import Batch

from adapters.base import (
    BatchError,
    BatchSnapshot,
    FatalError,
    MissingAPIKey,
    NotFound,
    OutcomeUnknown,
    ProviderError,
    QuotaExhausted,
    Rejected,
    RemoteFile,
    TransientError,
    scrub,
    unknown_status,
)
from adapters.base import retry_after as retry_after_seconds
from adapters.http_guard import error_text, guarded_client, require_batch, transfer
from adapters.openai.profiles import OPENAI, HostProfile
from ledger.core.states import State

#: Provider status -> ledger state. `finalizing` and `cancelling` are still running batches.
STATUS_TO_STATE: dict[str, State] = {
    "validating": State.SUBMITTED,
    "in_progress": State.IN_PROGRESS,
    "finalizing": State.IN_PROGRESS,
    "cancelling": State.IN_PROGRESS,
    "completed": State.COMPLETED,
    "failed": State.FAILED,
    "expired": State.EXPIRED,
    "cancelled": State.CANCELLED,
}

#: How long an uploaded input file is kept (`expires_after` on upload; OpenAI's default for
#: batch files is 30 days, API reference "Upload file"): the batch is created right after the
#: upload and copies what it needs, so a week is ample, and the file does not linger. A create
#: held back past it (the enqueued-token cap) fails on the missing file; `ledger retry` resends.
INPUT_FILE_SECONDS = 7 * 24 * 3600

#: Per-call timeouts: connecting should be quick; a large upload or download streams for long.
DEFAULT_TIMEOUT = httpx2.Timeout(120.0, connect=10.0)


class OpenAIBatchProvider:
    """`adapters.base.BatchProvider` over the OpenAI Files and Batches API."""

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: httpx2.Timeout | float = DEFAULT_TIMEOUT,
        http_client: httpx2.Client | None = None,
        profile: HostProfile = OPENAI,
    ) -> None:
        self.profile = profile
        self.name = profile.name
        # $OPENAI_BASE_URL is OpenAI's own variable: another host never falls back to it.
        if base_url is None:
            from_env = os.environ.get("OPENAI_BASE_URL")
            base_url = from_env if profile is OPENAI else profile.default_base_url()
        self.base_url = base_url or None
        # The caller reads the key: ledger.config from the provider's `api_key_env`, the
        # registry's factory from the usual variable when it is given none.
        if not api_key:
            raise MissingAPIKey(f"no API key given for provider {self.name!r}")
        self._api_key = api_key
        self._client = openai.OpenAI(
            api_key=self._api_key,
            base_url=self.base_url,
            max_retries=0,
            timeout=timeout,
            http_client=http_client or guarded_client(timeout),
        )

    # -- errors -----------------------------------------------------------------------------

    def _translate(self, error: Exception, *, side_effect: bool) -> ProviderError:
        """Sort an SDK error by what the reconciler must do about it."""
        message = scrub(error_text(error), self._api_key)
        if isinstance(error, openai.APIConnectionError | httpx2.HTTPError):
            # A timeout or a dropped reply says nothing about whether the server acted.
            kind = OutcomeUnknown if side_effect else TransientError
            return kind(f"connection problem: {message}")
        if isinstance(error, openai.APIStatusError):
            status = error.status_code
            code = _error_code(error)
            if status == 401 or status == 403:
                return FatalError(f"the provider refused the credentials ({status}): {message}")
            if code in QUOTA_CODES or getattr(error, "type", None) in QUOTA_CODES:
                # 429 insufficient_quota: out of credit or past the billing limit; retrying
                # burns requests until someone pays, so the provider's batches pause.
                return QuotaExhausted(f"insufficient quota: {message}")
            if status == 404:
                return NotFound(message)
            if status in (408, 409, 429) or status >= 500:
                retry_after = retry_after_seconds(error.response.headers)
                # A 5xx can come after the server already created the object.
                kind = OutcomeUnknown if side_effect and status >= 500 else TransientError
                return kind(f"provider answered {status}: {message}", retry_after=retry_after)
            return Rejected(f"provider answered {status}: {message}")
        return TransientError(message)

    def _call(self, function: Any, *args: Any, side_effect: bool = False, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except (openai.OpenAIError, httpx2.HTTPError) as error:
            raise self._translate(error, side_effect=side_effect) from None

    # -- files ------------------------------------------------------------------------------

    def upload_input(self, path: Path, *, filename: str) -> RemoteFile:
        expiry = (
            {"anchor": "created_at", "seconds": INPUT_FILE_SECONDS}
            if self.profile.file_expiry
            else openai.omit
        )
        with self._upload_stream(path) as stream, transfer():
            created = self._call(
                self._client.files.create,
                file=(filename, stream, "application/jsonl"),
                purpose=cast(Any, self.profile.upload_purpose),
                expires_after=cast(Any, expiry),
                side_effect=True,
            )
        return RemoteFile(created.id, created.filename, created.bytes, created.created_at)

    @contextlib.contextmanager
    def _upload_stream(self, path: Path) -> Iterator[Any]:
        """The shard, or its lines in the host's envelope: rewritten line by line into a
        temporary file, from the shard alone, so a retried upload sends the same bytes."""
        with path.open("rb") as shard:
            if not self.profile.rewrites_lines:
                yield shard
                return
            with tempfile.TemporaryFile() as rewritten:
                for line in shard:
                    if line.strip():
                        rewritten.write(self.profile.upload_line(line) + b"\n")
                rewritten.seek(0)
                yield rewritten

    def find_uploads(self, filename: str) -> list[RemoteFile]:
        found = [
            RemoteFile(f.id, f.filename, f.bytes, f.created_at)
            for f in self._call(
                self._client.files.list, purpose=self.profile.upload_purpose, limit=10_000
            )
            if f.filename == filename
        ]
        return sorted(found, key=lambda f: (f.created_at, f.id))

    def delete_file(self, file_id: str) -> None:
        with contextlib.suppress(NotFound):  # already gone: the goal is reached
            self._call(self._client.files.delete, file_id)

    def download_file(self, file_id: str, destination: Path) -> int:
        expected = self._call(self._client.files.retrieve, file_id).bytes
        written = 0
        try:
            with (
                transfer(),
                self._client.files.with_streaming_response.content(file_id) as response,
                destination.open("wb") as out,
            ):
                for chunk in response.iter_bytes(1 << 20):
                    out.write(chunk)
                    written += len(chunk)
        except (openai.OpenAIError, httpx2.HTTPError) as error:
            raise self._translate(error, side_effect=False) from None
        if expected is not None and written != expected:
            raise TransientError(f"download of {file_id} cut off: {written} of {expected} bytes")
        return written

    # -- batches ----------------------------------------------------------------------------

    def create_batch(
        self,
        *,
        input_file_id: str,
        endpoint: str,
        metadata: dict[str, str],
        output_expires_after: int | None = None,
    ) -> BatchSnapshot:
        profile = self.profile
        expiry = (
            {"anchor": "created_at", "seconds": output_expires_after}
            if output_expires_after is not None and profile.file_expiry
            else openai.omit
        )
        batch = self._call(
            self._client.batches.create,
            input_file_id=input_file_id,
            endpoint=cast(Any, profile.endpoint_path(endpoint)),
            completion_window=cast(Any, profile.completion_window),
            metadata=metadata if profile.batch_metadata else openai.omit,
            output_expires_after=cast(Any, expiry),
            side_effect=True,
        )
        wrapped = (batch.model_extra or {}).get("job")
        if profile.create_wraps_job and isinstance(wrapped, dict):
            batch = Batch.construct(**cast(dict[str, Any], wrapped))
        return self._snapshot(batch)

    def find_batches(
        self, *, input_file_id: str, metadata: dict[str, str], created_after: int
    ) -> list[BatchSnapshot]:
        found: list[BatchSnapshot] = []
        # The list is newest first and cannot be filtered: page until older than the intent.
        for batch in self._call(self._client.batches.list, limit=100):
            if batch.created_at < created_after:
                break
            tags = batch.metadata or {}
            # A host that keeps no metadata: the input file (named after the job) is the tag.
            tagged = not self.profile.batch_metadata or all(
                tags.get(k) == v for k, v in metadata.items()
            )
            if batch.input_file_id == input_file_id and tagged:
                found.append(self._snapshot(batch))
        return sorted(found, key=lambda b: (b.created_at, b.id))

    def get_batch(self, batch_id: str) -> BatchSnapshot:
        return self._snapshot(self._call(self._client.batches.retrieve, batch_id))

    def cancel_batch(self, batch_id: str) -> BatchSnapshot:
        return self._snapshot(self._call(self._client.batches.cancel, batch_id))

    def _snapshot(self, batch: Batch) -> BatchSnapshot:
        return snapshot(batch, self.profile.statuses)


def snapshot(batch: Batch, statuses: Mapping[str, str] | None = None) -> BatchSnapshot:
    """The ledger's view of an SDK `Batch`; `statuses` maps a host's status words to OpenAI's."""
    require_batch(batch, Batch)
    word = str(batch.status)
    state = STATUS_TO_STATE.get((statuses or {}).get(word, word))
    if state is None:
        state = unknown_status("openai", word)
    counts = batch.request_counts
    usage = batch.usage
    errors = tuple(
        BatchError(code=e.code, message=e.message, line=e.line, param=e.param)
        for e in ((batch.errors.data or []) if batch.errors else [])
    )
    return BatchSnapshot(
        id=batch.id,
        state=state,
        provider_status=word,
        input_file_id=batch.input_file_id,
        created_at=batch.created_at,
        output_file_id=batch.output_file_id,
        error_file_id=batch.error_file_id,
        requests_total=counts.total if counts else None,
        requests_completed=counts.completed if counts else None,
        requests_failed=counts.failed if counts else None,
        input_tokens=usage.input_tokens if usage else None,
        output_tokens=usage.output_tokens if usage else None,
        errors=errors,
        metadata=dict(batch.metadata or {}),
    )


#: Error codes (or types) of a refusal for the account's quota or billing: OpenAI's 429
#: `insufficient_quota` ("You exceeded your current quota, please check your plan and billing
#: details", seen in the SDK's RateLimitError bodies users report) and the older
#: `billing_hard_limit_reached`.
QUOTA_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached"})


def _error_code(error: openai.APIStatusError) -> str | None:
    body = error.body
    if isinstance(body, dict):
        inner = cast(dict[str, Any], body).get("error", body)
        if isinstance(inner, dict):
            code = cast(dict[str, Any], inner).get("code")
            return str(code) if code is not None else None
    return None
