"""Anthropic request sets: a shard's OpenAI-format chat lines turned into Message Batches
requests, checked against Anthropic's rules, and kept as a local file beside the shard.

The Message Batches API takes its requests inline, so there is nothing to upload: the `uploaded`
step writes the translated request set (one `{"custom_id", "params"}` JSON object a line) and
`create_batch` sends it. What the translation does to each chat body is in `translate_body`;
`docs/providers.md` says it for users.

Anthropic's `custom_id`s allow only `[A-Za-z0-9_-]`, at most 64 characters; the ledger allows
more (`.`, `:` ...). Each id is therefore encoded reversibly (`encode_custom_id`) and, when the
batch is created, prefixed with a short tag drawn from the create's token (`tag_custom_id`), so
the batch's results name the create that made them.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.errors import InputError

#: The only endpoint whose bodies translate into Messages API params.
CHAT_ENDPOINT = "/v1/chat/completions"

#: Anthropic's per-batch limits.
MAX_REQUESTS = 100_000
MAX_BATCH_BYTES = 256 * 1024 * 1024
MAX_CUSTOM_ID_CHARS = 64

#: Characters of the create token that tag every custom_id of a batch, and the separator after.
TAG_CHARS = 8
TAG_SEPARATOR = "-"
#: What is left of Anthropic's 64 characters for the encoded ledger custom_id.
MAX_ENCODED_CHARS = MAX_CUSTOM_ID_CHARS - TAG_CHARS - len(TAG_SEPARATOR)

#: `max_tokens` is required by Anthropic; used when the chat body sets no limit.
DEFAULT_MAX_TOKENS = 4096

#: JSON mode (`response_format: json_object`) has no switch in the Messages API: this sentence
#: is added to the system prompt instead, and the normalizer reports text that does not parse.
JSON_MODE_INSTRUCTION = (
    "Respond with a single valid JSON object and nothing else: no prose, no code fences."
)

#: The suffix that names a shard's request set beside it.
REQUEST_SET_SUFFIX = ".anthropic-requests.jsonl"

_KEPT = re.compile(r"[A-Za-z0-9-]")
_ESCAPE = re.compile(r"_([0-9a-f]{2})")
_TAGGED = re.compile(rf"[0-9a-f]{{{TAG_CHARS}}}{TAG_SEPARATOR}(.*)", re.DOTALL)

# Chat body fields with a Messages API counterpart; any other field is refused rather than
# silently dropped, since dropping it would change what the request asks for.
_TRANSLATED_FIELDS = frozenset(
    {
        "model",
        "messages",
        "max_completion_tokens",
        "max_tokens",
        "temperature",
        "top_p",
        "stop",
        "response_format",
        "user",
        "n",
        "stream",
    }
)
_LIFTED_ROLES = frozenset({"system", "developer"})


class RequestSetError(InputError, ValueError):
    """A shard that cannot become an Anthropic request set (the message says why and where)."""


# -- custom_ids ---------------------------------------------------------------------------------


def encode_custom_id(custom_id: str) -> str:
    """`custom_id` in Anthropic's alphabet: letters, digits and `-` stay; every other character
    becomes `_` and the hex of each of its UTF-8 bytes (`.` -> `_2e`, `_` -> `_5f`)."""
    return "".join(
        char if _KEPT.fullmatch(char) else "".join(f"_{byte:02x}" for byte in char.encode())
        for char in custom_id
    )


def decode_custom_id(encoded: str) -> str:
    """The ledger custom_id `encode_custom_id` made `encoded` from; ValueError when it is not
    such an encoding."""
    if "_" not in encoded:
        return encoded
    out = bytearray()
    position = 0
    while position < len(encoded):
        char = encoded[position]
        if char != "_":
            out += char.encode()
            position += 1
            continue
        escape = _ESCAPE.match(encoded, position)
        if escape is None:
            raise ValueError(f"{encoded!r} is not an encoded custom_id")
        out.append(int(escape.group(1), 16))
        position = escape.end()
    try:
        return out.decode()
    except UnicodeDecodeError:
        raise ValueError(f"{encoded!r} is not an encoded custom_id") from None


def batch_tag(token: str) -> str:
    """The tag a create with this token puts on its custom_ids (the token's first hex digits)."""
    tag = token[:TAG_CHARS].lower()
    if not re.fullmatch(rf"[0-9a-f]{{{TAG_CHARS}}}", tag):
        raise ValueError(f"a batch tag needs a hex token of at least {TAG_CHARS} digits")
    return tag


def tag_custom_id(tag: str, encoded: str) -> str:
    """The custom_id sent to Anthropic: the batch tag, `-`, the encoded ledger custom_id."""
    return f"{tag}{TAG_SEPARATOR}{encoded}"


def has_tag(anthropic_id: str, tag: str) -> bool:
    """Whether a result's custom_id was sent by the create that carried `tag`."""
    return anthropic_id.startswith(tag + TAG_SEPARATOR)


def ledger_custom_id(anthropic_id: str) -> str | None:
    """The ledger custom_id behind an Anthropic custom_id, or None when it is not ours."""
    tagged = _TAGGED.fullmatch(anthropic_id)
    if tagged is None:
        return None
    try:
        return decode_custom_id(tagged.group(1))
    except ValueError:
        return None


# -- translation --------------------------------------------------------------------------------


def translate_body(body: Any) -> dict[str, Any]:
    """Messages API params for one chat-completions body; RequestSetError when there are none.

    - `system` and `developer` messages are lifted, in order, into `system` (joined by a blank
      line); `user` and `assistant` messages keep their text (a string, or `text` parts);
    - `max_tokens` is `max_completion_tokens`, else `max_tokens`, else `DEFAULT_MAX_TOKENS`;
    - `temperature` (0 to 1 at Anthropic; higher is refused), `top_p`, `stop` -> `stop_sequences`,
      `user` -> `metadata.user_id`;
    - `response_format`: `json_schema` -> `output_config.format` (Anthropic's structured
      outputs); `json_object` -> `JSON_MODE_INSTRUCTION` added to the system prompt;
    - `n` other than 1, `stream`, tools, images and every other field are refused.
    """
    if not isinstance(body, dict):
        raise RequestSetError("body is not an object")
    unknown = sorted(str(k) for k in body if k not in _TRANSLATED_FIELDS)
    if unknown:
        raise RequestSetError(
            f"body field(s) {', '.join(unknown)} have no Anthropic translation "
            "(see docs/providers.md)"
        )
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise RequestSetError("body.model must be a non-empty string")
    if body.get("n", 1) != 1:
        raise RequestSetError("body.n must be 1: Anthropic answers one message per request")
    if body.get("stream"):
        raise RequestSetError("body.stream is not allowed in a batch")
    system, messages = _split_messages(body.get("messages"))
    params: dict[str, Any] = {
        "model": model,
        "max_tokens": _max_tokens(body),
        "messages": messages,
    }
    output_format, instruction = _response_format(body.get("response_format"))
    if instruction:
        system.append(instruction)
    if system:
        params["system"] = "\n\n".join(system)
    temperature = body.get("temperature")
    if temperature is not None:
        if not _is_number(temperature) or not 0 <= temperature <= 1:
            raise RequestSetError(
                f"body.temperature {temperature!r} is outside Anthropic's range 0 to 1"
            )
        params["temperature"] = temperature
    top_p = body.get("top_p")
    if top_p is not None:
        if not _is_number(top_p) or not 0 <= top_p <= 1:
            raise RequestSetError(f"body.top_p {top_p!r} is outside 0 to 1")
        params["top_p"] = top_p
    stop = body.get("stop")
    if stop is not None:
        sequences = [stop] if isinstance(stop, str) else stop
        if not isinstance(sequences, list) or not all(isinstance(s, str) for s in sequences):
            raise RequestSetError("body.stop must be a string or a list of strings")
        if sequences:
            params["stop_sequences"] = sequences
    user = body.get("user")
    if user is not None:
        if not isinstance(user, str):
            raise RequestSetError("body.user must be a string")
        params["metadata"] = {"user_id": user}
    if output_format is not None:
        params["output_config"] = {"format": output_format}
    return params


def _split_messages(given: Any) -> tuple[list[str], list[dict[str, Any]]]:
    if not isinstance(given, list) or not given:
        raise RequestSetError("body.messages must be a non-empty list")
    system: list[str] = []
    messages: list[dict[str, Any]] = []
    for index, message in enumerate(given):
        where = f"body.messages[{index}]"
        if not isinstance(message, dict):
            raise RequestSetError(f"{where} is not an object")
        extra = sorted(str(k) for k in message if k not in ("role", "content"))
        if extra:
            raise RequestSetError(
                f"{where} has field(s) {', '.join(extra)} with no Anthropic translation"
            )
        role = message.get("role")
        if role in _LIFTED_ROLES:
            system.append(_plain_text(message.get("content"), where))
        elif role in ("user", "assistant"):
            messages.append({"role": role, "content": _content(message.get("content"), where)})
        else:
            raise RequestSetError(f"{where}.role {role!r} has no Anthropic translation")
    if not messages:
        raise RequestSetError("body.messages has no user or assistant message")
    return system, messages


def _content(content: Any, where: str) -> str | list[dict[str, str]]:
    if isinstance(content, str):
        return content
    return [{"type": "text", "text": text} for text in _text_parts(content, where)]


def _plain_text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    return "\n".join(_text_parts(content, where))


def _text_parts(content: Any, where: str) -> list[str]:
    if not isinstance(content, list) or not content:
        raise RequestSetError(f"{where}.content must be a string or a non-empty list of parts")
    texts = []
    for index, part in enumerate(content):
        if not (
            isinstance(part, dict)
            and part.get("type") == "text"
            and isinstance(part.get("text"), str)
        ):
            kind = part.get("type") if isinstance(part, dict) else type(part).__name__
            raise RequestSetError(
                f"{where}.content[{index}] of type {kind!r} has no Anthropic translation "
                "(only text parts do)"
            )
        texts.append(part["text"])
    return texts


def _max_tokens(body: dict[str, Any]) -> int:
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise RequestSetError(f"body.{name} must be a positive integer")
        return value
    return DEFAULT_MAX_TOKENS


def _response_format(given: Any) -> tuple[dict[str, Any] | None, str | None]:
    """(structured-output format, system instruction) for a chat `response_format`."""
    if given is None:
        return None, None
    kind = given.get("type") if isinstance(given, dict) else None
    if kind == "text":
        return None, None
    if kind == "json_object":
        return None, JSON_MODE_INSTRUCTION
    if kind == "json_schema":
        wrapper = given.get("json_schema")
        schema = wrapper.get("schema") if isinstance(wrapper, dict) else None
        if not isinstance(schema, dict):
            raise RequestSetError("body.response_format.json_schema.schema must be an object")
        return {"type": "json_schema", "schema": schema}, None
    raise RequestSetError(f"body.response_format type {kind!r} has no Anthropic translation")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# -- request sets on disk -----------------------------------------------------------------------


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
        raise RequestSetError(
            f"{where}: custom_id {custom_id!r} is {len(encoded)} characters once encoded for "
            f"Anthropic (letters, digits and '-' stay, any other character becomes '_' and its "
            f"hex bytes); {MAX_ENCODED_CHARS} fit beside the batch tag in Anthropic's "
            f"{MAX_CUSTOM_ID_CHARS}: shorten it"
        )
    if encoded in seen:
        raise RequestSetError(f"{where}: custom_id {custom_id!r} appears twice")
    seen.add(encoded)
    try:
        params = translate_body(request.get("body"))
    except RequestSetError as error:
        raise RequestSetError(f"{where} ({custom_id}): {error}") from None
    return {"custom_id": encoded, "params": params}
