"""Mistral batch inference through the official `mistralai` SDK (3.x, on httpx2).

Sources: the installed SDK, mistralai 3.7.0 [sdk]: `client/files.py` (`POST /v1/files`
multipart with `purpose`, `GET /v1/files?purpose&search&page&page_size`, `GET
/v1/files/{id}/content` as `application/octet-stream`), `client/jobs.py` (`POST
/v1/batch/jobs` with `input_files`, `model`, `endpoint`, `metadata`, `timeout_hours`; `GET
/v1/batch/jobs?page&page_size&order_by`; `GET /v1/batch/jobs/{id}`; `POST
/v1/batch/jobs/{id}/cancel`), `client/models/batchjob.py`; and the project's provider facts.

Tags: the upload is named after the job (the caller's `filename`), and the job carries the
ledger's metadata (`ledger_job`, `ledger_token`), so after a crash `find_uploads` and
`find_batches` list and adopt instead of acting twice. The list of jobs is read newest first
and filtered here rather than with the API's `metadata` query (how the SDK spells a dict in a
query string is the server's to interpret; a filter misread would hide the job and make a
second one).

The job names its model once; the shard's lines name it in every body. `create_batch` is given
only the uploaded file's id, so it reads the model from the first line of that file (a crash
between upload and create leaves nothing else to read it from).

The base URL is Mistral's `/v1` URL (`https://api.mistral.ai/v1`, as OpenAI-style clients
name it); the SDK adds `/v1` to its `server_url` itself, so it is given the URL without it.
SDK retries are off for every call, as in the OpenAI adapter: a retried create after a lost
reply would make a second job; retrying is the reconciler's job, which looks for the job first.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx2
from mistralai.client import Mistral, errors
from mistralai.client.utils.logger import NoOpLogger

from adapters.base import (
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
)
from adapters.base import retry_after as retry_after_seconds
from adapters.http_guard import guarded_client, transfer
from adapters.mistral.lines import model_of_line, upload_line
from adapters.mistral.quota import quota_words
from adapters.mistral.statuses import FINAL_STATUSES, snapshot

#: Per-call timeouts: connecting should be quick; a large upload or download streams for long.
DEFAULT_TIMEOUT = httpx2.Timeout(120.0, connect=10.0)
#: `timeout_hours` of a job: the SDK's default, 24 h, the ledger's completion window [sdk].
DEFAULT_TIMEOUT_HOURS = 24
#: Page size of the file and job lists (the SDK's default) [sdk].
PAGE_SIZE = 100
#: The purpose batch inputs are uploaded (and listed) with [sdk: `FilePurpose`].
UPLOAD_PURPOSE = "batch"


class MistralBatchProvider:
    """`adapters.base.BatchProvider` over Mistral's Files and Batch Jobs API."""

    name = "mistral"

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: httpx2.Timeout | float = DEFAULT_TIMEOUT,
        http_client: httpx2.Client | None = None,
        timeout_hours: int = DEFAULT_TIMEOUT_HOURS,
    ) -> None:
        self.base_url = base_url or None
        # The caller reads the key: ledger.config from the provider's `api_key_env`, the
        # registry's factory from $MISTRAL_API_KEY when it is given none.
        if not api_key:
            raise MissingAPIKey(f"no API key given for provider {self.name!r}")
        self._api_key = api_key
        self.timeout_hours = timeout_hours
        self._client = Mistral(
            api_key=self._api_key,
            server_url=server_url(self.base_url),
            client=http_client or guarded_client(timeout),
            retry_config=None,
            # $MISTRAL_DEBUG would make the SDK log every request's headers and body: never.
            debug_logger=NoOpLogger(),
        )
        #: The model of each uploaded input, read once from its first line.
        self._models: dict[str, str] = {}

    # -- errors -----------------------------------------------------------------------------

    def _translate(self, error: Exception, *, side_effect: bool) -> ProviderError:
        """Sort an SDK error by what the reconciler must do about it."""
        if isinstance(error, errors.MistralError) and not isinstance(
            error, errors.ResponseValidationError
        ):
            status = error.status_code
            # The SDK's message carries the status and the answer's body.
            message = scrub(error.message[:1000], self._api_key)
            if status == 402 or (status == 429 and quota_words(error.body)):
                # Out of credit, or past the workspace's monthly limit: the reconciler pauses
                # mistral instead of retrying (adapters.mistral.quota).
                return QuotaExhausted(f"quota or billing ({status}): {message}")
            if status in (401, 403):
                return FatalError(f"the provider refused the credentials ({status}): {message}")
            if status == 404:
                return NotFound(message)
            if status in (408, 409, 429) or status >= 500:
                retry_after = retry_after_seconds(error.headers)
                # A 5xx can come after the server already created the object.
                kind = OutcomeUnknown if side_effect and status >= 500 else TransientError
                return kind(f"provider answered {status}: {message}", retry_after=retry_after)
            return Rejected(f"provider answered {status}: {message}")
        message = scrub(f"{type(error).__name__}: {error}", self._api_key)
        if isinstance(error, httpx2.HTTPError | errors.NoResponseError):
            # A timeout or a dropped reply says nothing about whether the server acted.
            kind = OutcomeUnknown if side_effect else TransientError
            return kind(f"connection problem: {message}")
        # An answer that is not the object asked for (ResponseValidationError).
        return TransientError(f"unreadable answer: {message}")

    @contextlib.contextmanager
    def _errors(self, *, side_effect: bool = False) -> Iterator[None]:
        # A context rather than a call wrapper: streamed bodies are read while the caller
        # iterates, and their errors need sorting too.
        try:
            yield
        except (errors.MistralError, errors.NoResponseError, httpx2.HTTPError) as error:
            raise self._translate(error, side_effect=side_effect) from None

    # -- files ------------------------------------------------------------------------------

    def upload_input(self, path: Path, *, filename: str) -> RemoteFile:
        # The shard's OpenAI lines rewritten into Mistral's envelope, from the shard alone, so a
        # retried upload sends the same bytes.
        with path.open("rb") as shard, tempfile.TemporaryFile() as rewritten:
            for line in shard:
                if line.strip():
                    rewritten.write(upload_line(line) + b"\n")
            rewritten.seek(0)
            with self._errors(side_effect=True), transfer():
                created = self._client.files.upload(
                    file={
                        "file_name": filename,
                        "content": rewritten,
                        "content_type": "application/jsonl",
                    },
                    purpose=UPLOAD_PURPOSE,
                )
        return RemoteFile(created.id, created.filename, created.size_bytes, created.created_at)

    def find_uploads(self, filename: str) -> list[RemoteFile]:
        found: list[RemoteFile] = []
        page = 0
        with self._errors():
            while True:
                listed = self._client.files.list(
                    page=page, page_size=PAGE_SIZE, purpose=UPLOAD_PURPOSE, search=filename
                )
                found += [
                    RemoteFile(f.id, f.filename, f.size_bytes, f.created_at)
                    for f in listed.data
                    if f.filename == filename  # `search` narrows; the name must match whole
                ]
                if len(listed.data) < PAGE_SIZE:
                    break
                page += 1
        return sorted(found, key=lambda f: (f.created_at, f.id))

    def delete_file(self, file_id: str) -> None:
        with contextlib.suppress(NotFound), self._errors():  # already gone: the goal is reached
            self._client.files.delete(file_id=file_id)

    def download_file(self, file_id: str, destination: Path) -> int:
        with self._errors():
            expected = self._client.files.retrieve(file_id=file_id).size_bytes
        written = 0
        with self._errors(), transfer():
            response = self._client.files.download(file_id=file_id)
            try:
                with destination.open("wb") as out:
                    for chunk in response.iter_bytes(1 << 20):
                        out.write(chunk)
                        written += len(chunk)
            finally:
                response.close()
        if written != expected:
            raise TransientError(f"download of {file_id} cut off: {written} of {expected} bytes")
        return written

    def _model(self, input_file_id: str) -> str:
        """The model an uploaded input's first line names (read once per file)."""
        model = self._models.get(input_file_id)
        if model is not None:
            return model
        with self._errors(), transfer():  # a first line may be long (images inline)
            response = self._client.files.download(file_id=input_file_id)
            try:
                first = next((line for line in response.iter_lines() if line.strip()), "")
            finally:
                response.close()
        model = model_of_line(first.encode())
        if model is None:
            raise Rejected(f"the first line of {input_file_id} names no model in its body")
        self._models[input_file_id] = model
        return model

    # -- batches ----------------------------------------------------------------------------

    def create_batch(
        self,
        *,
        input_file_id: str,
        endpoint: str,
        metadata: dict[str, str],
        output_expires_after: int
        | None = None,  # Mistral keeps result files on its own terms: no expiry to set
    ) -> BatchSnapshot:
        model = self._model(input_file_id)
        with self._errors(side_effect=True):
            job = self._client.batch.jobs.create(
                input_files=[input_file_id],
                model=model,
                endpoint=cast(Any, endpoint),
                metadata=metadata,
                timeout_hours=self.timeout_hours,
            )
        return snapshot(job)

    def find_batches(
        self, *, input_file_id: str, metadata: dict[str, str], created_after: int
    ) -> list[BatchSnapshot]:
        found: list[BatchSnapshot] = []
        page = 0
        with self._errors():
            while True:
                # Newest first: page back until older than the intent.
                listed = self._client.batch.jobs.list(
                    page=page, page_size=PAGE_SIZE, order_by="-created"
                )
                jobs = listed.data or []
                for job in jobs:
                    if job.created_at < created_after:
                        return sorted(found, key=lambda b: (b.created_at, b.id))
                    tags = job.metadata if isinstance(job.metadata, dict) else {}
                    tagged = all(tags.get(k) == v for k, v in metadata.items())
                    if input_file_id in job.input_files and tagged:
                        found.append(snapshot(job))
                if len(jobs) < PAGE_SIZE:
                    break
                page += 1
        return sorted(found, key=lambda b: (b.created_at, b.id))

    def count_jobs(self) -> int:
        """How many batch jobs the account holds (one small list call: `ledger doctor`)."""
        with self._errors():
            return self._client.batch.jobs.list(page=0, page_size=1).total

    def get_batch(self, batch_id: str) -> BatchSnapshot:
        with self._errors():
            return snapshot(self._client.batch.jobs.get(job_id=batch_id))

    def cancel_batch(self, batch_id: str) -> BatchSnapshot:
        try:
            with self._errors():
                return snapshot(self._client.batch.jobs.cancel(job_id=batch_id))
        except (Rejected, TransientError):
            # A job that has ended cannot be cancelled (409); the goal is reached then.
            current = self.get_batch(batch_id)
            if current.provider_status in FINAL_STATUSES:
                return current
            raise


def server_url(base_url: str | None) -> str | None:
    """The SDK's `server_url` for a base URL given as Mistral's `/v1` URL (the SDK adds `/v1`
    to every path itself); None keeps the SDK's default server."""
    if not base_url:
        return None
    trimmed = base_url.rstrip("/")
    return trimmed.removesuffix("/v1")
