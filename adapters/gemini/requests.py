"""Gemini request files: a shard's OpenAI-format lines turned into Batch Mode lines, checked
against what Gemini takes: chat lines into `{"key": custom_id, "request":
GenerateContentRequest}`, embeddings lines into `{"key": custom_id, "request": {"content",
"outputDimensionality"}}` (an EmbedContentRequest, for `batches.create_embeddings`).

The shard keeps the ledger's one line format; the upload step writes this translation beside it
and uploads that. The model is not in the lines: a Gemini batch names one model, given at create
(every shard holds one model, `ledger.build.shards`). The request is the REST JSON of
`GenerateContentRequest` (camelCase, as the Batch Mode guide's JSONL examples write it).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from adapters.chat_types import CHAT, EMBEDDINGS
from ledger.errors import Rejected

#: The endpoint whose bodies translate into GenerateContentRequests.
CHAT_ENDPOINT = CHAT
#: The endpoint whose bodies translate into EmbedContentRequests (an embeddings batch).
EMBEDDINGS_ENDPOINT = EMBEDDINGS
#: The endpoints a Gemini batch runs, chat first (the default).
ENDPOINTS = (CHAT_ENDPOINT, EMBEDDINGS_ENDPOINT)
#: The Files API takes files up to 2 GB (Batch Mode guide, "Input file"); one batch, one file.
MAX_FILE_BYTES = 2 * 1024**3
#: No request count limit is published; the ledger's own Batch API cap (50,000) applies.
MAX_REQUESTS = 50_000
#: The suffix that names a shard's request file beside it.
REQUEST_FILE_SUFFIX = ".gemini-requests.jsonl"

#: OpenAI chat parameters -> GenerateContentRequest.generationConfig fields.
_GENERATION = {
    "max_tokens": "maxOutputTokens",
    "max_completion_tokens": "maxOutputTokens",
    "temperature": "temperature",
    "top_p": "topP",
    "n": "candidateCount",
    "seed": "seed",
    "presence_penalty": "presencePenalty",
    "frequency_penalty": "frequencyPenalty",
}
#: Body keys that mean nothing to Gemini and are dropped (the batch names the model).
_IGNORED = frozenset({"model", "user", "metadata", "store", "stream", "service_tier"})
_ROLES = {"user": "user", "assistant": "model"}


@dataclass(frozen=True)
class RequestFileInfo:
    """What `write_request_file` wrote."""

    path: Path
    requests: int
    bytes: int
    model: str
    #: The endpoint every line of the shard names.
    endpoint: str


def request_file_path(shard: Path, filename: str) -> Path:
    """Where the request file for `shard`, uploaded under `filename`, lives (beside the shard)."""
    return shard.parent / f"{filename.removesuffix('.jsonl')}{REQUEST_FILE_SUFFIX}"


def translate_body(body: Any) -> dict[str, Any]:
    """An OpenAI chat body as a GenerateContentRequest; Rejected names what cannot go."""
    if not isinstance(body, dict):
        raise Rejected("the body is not a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise Rejected("the body has no messages")
    system: list[dict[str, str]] = []
    contents: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise Rejected(f"messages[{index}] is not an object")
        role = message.get("role")
        parts = [{"text": text} for text in _texts(message.get("content"), index)]
        if role in ("system", "developer"):
            system.extend(parts)
        elif role in _ROLES:
            contents.append({"role": _ROLES[role], "parts": parts})
        else:
            raise Rejected(f"messages[{index}]: role {role!r} has no Gemini equivalent")
    if not contents:
        raise Rejected("the body has no user or assistant message")
    request: dict[str, Any] = {"contents": contents}
    if system:
        request["systemInstruction"] = {"parts": system}
    config: dict[str, Any] = {}
    for key, value in body.items():
        if key in ("messages", *_IGNORED) or value is None:
            continue
        if key in _GENERATION:
            config[_GENERATION[key]] = value
        elif key == "stop":
            config["stopSequences"] = [value] if isinstance(value, str) else value
        elif key == "response_format":
            config.update(_response_format(value))
        else:
            raise Rejected(f"{key!r} is not translated for Gemini batches")
    if config:
        request["generationConfig"] = config
    return request


def _texts(content: Any, index: int) -> list[str]:
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, dict) and part.get("type") == "text":
                texts.append(str(part.get("text", "")))
            else:
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise Rejected(
                    f"messages[{index}]: content part {kind!r} is not translated for Gemini"
                )
        return texts
    raise Rejected(f"messages[{index}] has no text content")


def _response_format(value: Any) -> dict[str, Any]:
    kind = value.get("type") if isinstance(value, dict) else None
    if kind == "text":
        return {}
    if kind == "json_object":
        return {"responseMimeType": "application/json"}
    if kind == "json_schema":
        schema = (value.get("json_schema") or {}).get("schema")
        config: dict[str, Any] = {"responseMimeType": "application/json"}
        if schema is not None:
            config["responseJsonSchema"] = schema
        return config
    raise Rejected(f"response_format {kind!r} is not translated for Gemini")


def translate_embeddings_body(body: Any) -> dict[str, Any]:
    """An OpenAI embeddings body as an EmbedContentRequest: one text (a string, or a list of
    one string) embedded per request; `dimensions` becomes `outputDimensionality`."""
    if not isinstance(body, dict):
        raise Rejected("the body is not a JSON object")
    given = body.get("input")
    if isinstance(given, list) and len(given) == 1:
        given = given[0]
    if not isinstance(given, str):
        raise Rejected(
            "a Gemini embeddings batch embeds one text per request: input must be a string "
            "(or a list of one string)"
        )
    request: dict[str, Any] = {"content": {"parts": [{"text": given}]}}
    for key, value in body.items():
        if key in ("input", "encoding_format", *_IGNORED) or value is None:
            continue
        if key == "dimensions":
            request["outputDimensionality"] = value
        else:
            raise Rejected(f"{key!r} is not translated for Gemini embeddings batches")
    return request


def translate(url: Any, body: Any) -> dict[str, Any]:
    """The Gemini request for one shard line of endpoint `url`."""
    if url == CHAT_ENDPOINT:
        return translate_body(body)
    if url == EMBEDDINGS_ENDPOINT:
        return translate_embeddings_body(body)
    raise Rejected(f"Gemini batches here run chat or embeddings requests only, not {url!r}")


def request_problem(custom_id: str, body: Any) -> str | None:
    """Why one request cannot go to Gemini, or None: the build asks this of every request of a
    gemini run, so nothing the upload would refuse is recorded. An embeddings body has `input`,
    a chat body `messages`."""
    if not custom_id:
        return "an empty custom_id cannot be a Gemini batch key"
    url = EMBEDDINGS_ENDPOINT if isinstance(body, dict) and "input" in body else CHAT_ENDPOINT
    try:
        translate(url, body)
    except Rejected as error:
        return str(error)
    return None


def write_request_file(
    shard: Path, destination: Path, *, max_bytes: int = MAX_FILE_BYTES
) -> RequestFileInfo:
    """Translate every line of `shard` into `destination`, atomically (temporary file, fsync,
    rename), streaming. Rejected names the first line that cannot go."""
    seen: set[str] = set()
    count = size = 0
    model: str | None = None
    endpoint: str | None = None
    handle, temporary = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            for number, line in _shard_lines(shard):
                where = f"{shard}:{number}"
                try:
                    request = orjson.loads(line)
                except orjson.JSONDecodeError:
                    raise Rejected(f"{where}: not JSON") from None
                custom_id = request.get("custom_id") if isinstance(request, dict) else None
                if not isinstance(custom_id, str) or not custom_id:
                    raise Rejected(f"{where}: no custom_id")
                url = request.get("url")
                if url not in ENDPOINTS:
                    raise Rejected(
                        f"{where}: Gemini batches here run chat or embeddings requests only "
                        f"({', '.join(ENDPOINTS)}), not {url!r}"
                    )
                if endpoint is None:
                    endpoint = url
                elif url != endpoint:
                    raise Rejected(f"{where}: a Gemini batch runs one endpoint ({endpoint})")
                if custom_id in seen:
                    raise Rejected(f"{where}: custom_id {custom_id!r} appears twice")
                seen.add(custom_id)
                body = request.get("body")
                line_model = body.get("model") if isinstance(body, dict) else None
                if model is None and isinstance(line_model, str):
                    model = line_model
                elif line_model != model:
                    raise Rejected(f"{where}: a Gemini batch runs one model ({model})")
                try:
                    translated = translate(url, body)
                except Rejected as error:
                    raise Rejected(f"{where} ({custom_id}): {error}") from None
                encoded = orjson.dumps({"key": custom_id, "request": translated}) + b"\n"
                size += len(encoded)
                if size > max_bytes:
                    raise Rejected(
                        f"{shard}: the requests weigh more than {max_bytes} bytes, the most "
                        "one Gemini batch file holds"
                    )
                out.write(encoded)
                count += 1
            if count == 0 or model is None or endpoint is None:
                raise Rejected(f"{shard}: no request naming a model")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, destination)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return RequestFileInfo(destination, count, size, model, endpoint)


def _shard_lines(shard: Path) -> Iterator[tuple[int, bytes]]:
    with shard.open("rb") as file:
        for number, line in enumerate(file, 1):
            if line.strip():
                yield number, line
