"""Gemini Batch Mode with inlined requests: a small chat job travels inside the create call
instead of through the Files API, and its answers come back inside the batch.

Google's Batch Mode guide (https://ai.google.dev/gemini-api/docs/batch-api, "Creating a batch
job"): inline requests suit "smaller batches that keep the total request size under 20MB"; the
output is then a list of inlined responses. The SDK's types (google-genai 3.6.1 `types.py`):
`InlinedRequest(model, contents, metadata: dict[str, str], config: GenerateContentConfig)` in
`src`, sent as `inputConfig.requests.requests[{request, metadata}]`; the answers are
`BatchJob.dest.inlined_responses`: `InlinedResponse(response, metadata, error)`.

- Upload: nothing leaves the machine. The upload step records a pseudo file id,
  `inline:<upload name>#<model>`, naming the stored shard (the upload name carries the shard's
  digest and the job's token); `find_uploads` finds nothing, so a repeat simply records it again.
- Create: the create step hands the adapter the job's verified shard (`LocalInputs`; read
  through the artifact store when this machine lacks it, `ledger.reconcile.shard_source`),
  translated here again and sent inline, each request's key in its `metadata["key"]`. Tagging
  and adoption after a crash are the file path's: the batch's `display_name`.
- Results: the output file id is `inline:<batch name>`; "downloading" it reads the batch's
  inlined responses and writes them as the file path's `{key, response|error}` lines, which then
  go through the same `check_keys` (every key exactly once; unknown and duplicate keys reported).

Only chat jobs go inline; embeddings batches always use the Files API.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson
import pydantic
from google.genai import types

from adapters.base import NotFound, Rejected

#: Google's documented ceiling for inline requests (the Batch Mode guide: "under 20MB"),
#: read as 20,000,000 bytes of translated request lines: the smaller reading of "MB".
INLINE_MAX_BYTES = 20_000_000
#: The prefix of an inline job's pseudo input file id and of an inline batch's output id.
INLINE_PREFIX = "inline:"
#: The metadata entry carrying a request's key (the file path's `key`).
KEY_FIELD = "key"


def is_inline(file_id: str | None) -> bool:
    """Whether an input or output id names inline requests or responses."""
    return bool(file_id) and str(file_id).startswith(INLINE_PREFIX)


def inlined_requests(request_file: Path) -> list[types.InlinedRequest]:
    """The translated `{key, request}` lines of `request_file` as SDK `InlinedRequest`s.

    A GenerateContentRequest's REST fields map onto the SDK's: `contents` as is; the
    `generationConfig` fields and `systemInstruction` into `config` (the SDK puts them back in
    the request's `generationConfig` and `systemInstruction`, `_InlinedRequest_to_mldev`).
    Rejected when a request has a field the SDK type does not take."""
    requests: list[types.InlinedRequest] = []
    for key, request in _lines(request_file):
        config = dict(request.get("generationConfig") or {})
        if "systemInstruction" in request:
            config["systemInstruction"] = request["systemInstruction"]
        extra = set(request) - {"contents", "generationConfig", "systemInstruction"}
        if extra:
            raise Rejected(f"{key}: {sorted(extra)} cannot be sent inline")
        try:
            requests.append(
                types.InlinedRequest.model_validate(
                    {
                        "contents": request["contents"],
                        "metadata": {KEY_FIELD: key},
                        **({"config": config} if config else {}),
                    }
                )
            )
        except pydantic.ValidationError as error:
            raise Rejected(f"{key}: cannot be sent inline: {error}") from None
    return requests


def write_inlined_responses(batch: types.BatchJob, out: IO[bytes]) -> int:
    """Write a finished inline batch's responses as `{key, response|error}` lines (REST JSON,
    as the file path's result lines); a response without a key is written without one (the
    normalizer quarantines it). Returns the bytes written. NotFound when the batch holds no
    inlined responses."""
    dest = batch.dest
    if dest is None or dest.inlined_responses is None:
        raise NotFound(f"batch {batch.name} holds no inlined responses")
    written = 0
    for answer in dest.inlined_responses:
        line: dict[str, Any] = {}
        key = (answer.metadata or {}).get(KEY_FIELD)
        if key is not None:
            line["key"] = key
        if answer.response is not None:
            line["response"] = answer.response.model_dump(
                mode="json", by_alias=True, exclude_none=True, exclude={"sdk_http_response"}
            )
        elif answer.error is not None:
            line["error"] = {"code": answer.error.code, "message": answer.error.message}
        encoded = orjson.dumps(line) + b"\n"
        out.write(encoded)
        written += len(encoded)
    return written


def _lines(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    with path.open("rb") as file:
        for raw in file:
            if raw.strip():
                record = orjson.loads(raw)
                yield str(record["key"]), record["request"]
