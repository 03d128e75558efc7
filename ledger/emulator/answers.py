"""Deterministic answers to batch requests, in the real response-body shapes.

The text is an echo of the prompt (`answer_text`), so a test can predict every answer from its
request. JSON mode answers valid JSON (a schema's instance for `json_schema`); a small
`max_output_tokens` / `max_tokens` cuts the answer and marks it incomplete (`length`). Tokens are
counted by `count_tokens`, a deterministic stand-in for a real tokenizer.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import struct
from dataclasses import dataclass
from typing import Any

#: Endpoints the emulator answers.
ENDPOINTS = (
    "/v1/responses",
    "/v1/chat/completions",
    "/v1/embeddings",
    "/v1/completions",
    "/v1/moderations",
)

#: How long the echo gets before it is cut, in characters of the prompt.
ECHO_CHARS = 200

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


@dataclass(frozen=True)
class Answer:
    """One request's HTTP answer inside a batch."""

    status_code: int
    body: dict[str, Any]
    usage: TokenUsage


def count_tokens(text: str) -> int:
    """Tokens in `text` as the emulator counts them: words and single punctuation marks."""
    return len(_TOKEN.findall(text))


def answer_text(prompt: str) -> str:
    """The answer to a prompt: "Echo: " and the prompt, whitespace collapsed, cut at 200 chars."""
    return "Echo: " + " ".join(prompt.split())[:ECHO_CHARS]


def prompt_text(endpoint: str, body: dict[str, Any]) -> str:
    """The prompt a request asks about: its last user message, input or prompt, as text."""
    if endpoint == "/v1/chat/completions":
        messages = [m for m in _list(body.get("messages")) if isinstance(m, dict)]
        users = [m for m in messages if m.get("role") == "user"] or messages
        return _content_text(users[-1].get("content")) if users else ""
    if endpoint == "/v1/responses":
        given = body.get("input")
        if isinstance(given, str):
            return given
        items = [m for m in _list(given) if isinstance(m, dict)]
        users = [m for m in items if m.get("role") == "user"] or items
        return _content_text(users[-1].get("content")) if users else ""
    if endpoint == "/v1/completions":
        prompt = body.get("prompt")
        return prompt if isinstance(prompt, str) else _content_text(prompt)
    return " ".join(_inputs(body))


def answer(endpoint: str, body: dict[str, Any], *, key: str, created: int, dims: int) -> Answer:
    """The 200 answer to one request; `key` makes the body's ids, `dims` sizes embeddings."""
    if endpoint == "/v1/embeddings":
        return _embeddings(body, dims)
    if endpoint == "/v1/moderations":
        return _moderations(body, key)
    model = str(body.get("model"))
    text = _reply(endpoint, body)
    limit, reasoning = _output_budget(endpoint, body)
    visible, truncated = cut_to_tokens(text, None if limit is None else max(0, limit - reasoning))
    usage = TokenUsage(
        input_tokens=_input_tokens(endpoint, body),
        output_tokens=count_tokens(visible) + reasoning,
        reasoning_tokens=reasoning,
    )
    if endpoint == "/v1/responses":
        return Answer(
            200, _response_body(body, model, visible, truncated, usage, key, created), usage
        )
    if endpoint == "/v1/completions":
        choice = {
            "text": visible,
            "index": 0,
            "logprobs": None,
            "finish_reason": "length" if truncated else "stop",
        }
        return Answer(
            200,
            {
                "id": f"cmpl-{_hex(key, 29)}",
                "object": "text_completion",
                "created": created,
                "model": model,
                "choices": [choice],
                "system_fingerprint": "fp_emulator",
                "usage": _chat_usage(usage),
            },
            usage,
        )
    choice = {
        "index": 0,
        "message": {
            "role": "assistant",
            "content": visible,
            "refusal": None,
            "annotations": [],
        },
        "logprobs": None,
        "finish_reason": "length" if truncated else "stop",
    }
    return Answer(
        200,
        {
            "id": f"chatcmpl-{_hex(key, 29)}",
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [choice],
            "usage": _chat_usage(usage),
            "service_tier": "default",
            "system_fingerprint": "fp_emulator",
        },
        usage,
    )


def failure(endpoint: str, body: dict[str, Any], *, selector: int) -> Answer:
    """A non-2xx answer (400, 429 or 500, picked by `selector`) with the API's error body."""
    kind = selector % 3
    if kind == 0:
        param = "input" if endpoint in ("/v1/responses", "/v1/embeddings") else "messages"
        error = {
            "message": "This model's maximum context length is 128000 tokens. However, your "
            f"messages resulted in {128_000 + _input_tokens(endpoint, body)} tokens. "
            "Please reduce the length of the messages.",
            "type": "invalid_request_error",
            "param": param,
            "code": "context_length_exceeded",
        }
        return Answer(400, {"error": error}, TokenUsage())
    if kind == 1:
        error = {
            "message": "You've exceeded the 1000 request/min rate limit, please slow down and "
            "try again.",
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
        return Answer(429, {"error": error}, TokenUsage())
    error = {
        "message": "The server had an error processing your request. Sorry about that! You can "
        "retry your request, or contact us through our help center at help.openai.com if you "
        "keep seeing this error.",
        "type": "server_error",
        "param": None,
        "code": None,
    }
    return Answer(500, {"error": error}, TokenUsage())


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


def _reply(endpoint: str, body: dict[str, Any]) -> str:
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


def _output_budget(endpoint: str, body: dict[str, Any]) -> tuple[int | None, int]:
    """The output-token limit the request sets (None: none) and the reasoning tokens it spends."""
    if endpoint == "/v1/responses":
        names = ("max_output_tokens",)
        reasoning = body.get("reasoning")
        effort = reasoning.get("effort") if isinstance(reasoning, dict) else None
    else:
        names = ("max_completion_tokens", "max_tokens")
        effort = body.get("reasoning_effort")
    limit = next((body[n] for n in names if _is_int(body.get(n))), None)
    if limit is None and endpoint == "/v1/completions":
        limit = _LEGACY_COMPLETION_DEFAULT_MAX_TOKENS
    spent = _REASONING_EFFORT_TOKENS.get(effort, 0) if isinstance(effort, str) else 0
    return limit, spent


def cut_to_tokens(text: str, limit: int | None) -> tuple[str, bool]:
    """`text` cut after `limit` tokens (as `count_tokens` counts), and whether it was cut."""
    if limit is None:
        return text, False
    tokens = list(_TOKEN.finditer(text))
    if len(tokens) <= limit:
        return text, False
    return (text[: tokens[limit - 1].end()] if limit > 0 else ""), True


def _input_tokens(endpoint: str, body: dict[str, Any]) -> int:
    if endpoint == "/v1/chat/completions":
        messages = [m for m in _list(body.get("messages")) if isinstance(m, dict)]
        # The cookbook's estimate: 3 per message, the content, 3 to prime the reply.
        return 3 + sum(3 + count_tokens(_content_text(m.get("content"))) for m in messages)
    if endpoint == "/v1/responses":
        given = body.get("input")
        instructions = body.get("instructions")
        extra = count_tokens(instructions) if isinstance(instructions, str) else 0
        if isinstance(given, str):
            return 3 + count_tokens(given) + extra
        items = [m for m in _list(given) if isinstance(m, dict)]
        return 3 + extra + sum(3 + count_tokens(_content_text(m.get("content"))) for m in items)
    return count_tokens(prompt_text(endpoint, body))


def _response_body(
    body: dict[str, Any],
    model: str,
    text: str,
    truncated: bool,
    usage: TokenUsage,
    key: str,
    created: int,
) -> dict[str, Any]:
    status = "incomplete" if truncated else "completed"
    message = {
        "type": "message",
        "id": f"msg_{_hex(key + 'msg', 48)}",
        "status": status,
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
    }
    given = body.get("reasoning")
    reasoning: dict[str, Any] = given if isinstance(given, dict) else {}
    output: list[dict[str, Any]] = []
    if usage.reasoning_tokens:
        output.append({"type": "reasoning", "id": f"rs_{_hex(key + 'rs', 48)}", "summary": []})
    output.append(message)
    text_config = body.get("text") if isinstance(body.get("text"), dict) else None
    return {
        "id": f"resp_{_hex(key, 48)}",
        "object": "response",
        "created_at": created,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if truncated else None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": reasoning.get("effort"), "summary": None},
        "service_tier": "default",
        "store": True,
        "temperature": body.get("temperature", 1.0),
        "text": text_config or {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": {
            "input_tokens": usage.input_tokens,
            "input_tokens_details": {"cached_tokens": usage.cached_tokens, "cache_write_tokens": 0},
            "output_tokens": usage.output_tokens,
            "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
            "total_tokens": usage.input_tokens + usage.output_tokens,
        },
        "user": None,
        "metadata": {},
    }


def _chat_usage(usage: TokenUsage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": {
            "cached_tokens": usage.cached_tokens,
            "cache_write_tokens": 0,
            "audio_tokens": 0,
        },
        "completion_tokens_details": {
            "reasoning_tokens": usage.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _embeddings(body: dict[str, Any], dims: int) -> Answer:
    wanted = body.get("dimensions")
    size = wanted if isinstance(wanted, int) and _is_int(wanted) and 0 < wanted <= 4096 else dims
    inputs = _inputs(body)
    data = [
        {"object": "embedding", "index": i, "embedding": embedding_vector(text, size)}
        for i, text in enumerate(inputs)
    ]
    tokens = sum(count_tokens(text) for text in inputs)
    usage = TokenUsage(input_tokens=tokens)
    return Answer(
        200,
        {
            "object": "list",
            "data": data,
            "model": str(body.get("model")),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        },
        usage,
    )


def embedding_vector(text: str, size: int) -> list[float]:
    """A unit vector of `size` floats derived from `text` alone."""
    values: list[float] = []
    counter = 0
    while len(values) < size:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        values.extend(v / 2**31 for v in struct.unpack(">8i", digest))
        counter += 1
    values = values[:size]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


_MODERATION_CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/instructions",
    "self-harm/intent",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)


def _moderations(body: dict[str, Any], key: str) -> Answer:
    results = [
        {
            "flagged": False,
            "categories": dict.fromkeys(_MODERATION_CATEGORIES, False),
            "category_scores": dict.fromkeys(_MODERATION_CATEGORIES, 0.0),
        }
        for _ in _inputs(body)
    ]
    tokens = sum(count_tokens(text) for text in _inputs(body))
    return Answer(
        200,
        {"id": f"modr-{_hex(key, 29)}", "model": str(body.get("model")), "results": results},
        TokenUsage(input_tokens=tokens),
    )


def _inputs(body: dict[str, Any]) -> list[str]:
    given = body.get("input")
    if isinstance(given, str):
        return [given]
    items = _list(given)
    if items and all(_is_int(x) for x in items):
        return [" ".join(str(x) for x in items)]  # one pre-tokenized input
    return [x if isinstance(x, str) else json.dumps(x) for x in items]


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for part in _list(content):
        if isinstance(part, str):
            parts.append(part)
        elif isinstance(part, dict) and isinstance(part.get("text"), str):
            parts.append(part["text"])
    return " ".join(parts)


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _hex(key: str, length: int) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:length]
