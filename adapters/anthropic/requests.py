"""Anthropic request sets: a shard's OpenAI-format chat lines turned into Message Batches
requests, checked against Anthropic's rules, and kept as a local file beside the shard.

The Message Batches API takes its requests inline, so there is nothing to upload: the `uploaded`
step writes the translated request set (one `{"custom_id", "params"}` JSON object a line) and
`create_batch` sends it. Each body goes through `adapters.anthropic.translate.translate_body`;
each custom_id is encoded into Anthropic's alphabet by `adapters.anthropic.custom_ids` (and
tagged only when the batch is created).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.anthropic.custom_ids import (
    MAX_CUSTOM_ID_CHARS,
    MAX_ENCODED_CHARS,
    TAG_CHARS,
    TAG_SEPARATOR,
    encode_custom_id,
)
from adapters.anthropic.translate import RequestSetError, translate_body
from adapters.chat_types import CHAT

#: The only endpoint whose bodies translate into Messages API params.
CHAT_ENDPOINT = CHAT

#: Anthropic's per-batch limits.
MAX_REQUESTS = 100_000
MAX_BATCH_BYTES = 256 * 1024 * 1024

#: The suffix that names a shard's request set beside it.
REQUEST_SET_SUFFIX = ".anthropic-requests.jsonl"


@dataclass(frozen=True)
class RequestSetInfo:
    """What `write_request_set` wrote."""

    path: Path
    requests: int
    bytes: int


def request_set_path(shard: Path, filename: str) -> Path:
    """Where the request set for `shard`, uploaded under `filename`, lives (beside the shard)."""
    stem = filename.removesuffix(".jsonl")
    return shard.parent / f"{stem}{REQUEST_SET_SUFFIX}"


def write_request_set(
    shard: Path,
    destination: Path,
    *,
    max_requests: int = MAX_REQUESTS,
    max_bytes: int = MAX_BATCH_BYTES,
) -> RequestSetInfo:
    """Translate every line of `shard` and write the request set to `destination` atomically
    (temporary file, fsync, rename). RequestSetError names the first line that cannot go."""
    seen: set[str] = set()
    count = 0
    size = len('{"requests": []}')
    handle, temporary = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            for number, line in _shard_lines(shard):
                request = _request(line, number, shard, seen)
                count += 1
                if count > max_requests:
                    raise RequestSetError(
                        f"{shard}: more than {max_requests} requests; Anthropic takes at most "
                        f"{max_requests} per batch"
                    )
                encoded = json.dumps(request, ensure_ascii=False).encode()
                # What the create body will weigh: the line, its separator, the batch tag.
                size += len(encoded) + 2 + TAG_CHARS + len(TAG_SEPARATOR)
                if size > max_bytes:
                    raise RequestSetError(
                        f"{shard}: the requests weigh more than {max_bytes} bytes, Anthropic's "
                        "limit per batch"
                    )
                out.write(encoded + b"\n")
            if count == 0:
                raise RequestSetError(f"{shard}: no request")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, destination)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(destination.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename is durable only once the directory is
    finally:
        os.close(directory)
    return RequestSetInfo(destination, count, destination.stat().st_size)


def read_request_set(path: Path) -> list[dict[str, Any]]:
    """The requests of a request set, in shard order (`custom_id` still untagged)."""
    with path.open("rb") as file:
        return [json.loads(line) for line in file if line.strip()]


def count_requests(path: Path) -> int:
    """How many requests a request set holds."""
    with path.open("rb") as file:
        return sum(1 for line in file if line.strip())


def _shard_lines(shard: Path) -> Iterator[tuple[int, bytes]]:
    with shard.open("rb") as file:
        for number, line in enumerate(file, 1):
            if line.strip():
                yield number, line


def _request(line: bytes, number: int, shard: Path, seen: set[str]) -> dict[str, Any]:
    where = f"{shard}:{number}"
    try:
        request = json.loads(line)
    except ValueError:
        raise RequestSetError(f"{where}: not JSON") from None
    if not isinstance(request, dict):
        raise RequestSetError(f"{where}: not a JSON object")
    custom_id = request.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        raise RequestSetError(f"{where}: no custom_id")
    url = request.get("url")
    if url != CHAT_ENDPOINT:
        raise RequestSetError(
            f"{where}: url {url!r}: Anthropic Message Batches run chat requests only "
            f"({CHAT_ENDPOINT})"
        )
    encoded = encode_custom_id(custom_id)
    if len(encoded) > MAX_ENCODED_CHARS:
        raise RequestSetError(f"{where}: {_long_custom_id(custom_id, encoded)}")
    if encoded in seen:
        raise RequestSetError(f"{where}: custom_id {custom_id!r} appears twice")
    seen.add(encoded)
    try:
        params = translate_body(request.get("body"))
    except RequestSetError as error:
        raise RequestSetError(f"{where} ({custom_id}): {error}") from None
    return {"custom_id": encoded, "params": params}


def request_problem(custom_id: str, body: Any) -> str | None:
    """Why one chat request (its custom_id and body) cannot go to Anthropic, or None.

    The build asks this of every request of an Anthropic run, so that what the request set
    would refuse at upload is refused before anything is recorded.
    """
    encoded = encode_custom_id(custom_id)
    if len(encoded) > MAX_ENCODED_CHARS:
        return _long_custom_id(custom_id, encoded)
    try:
        translate_body(body)
    except RequestSetError as error:
        return str(error)
    return None


def _long_custom_id(custom_id: str, encoded: str) -> str:
    return (
        f"custom_id {custom_id!r} is {len(encoded)} characters once encoded for "
        f"Anthropic (letters, digits and '-' stay, any other character becomes '_' and its "
        f"hex bytes); {MAX_ENCODED_CHARS} fit beside the batch tag in Anthropic's "
        f"{MAX_CUSTOM_ID_CHARS}: shorten it"
    )
