"""Gemini Batch Mode (Gemini Developer API) through the official `google-genai` SDK.

- Upload: the shard is translated into Batch Mode lines beside it (`adapters.gemini.requests`)
  and sent through the Files API's resumable upload, the file's `display_name` carrying the
  upload name (the job's tag) and the model. The "file id" the ledger records is
  `files/<id>#<model>`: a Gemini batch names one model, and the create step is handed only the
  file id.
- Create: `batches.create(model, src="files/<id>", config={"display_name": tag})` (chat), or
  `batches.create_embeddings` (embeddings: one EmbedContentRequest a line), the tag
  `ledger-job<job>-<token>`. After a crash `find_batches` lists the batches and adopts the one
  whose display name is that tag; Gemini keeps no other metadata on a batch.
- Results: one file (`dest.file_name`) of `{key, response|error}` lines in any order,
  downloaded with `files.download` and checked so each key is on one line
  (`adapters.gemini.lines.check_keys`).

- Inline: a chat job whose translated requests weigh under `inline_max_bytes` (Google's 20 MB,
  `adapters.gemini.inline`) records no upload and goes inline at create, the create step handing
  over the verified shard (`adapters.base.LocalInputs`); its results are read from the batch itself.

SDK retries are off (`HttpRetryOptions(attempts=1)`): a retried create after a lost reply would
make a second batch; retrying is the reconciler's job, which looks for the batch first. The key
goes to the SDK only (the `x-goog-api-key` header); every error text is scrubbed of it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx2
from google import genai
from google.genai import errors as genai_errors
from google.genai import types
from google.genai._common import ExperimentalWarning

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
from adapters.gemini.inline import (
    INLINE_MAX_BYTES,
    INLINE_PREFIX,
    inlined_requests,
    is_inline,
    write_inlined_responses,
)
from adapters.gemini.lines import check_keys
from adapters.gemini.quota import quota_reason
from adapters.gemini.requests import (
    CHAT_ENDPOINT,
    EMBEDDINGS_ENDPOINT,
    request_file_path,
    write_request_file,
)
from adapters.gemini.statuses import epoch, snapshot
from adapters.http_guard import error_text, guarded_client, transfer

#: Per-call timeout in seconds: an upload of up to 2 GB goes in 8 MB chunks, each its own call.
DEFAULT_TIMEOUT = 300.0
#: Separates the Files API name from the model in the ledger's input file id.
MODEL_SEPARATOR = "#"
#: Batch Mode lives in v1beta (the SDK would say v1 for a custom base URL).
API_VERSION = "v1beta"
#: The MIME type the Batch Mode guide uploads request files with.
JSONL_MIME = "jsonl"


def batch_tag(metadata: dict[str, str]) -> str:
    """The display name a create with this metadata gives its batch (what adoption matches)."""
    return f"ledger-job{metadata.get('ledger_job', '')}-{metadata.get('ledger_token', '')}"


def file_display_name(filename: str, model: str) -> str:
    """The uploaded request file's display name: the upload name, then the model."""
    return f"{filename}{MODEL_SEPARATOR}{model}"


def split_file_id(file_id: str) -> tuple[str, str]:
    """(`files/<id>`, model) from the ledger's input file id; NotFound for anything else."""
    name, separator, model = file_id.partition(MODEL_SEPARATOR)
    if not separator or not name.startswith("files/") or not model:
        raise NotFound(f"{file_id} is not a Gemini request file id (files/<id>#<model>)")
    return name, model


class GeminiBatchProvider:
    """`adapters.base.BatchProvider` over Gemini Batch Mode."""

    name = "gemini"

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        http_client: httpx2.Client | None = None,
        inline_max_bytes: int = INLINE_MAX_BYTES,
    ) -> None:
        self.base_url = base_url or None
        #: A chat job whose translated requests weigh less goes inline (0: never).
        self.inline_max_bytes = inline_max_bytes
        #: The shards inline jobs are created from, while the create step holds them.
        self._shards: dict[str, Path] = {}
        if not api_key:
            raise MissingAPIKey(f"no API key given for provider {self.name!r}")
        self._api_key = api_key
        options = types.HttpOptions(
            base_url=self.base_url,
            api_version=API_VERSION,
            timeout=int(timeout * 1000),  # milliseconds
            retry_options=types.HttpRetryOptions(attempts=1),
            httpx_client=http_client or guarded_client(httpx2.Timeout(timeout, connect=10.0)),
        )
        self._client = genai.Client(api_key=api_key, vertexai=False, http_options=options)

    # -- errors -----------------------------------------------------------------------------

    def _translate(self, error: Exception, *, side_effect: bool) -> ProviderError:
        """Sort an SDK error by what the reconciler must do about it."""
        message = scrub(error_text(error), self._api_key)
        if isinstance(error, genai_errors.APIError):
            status = error.code
            reason = quota_reason(error.details) if status in (400, 403, 429) else None
            if reason is not None:
                # Out of quota or billing: retrying cannot help; the reconciler pauses gemini.
                return QuotaExhausted(f"{reason}: {message}")
            if status in (401, 403):
                return FatalError(f"the provider refused the credentials or account: {message}")
            if status == 404:
                return NotFound(message)
            if status in (408, 409, 429) or status >= 500:
                kind = OutcomeUnknown if side_effect and status >= 500 else TransientError
                headers = getattr(error.response, "headers", None) or {}
                wait = retry_after_seconds(headers)
                return kind(f"provider answered {status}: {message}", retry_after=wait)
            return Rejected(f"provider answered {status}: {message}")
        # A timeout or a dropped reply says nothing about whether the server acted.
        kind = OutcomeUnknown if side_effect else TransientError
        return kind(f"connection problem: {message}")

    @contextlib.contextmanager
    def _errors(self, *, side_effect: bool = False) -> Iterator[None]:
        try:
            yield
        except (genai_errors.APIError, httpx2.HTTPError, OSError, ValueError) as error:
            # ValueError: the SDK's own complaint about an upload it could not finalize.
            raise self._translate(error, side_effect=side_effect) from None

    # -- files ------------------------------------------------------------------------------

    def upload_input(self, path: Path, *, filename: str) -> RemoteFile:
        destination = request_file_path(path.resolve(), filename)
        info = write_request_file(path, destination)  # Rejected names a line that cannot go
        if info.endpoint == CHAT_ENDPOINT and info.bytes < self.inline_max_bytes:
            # Small enough to travel inside the create: nothing is uploaded; the id names the
            # stored shard (by the upload name) and the model. No provider clock to record.
            destination.unlink(missing_ok=True)
            file_id = f"{INLINE_PREFIX}{filename}{MODEL_SEPARATOR}{info.model}"
            return RemoteFile(id=file_id, filename=filename, bytes=info.bytes, created_at=0)
        try:
            with self._errors(side_effect=True), transfer():
                uploaded = self._client.files.upload(
                    file=destination,
                    config={
                        "display_name": file_display_name(filename, info.model),
                        "mime_type": JSONL_MIME,
                    },
                )
        finally:
            destination.unlink(missing_ok=True)  # the shard stays; this is its translation
        return _remote_file(uploaded, filename, info.model)

    def find_uploads(self, filename: str) -> list[RemoteFile]:
        prefix = filename + MODEL_SEPARATOR
        found: list[RemoteFile] = []
        with self._errors():
            for file in self._client.files.list(config={"page_size": 100}):
                name = file.display_name or ""
                if name.startswith(prefix) and name != prefix:
                    found.append(_remote_file(file, filename, name.removeprefix(prefix)))
        return sorted(found, key=lambda f: (f.created_at, f.id))

    def delete_file(self, file_id: str) -> None:
        if is_inline(file_id):
            return  # inline requests and answers are held by no file
        name = file_id.partition(MODEL_SEPARATOR)[0]
        with self._errors():
            self._client.files.delete(name=name)

    # -- batches ----------------------------------------------------------------------------

    def create_batch(
        self,
        *,
        input_file_id: str,
        endpoint: str,
        metadata: dict[str, str],
        output_expires_after: int
        | None = None,  # Gemini keeps a batch's files 48 h on its own terms: no expiry to set
    ) -> BatchSnapshot:
        if is_inline(input_file_id):
            return self._create_inline(input_file_id, endpoint, batch_tag(metadata))
        file_name, model = split_file_id(input_file_id)
        tag = batch_tag(metadata)
        if endpoint == CHAT_ENDPOINT:
            with self._errors(side_effect=True):
                batch = self._client.batches.create(
                    model=model, src=file_name, config={"display_name": tag}
                )
        elif endpoint == EMBEDDINGS_ENDPOINT:
            with self._errors(side_effect=True), warnings.catch_warnings():
                # "experimental" in google-genai 3.6.1; the API itself is documented.
                warnings.simplefilter("ignore", ExperimentalWarning)
                batch = self._client.batches.create_embeddings(
                    model=model, src={"file_name": file_name}, config={"display_name": tag}
                )
        else:
            raise Rejected(f"Gemini batches run chat or embeddings requests, not {endpoint}")
        return snapshot(batch, input_file_id=input_file_id)

    def has_local_input(self, file_id: str) -> bool:
        """`LocalInputs`: an inline job's requests are read from its shard, which the create
        step hands over (`local_input_from`); a Files API id needs nothing here."""
        return not is_inline(file_id) or file_id in self._shards

    @contextlib.contextmanager
    def local_input_from(self, file_id: str, shard: Path) -> Iterator[None]:
        """While the block runs, the inline job `file_id` is created from `shard` (the job's
        verified shard: this machine's, else the artifact store's)."""
        self._shards[file_id] = shard
        try:
            yield
        finally:
            self._shards.pop(file_id, None)

    def _create_inline(self, input_file_id: str, endpoint: str, tag: str) -> BatchSnapshot:
        """An inline batch: the verified shard translated again and sent in the call."""
        shard = self._shards.get(input_file_id)
        if shard is None:
            raise NotFound(f"{input_file_id} is created from its shard, which was not handed over")
        if endpoint != CHAT_ENDPOINT:
            raise Rejected(f"only chat jobs go inline, not {endpoint}")
        model = input_file_id.rpartition(MODEL_SEPARATOR)[2]
        with tempfile.TemporaryDirectory(prefix="ledger-gemini-") as scratch:
            info = write_request_file(shard, Path(scratch) / "requests.jsonl")
            if info.model != model:
                raise Rejected(f"the shard names model {info.model}, the job {model}")
            requests = inlined_requests(info.path)
        with self._errors(side_effect=True), transfer():
            batch = self._client.batches.create(
                model=model, src=requests, config={"display_name": tag}
            )
        return snapshot(batch, input_file_id=input_file_id)

    def find_batches(
        self, *, input_file_id: str, metadata: dict[str, str], created_after: int
    ) -> list[BatchSnapshot]:
        if not metadata.get("ledger_token"):
            return []  # no tag was sent, so no batch can be recognised as this create's
        tag = batch_tag(metadata)
        found: list[BatchSnapshot] = []
        with self._errors():
            for batch in self._client.batches.list(config={"page_size": 100}):
                if batch.display_name == tag and epoch(batch.create_time) >= created_after:
                    found.append(snapshot(batch, input_file_id=input_file_id))
        return sorted(found, key=lambda b: (b.created_at, b.id))

    def get_batch(self, batch_id: str) -> BatchSnapshot:
        with self._errors():
            return snapshot(self._client.batches.get(name=batch_id))

    def cancel_batch(self, batch_id: str) -> BatchSnapshot:
        try:
            with self._errors():
                self._client.batches.cancel(name=batch_id)
        except Rejected:
            # Gemini refuses to cancel a batch that has ended; the goal is reached then.
            current = self.get_batch(batch_id)
            if current.state.value in ("completed", "failed", "expired", "cancelled"):
                return current
            raise
        return self.get_batch(batch_id)

    # -- results ----------------------------------------------------------------------------

    def download_file(self, file_id: str, destination: Path) -> int:
        """Stream the result file to `destination`, each key on one line (`check_keys`);
        checked against the file's `sizeBytes` when Gemini gives it. An inline batch's
        answers (`inline:<batch>`) are read from the batch and checked the same way."""
        handle, raw = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.")
        os.close(handle)
        try:
            if is_inline(file_id):
                with self._errors():
                    batch = self._client.batches.get(name=file_id.removeprefix(INLINE_PREFIX))
                with open(raw, "wb") as out:
                    received = write_inlined_responses(batch, out)
                check_keys(Path(raw), destination)
                return received
            with self._errors():
                expected = self._client.files.get(name=file_id).size_bytes
            with self._errors(), transfer():
                self._client.files.download(file=file_id, destination=raw)
            received = Path(raw).stat().st_size
            if expected is not None and received != expected:
                raise TransientError(f"result file {file_id} cut off: {received} of {expected}")
            check_keys(Path(raw), destination)
        finally:
            Path(raw).unlink(missing_ok=True)
        return received


def _remote_file(file: types.File, filename: str, model: str) -> RemoteFile:
    return RemoteFile(
        id=f"{file.name}{MODEL_SEPARATOR}{model}",
        filename=filename,
        bytes=file.size_bytes or 0,
        created_at=epoch(file.create_time),
    )
