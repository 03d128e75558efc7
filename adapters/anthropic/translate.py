"""Chat-completions bodies (the ledger's shard lines) translated into Anthropic Messages API
params, or refused with the field named.

`translate_body` says what each field becomes; `docs/providers.md` says it for users. A field
with no counterpart is refused rather than dropped, since dropping it would change what the
request asks for.
"""

from __future__ import annotations

from typing import Any

from ledger.errors import InputError

#: `max_tokens` is required by Anthropic; used when the chat body sets no limit.
DEFAULT_MAX_TOKENS = 4096

#: JSON mode (`response_format: json_object`) has no switch in the Messages API: this sentence
#: is added to the system prompt instead, and the normalizer reports text that does not parse.
JSON_MODE_INSTRUCTION = (
    "Respond with a single valid JSON object and nothing else: no prose, no code fences."
)

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
