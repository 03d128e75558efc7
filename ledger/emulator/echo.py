"""The text every emulator answer carries, and the tokens it counts.

The text is an echo of the prompt (`answer_text`), so a test can predict every answer from its
request. JSON mode answers valid JSON (a schema's instance for `json_schema`); a small
`max_output_tokens` / `max_tokens` cuts the answer (`cut_to_tokens`); a prompt holding
`CONTENT_FILTER_MARKER` is stopped by the content filter (`filtered`). Tokens are counted by
`count_tokens`, a deterministic stand-in for a real tokenizer.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

#: How long the echo gets before it is cut, in characters of the prompt.
ECHO_CHARS = 200
#: A prompt holding this is stopped by the emulator's content filter: chat `finish_reason:
#: content_filter`, a Responses `incomplete` for `content_filter`, an Anthropic `refusal` stop.
CONTENT_FILTER_MARKER = "[content-filter]"

_TOKEN = re.compile(r"\w+|[^\w\s]")
_REASONING_EFFORT_TOKENS = {"none": 0, "minimal": 0, "low": 8, "medium": 16, "high": 32}
_LEGACY_COMPLETION_DEFAULT_MAX_TOKENS = 16


@dataclass(frozen=True)
class TokenUsage:
    """One request's tokens, in the batch `usage` vocabulary."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0


def count_tokens(text: str) -> int:
    """Tokens in `text` as the emulator counts them: words and single punctuation marks."""
    return len(_TOKEN.findall(text))


def cut_to_tokens(text: str, limit: int | None) -> tuple[str, bool]:
    """`text` cut after `limit` tokens (as `count_tokens` counts), and whether it was cut."""
    if limit is None:
        return text, False
    tokens = list(_TOKEN.finditer(text))
    if len(tokens) <= limit:
        return text, False
    return (text[: tokens[limit - 1].end()] if limit > 0 else ""), True


def filtered(endpoint: str, body: dict[str, Any]) -> bool:
    """Whether the content filter stops this request's answer (its prompt holds the marker)."""
    return CONTENT_FILTER_MARKER in prompt_text(endpoint, body)


def answer_text(prompt: str) -> str:
    """The answer to a prompt: "Echo: " and the prompt, whitespace collapsed, cut at 200 chars."""
    return "Echo: " + " ".join(prompt.split())[:ECHO_CHARS]


def prompt_text(endpoint: str, body: dict[str, Any]) -> str:
    """The prompt a request asks about: its last user message, input or prompt, as text."""
    if endpoint == "/v1/chat/completions":
        messages = [m for m in as_list(body.get("messages")) if isinstance(m, dict)]
        users = [m for m in messages if m.get("role") == "user"] or messages
        return content_text(users[-1].get("content")) if users else ""
    if endpoint == "/v1/responses":
        given = body.get("input")
        if isinstance(given, str):
            return given
        items = [m for m in as_list(given) if isinstance(m, dict)]
        users = [m for m in items if m.get("role") == "user"] or items
        return content_text(users[-1].get("content")) if users else ""
    if endpoint == "/v1/completions":
        prompt = body.get("prompt")
        return prompt if isinstance(prompt, str) else content_text(prompt)
    return " ".join(request_inputs(body))


def reply_text(endpoint: str, body: dict[str, Any]) -> str:
    """The whole reply before any cut: the echo, or JSON holding it when the body asks for JSON."""
    text = answer_text(prompt_text(endpoint, body))
    asked = json_format(endpoint, body)
    if asked is None:
        return text
    kind, schema = asked
    if kind == "json_schema" and schema is not None:
        return json.dumps(schema_instance(schema, text=text))
    return json.dumps({"answer": text})


def json_format(endpoint: str, body: dict[str, Any]) -> tuple[str, Any] | None:
    """The JSON output a chat or responses body asks for: (`json_object` | `json_schema`, the
    schema or None), or None for plain text."""
    if endpoint == "/v1/chat/completions":
        given = body.get("response_format")
        if isinstance(given, dict) and given.get("type") in ("json_object", "json_schema"):
            wrapper = given.get("json_schema")
            schema = wrapper.get("schema") if isinstance(wrapper, dict) else None
            return str(given["type"]), schema
    if endpoint == "/v1/responses":
        text = body.get("text")
        given = text.get("format") if isinstance(text, dict) else None
        if isinstance(given, dict) and given.get("type") in ("json_object", "json_schema"):
            return str(given["type"]), given.get("schema")
    return None


def schema_instance(schema: Any, *, text: str, root: Any = None, depth: int = 0) -> Any:
    """A value valid for a JSON schema (the common subset); every string in it is `text`."""
    root = schema if root is None else root
    if not isinstance(schema, dict) or depth > 12:
        return None
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part) if isinstance(target, dict) else None
        return schema_instance(target, text=text, root=root, depth=depth + 1)
    for combinator in ("anyOf", "oneOf", "allOf"):
        options = schema.get(combinator)
        if isinstance(options, list) and options:
            return schema_instance(options[0], text=text, root=root, depth=depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "string"
    if kind == "object":
        properties = schema.get("properties")
        if not isinstance(properties, dict):
            return {}
        return {
            str(name): schema_instance(sub, text=text, root=root, depth=depth + 1)
            for name, sub in properties.items()
        }
    if kind == "array":
        count = schema.get("minItems")
        count = count if isinstance(count, int) and 1 <= count <= 10 else 1
        item = schema_instance(schema.get("items"), text=text, root=root, depth=depth + 1)
        return [item] * count
    if kind == "string":
        return text
    if kind in ("number", "integer"):
        low = schema.get("minimum")
        return low if isinstance(low, int | float) and not isinstance(low, bool) else 0
    if kind == "boolean":
        return False
    return None


def output_budget(endpoint: str, body: dict[str, Any]) -> tuple[int | None, int]:
    """The output-token limit the request sets (None: none) and the reasoning tokens it spends."""
    if endpoint == "/v1/responses":
        names = ("max_output_tokens",)
        reasoning = body.get("reasoning")
        effort = reasoning.get("effort") if isinstance(reasoning, dict) else None
    else:
        names = ("max_completion_tokens", "max_tokens")
        effort = body.get("reasoning_effort")
    limit = next((body[n] for n in names if is_int(body.get(n))), None)
    if limit is None and endpoint == "/v1/completions":
        limit = _LEGACY_COMPLETION_DEFAULT_MAX_TOKENS
    spent = _REASONING_EFFORT_TOKENS.get(effort, 0) if isinstance(effort, str) else 0
    return limit, spent


def input_tokens(endpoint: str, body: dict[str, Any]) -> int:
    """The input tokens a request counts: its messages or input (and instructions)."""
    if endpoint == "/v1/chat/completions":
        messages = [m for m in as_list(body.get("messages")) if isinstance(m, dict)]
        # The cookbook's estimate: 3 per message, the content, 3 to prime the reply.
        return 3 + sum(3 + count_tokens(content_text(m.get("content"))) for m in messages)
    if endpoint == "/v1/responses":
        given = body.get("input")
        instructions = body.get("instructions")
        extra = count_tokens(instructions) if isinstance(instructions, str) else 0
        if isinstance(given, str):
            return 3 + count_tokens(given) + extra
        items = [m for m in as_list(given) if isinstance(m, dict)]
        return 3 + extra + sum(3 + count_tokens(content_text(m.get("content"))) for m in items)
    return count_tokens(prompt_text(endpoint, body))


def request_inputs(body: dict[str, Any]) -> list[str]:
    """The texts of an embeddings or moderations `input` (a string, a list, or token ids)."""
    given = body.get("input")
    if isinstance(given, str):
        return [given]
    items = as_list(given)
    if items and all(is_int(x) for x in items):
        return [" ".join(str(x) for x in items)]  # one pre-tokenized input
    return [x if isinstance(x, str) else json.dumps(x) for x in items]


def content_text(content: Any) -> str:
    """A message content's text: the string, or its text parts joined."""
    if isinstance(content, str):
        return content
    parts = []
    for part in as_list(content):
        if isinstance(part, str):
            parts.append(part)
        elif isinstance(part, dict) and isinstance(part.get("text"), str):
            parts.append(part["text"])
    return " ".join(parts)


def as_list(value: Any) -> list[Any]:
    """`value` if it is a list, else an empty one."""
    return value if isinstance(value, list) else []


def is_int(value: Any) -> bool:
    """Whether `value` is an int and not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def digest_hex(key: str, length: int) -> str:
    """The first `length` hex digits of `key`'s SHA-256: the stable ids in answer bodies."""
    return hashlib.sha256(key.encode()).hexdigest()[:length]
