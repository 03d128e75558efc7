"""The Anthropic Message Batches API through the official `anthropic` SDK (2.x, on httpx2).

Requests travel inline with the create, so the `uploaded` step writes a local request set beside
the shard (`adapters.anthropic.requests`) and its "file id" names that file; a reconciler on
another machine makes it again from the job's verified shard (`adapters.anthropic.request_sets`,
`adapters.base.LocalInputs`). The batch's results
are one JSONL stream, offered to the reconciler as the synthetic output file `results:<batch id>`
once the batch has ended; the download turns the custom_ids back into the ledger's.

A Message Batch carries no metadata, so the create cannot carry the job's tag the way an OpenAI
batch does. Instead every custom_id of a batch starts with a tag drawn from the create's token,
and `find_batches` adopts a batch after a crash only when its results show that tag. Results
exist only once a batch has ended: until then a candidate (created after the intent, with the
same number of requests) cannot be told apart, and `find_batches` asks the reconciler to wait
rather than risk a second batch. `docs/providers.md` gives the limits of this.

SDK retries are off for every call, as in the OpenAI adapter: a retried create after a timeout
would make a second batch; retrying is the reconciler's job, which looks for the batch first.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO, Any, cast

import anthropic
import httpx2
import orjson

from adapters.anthropic.custom_ids import batch_tag, has_tag, ledger_custom_id, tag_custom_id
from adapters.anthropic.request_sets import RequestSets
from adapters.anthropic.requests import CHAT_ENDPOINT, count_requests, read_request_set
from adapters.anthropic.statuses import RESULTS_ID_PREFIX as RESULTS_ID_PREFIX
from adapters.anthropic.statuses import epoch, total_requests
from adapters.anthropic.statuses import ledger_state as ledger_state
from adapters.anthropic.statuses import snapshot as snapshot
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
from adapters.http_guard import error_text, guarded_client, transfer
from ledger.errors import BatchesUndecided

#: Per-call timeouts: connecting should be quick; a create carries up to 256 MB.
DEFAULT_TIMEOUT = httpx2.Timeout(300.0, connect=10.0)

_FATAL_TYPES = frozenset({"authentication_error", "permission_error"})

#: A refusal for the account's billing: 402 `billing_error` (Anthropic's errors page), or the
#: 400 `invalid_request_error` "Your credit balance is too low to access the Anthropic API"
#: (the wording users report from the Messages API, anthropics/claude-code#4207).
_BILLING_TYPES = frozenset({"billing_error"})
_LOW_CREDIT = "credit balance is too low"


class AnthropicBatchProvider:
    """`adapters.base.BatchProvider` over the Anthropic Message Batches API."""

    name = "anthropic"

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: httpx2.Timeout | float = DEFAULT_TIMEOUT,
        http_client: httpx2.Client | None = None,
    ) -> None:
        self.base_url = base_url or os.environ.get("ANTHROPIC_BASE_URL") or None
        # The caller reads the key: ledger.config from the provider's `api_key_env`, the
        # registry's factory from the usual variable when it is given none.
        if not api_key:
            raise MissingAPIKey(f"no API key given for provider {self.name!r}")
        self._api_key = api_key
        self._client = anthropic.Anthropic(
            api_key=self._api_key,
            base_url=self.base_url,
            max_retries=0,
            timeout=timeout,
            http_client=http_client or guarded_client(timeout),
        )
        self._request_sets = RequestSets()
        #: The first custom_id in each ended batch's results, as read while looking for a lost
        #: create: results never change once a batch has ended, so each is read once at most.
        self._first_custom_ids: dict[str, str | None] = {}

    # -- errors -----------------------------------------------------------------------------

    def _translate(self, error: Exception, *, side_effect: bool) -> ProviderError:
        """Sort an SDK error by what the reconciler must do about it."""
        message = scrub(error_text(error), self._api_key)
        if isinstance(error, anthropic.APIConnectionError | httpx2.HTTPError):
            # A timeout or a dropped reply says nothing about whether the server acted.
            kind = OutcomeUnknown if side_effect else TransientError
            return kind(f"connection problem: {message}")
        if isinstance(error, anthropic.APIStatusError):
            status = error.status_code
            if status == 402 or error.type in _BILLING_TYPES or _LOW_CREDIT in message:
                # Retrying burns requests until someone pays: the provider's batches pause.
                return QuotaExhausted(f"billing: {message}")
            if status in (401, 403) or error.type in _FATAL_TYPES:
                return FatalError(f"the provider refused the credentials or account: {message}")
            if status == 404:
                return NotFound(message)
            if status in (408, 409, 429) or status >= 500:
                # A 5xx (529 overloaded included) can come after the server created the batch.
                kind = OutcomeUnknown if side_effect and status >= 500 else TransientError
                retry_after = retry_after_seconds(error.response.headers)
                return kind(f"provider answered {status}: {message}", retry_after=retry_after)
            return Rejected(f"provider answered {status}: {message}")
        return TransientError(message)

    @contextlib.contextmanager
    def _errors(self, *, side_effect: bool = False) -> Iterator[None]:
        # A context rather than a call wrapper: list pages and streamed bodies are fetched
        # while the caller iterates, and their errors need sorting too.
        try:
            yield
        except (anthropic.AnthropicError, httpx2.HTTPError) as error:
            raise self._translate(error, side_effect=side_effect) from None

    # -- request sets (the "uploads": adapters.anthropic.request_sets) -----------------------

    def upload_input(self, path: Path, *, filename: str) -> RemoteFile:
        return self._request_sets.upload(path, filename)

    def find_uploads(self, filename: str) -> list[RemoteFile]:
        return self._request_sets.find(filename)

    def has_local_input(self, file_id: str) -> bool:
        """Whether the request set `file_id` names is on this machine (`adapters.base.
        LocalInputs`): the upload may have written it on another one."""
        return self._request_sets.is_here(file_id)

    def local_input_from(self, file_id: str, shard: Path) -> AbstractContextManager[None]:
        """While the block runs, the request set `file_id` names is one written now from
        `shard` (the job's shard, verified by the caller) in a scratch folder."""
        return self._request_sets.local_input_from(file_id, shard)

    def delete_file(self, file_id: str) -> None:
        self._request_sets.delete(file_id)
        # A batch's results go with the batch; nothing else is held as a file.

    # -- batches ----------------------------------------------------------------------------

    def create_batch(
        self,
        *,
        input_file_id: str,
        endpoint: str,
        metadata: dict[str, str],
        output_expires_after: int | None = None,
    ) -> BatchSnapshot:
        # Anthropic keeps results 29 days and takes no setting for it: the expiry is not sent.
        if endpoint != CHAT_ENDPOINT:
            raise Rejected(f"Anthropic Message Batches run chat requests only, not {endpoint}")
        tag = batch_tag(_token(metadata))
        requests = [
            {"custom_id": tag_custom_id(tag, request["custom_id"]), "params": request["params"]}
            for request in read_request_set(self._request_sets.path_of(input_file_id))
        ]
        with self._errors(side_effect=True), transfer():  # the requests travel inline
            batch = self._client.messages.batches.create(requests=cast(Any, requests))
        return snapshot(batch, input_file_id=input_file_id)

    def find_batches(
        self, *, input_file_id: str, metadata: dict[str, str], created_after: int
    ) -> list[BatchSnapshot]:
        token = metadata.get("ledger_token")
        if not token:
            return []  # no tag was sent, so no batch can be recognised as this create's
        tag = batch_tag(token)
        expected = count_requests(self._request_sets.path_of(input_file_id))
        found: list[BatchSnapshot] = []
        running: list[str] = []
        with self._errors():
            # Newest first, unfilterable: page back until older than the intent.
            for batch in self._client.messages.batches.list(limit=100):
                if epoch(batch.created_at) < created_after:
                    break
                if (
                    total_requests(batch.request_counts) != expected
                    or batch.archived_at is not None
                ):
                    continue
                if batch.processing_status != "ended" or not batch.results_url:
                    running.append(batch.id)
                    continue
                try:
                    first = self._first_custom_id(batch.id, batch.results_url)
                except anthropic.NotFoundError:
                    running.append(batch.id)  # results not served yet: cannot tell, so wait
                    continue
                if first is not None and has_tag(first, tag):
                    found.append(snapshot(batch, input_file_id=input_file_id))
        if not found and running:
            raise BatchesUndecided(
                f"batch(es) {', '.join(running)} with {expected} requests were created since "
                "this job's create intent and have not ended: Anthropic shows a batch's "
                "custom_ids only in its results, so whether one is this job's is not known yet; "
                "waiting rather than risking a second batch",
                batch_ids=tuple(running),
            )
        return sorted(found, key=lambda b: (b.created_at, b.id))

    def _first_custom_id(self, batch_id: str, results_url: str) -> str | None:
        """The custom_id of the first line of an ended batch's results (None: no such line)."""
        if batch_id in self._first_custom_ids:
            return self._first_custom_ids[batch_id]
        first: str | None = None
        with self._results(results_url) as response:
            for line in response.iter_lines():
                try:
                    record = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue  # a blank or garbled line names nobody
                custom_id = record.get("custom_id") if isinstance(record, dict) else None
                if isinstance(custom_id, str):
                    first = custom_id
                    break
        self._first_custom_ids[batch_id] = first
        return first

    @contextlib.contextmanager
    def _results(self, results_url: str) -> Iterator[httpx2.Response]:
        # The SDK's `results()` retrieves the batch again before opening the stream; callers
        # here have just read the batch, so the stream is opened from its `results_url` (one
        # request rather than two).
        response = self._client.get(
            results_url,
            cast_to=httpx2.Response,
            options={"headers": {"Accept": "application/binary"}},
            stream=True,
        )
        try:
            yield response
        finally:
            response.close()

    def get_batch(self, batch_id: str) -> BatchSnapshot:
        with self._errors():
            return snapshot(self._client.messages.batches.retrieve(batch_id))

    def cancel_batch(self, batch_id: str) -> BatchSnapshot:
        try:
            with self._errors():
                return snapshot(self._client.messages.batches.cancel(batch_id))
        except Rejected:
            # The API refuses to cancel a batch that has ended; the goal is reached then.
            current = self.get_batch(batch_id)
            if current.provider_status == "ended":
                return current
            raise

    # -- results ----------------------------------------------------------------------------

    def download_file(self, file_id: str, destination: Path) -> int:
        """Stream an ended batch's results to `destination`, custom_ids turned back into the
        ledger's; checked against the `Content-Length` (when sent) and the batch's count."""
        if not file_id.startswith(RESULTS_ID_PREFIX):
            raise NotFound(f"{file_id} is not an Anthropic results stream")
        batch_id = file_id.removeprefix(RESULTS_ID_PREFIX)
        with self._errors():
            batch = self._client.messages.batches.retrieve(batch_id)
        if batch.archived_at is not None:
            raise NotFound(
                f"the results of {batch_id} were archived at {batch.archived_at.isoformat()} "
                "(Anthropic keeps them 29 days) and can no longer be downloaded"
            )
        if batch.processing_status != "ended" or not batch.results_url:
            raise TransientError(f"batch {batch_id} has not ended: no results yet")
        expected_lines = total_requests(batch.request_counts)
        received = lines = 0
        with (
            self._errors(),
            transfer(),
            self._results(batch.results_url) as response,
            destination.open("wb") as out,
        ):
            announced = response.headers.get("content-length")
            pending = b""
            for chunk in response.iter_bytes(1 << 20):
                received += len(chunk)
                *complete, pending = (pending + chunk).split(b"\n")
                lines += sum(_write_result_line(out, line) for line in complete)
            lines += _write_result_line(out, pending)
        if announced is not None and announced.isdigit() and received != int(announced):
            raise TransientError(f"results of {batch_id} cut off: {received} of {announced} bytes")
        if lines != expected_lines:
            raise TransientError(
                f"results of {batch_id}: {lines} lines for {expected_lines} requests (cut off?)"
            )
        return received


def _write_result_line(out: IO[bytes], raw: bytes) -> int:
    """Write one result line with the ledger's custom_id; lines not ours go as they came (the
    normalizer quarantines them). Returns 1 for a line, 0 for a blank."""
    line = raw.strip()
    if not line:
        return 0
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        out.write(line + b"\n")
        return 1
    custom_id = record.get("custom_id") if isinstance(record, dict) else None
    ours = ledger_custom_id(custom_id) if isinstance(custom_id, str) else None
    if ours is None:
        out.write(line + b"\n")
    else:
        out.write(orjson.dumps({**record, "custom_id": ours}) + b"\n")
    return 1


def _token(metadata: dict[str, str]) -> str:
    token = metadata.get("ledger_token")
    if not token:
        # Without a token the batch cannot be recognised later; make one up so the ids are
        # still well formed (a caller outside the reconciler, say).
        token = uuid.uuid4().hex
    return token
