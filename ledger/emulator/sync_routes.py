"""The synchronous routes: OpenAI's `/v1/chat/completions`, `/v1/responses`, `/v1/embeddings`
and Anthropic's `/v1/messages`, answered at once with the bodies a batch request gets.

The answers come from `answers.py`, so a synchronous call and the same request in a batch get
the same text and usage. `/v1/messages` speaks Anthropic's dialect: an `x-api-key` header, a
`Message` body, and errors shaped `{"type": "error", "error": {"type", "message"}}`. The server
hooks these in beside the batch routes (`match_sync_route`, `SyncApi.handle`); fault rules name
them like any other route.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from ledger.emulator.answers import answer
from ledger.emulator.config import SYNC_ROUTE_NAMES, EmulatorConfig
from ledger.emulator.echo import count_tokens, json_format
from ledger.emulator.errors import ApiError, bad_request, missing_parameter
from ledger.emulator.model_rules import (
    anthropic_input_tokens,
    anthropic_problem,
    openai_rejection,
)
from ledger.emulator.routes import Request, Response, json_response

#: Path -> (route name, the endpoint whose answers it gives). Every route is a POST.
_SYNC_ROUTES: dict[str, tuple[str, str]] = {
    "/v1/chat/completions": ("chat_completions", "/v1/chat/completions"),
    "/v1/responses": ("responses", "/v1/responses"),
    "/v1/embeddings": ("embeddings", "/v1/embeddings"),
    "/v1/messages": ("messages", "/v1/chat/completions"),
    "/v1/messages/count_tokens": ("count_message_tokens", "/v1/messages/count_tokens"),
}
_ENDPOINT_OF_ROUTE = dict(_SYNC_ROUTES.values())
assert sorted(_ENDPOINT_OF_ROUTE) == sorted(SYNC_ROUTE_NAMES)

#: The fields each OpenAI route needs (Anthropic's are checked in `_messages`).
_REQUIRED = {
    "chat_completions": ("model", "messages"),
    "responses": ("model", "input"),
    "embeddings": ("model", "input"),
}

#: The fields `/v1/messages/count_tokens` takes (docs.anthropic.com/en/api/messages-count-tokens).
_COUNT_TOKENS_FIELDS = frozenset(
    {
        "model",
        "messages",
        "system",
        "tools",
        "tool_choice",
        "thinking",
        "mcp_servers",
        "output_config",
        "output_format",
        "context_management",
    }
)

#: Anthropic's error `type` for each status it answers.
_ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}

#: What an `invalid JSON` answer starts with: prose before the JSON, as a chatty model writes.
INVALID_JSON_PREFIX = "Sure! Here is the JSON you asked for: "


def match_sync_route(method: str, path: str) -> tuple[str, None] | None:
    """The route name for a synchronous request, or None when it is not one."""
    found = _SYNC_ROUTES.get(path)
    if found is None or method != "POST":
        return None
    return found[0], None


def authenticate_anthropic(config: EmulatorConfig, headers: Mapping[str, str]) -> None:
    """Anthropic's key check: the `x-api-key` header, or a bearer token (the anthropic 2.x SDK
    sends its key that way). Any key passes unless the emulator has one."""
    key = headers.get("x-api-key")
    if not key:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        key = token.strip() if scheme.lower() == "bearer" else None
    if not key:
        raise ApiError(401, "x-api-key header is required")
    if config.api_key is not None and key != config.api_key:
        raise ApiError(401, "invalid x-api-key")


@contextmanager
def error_dialect(route: str) -> Iterator[None]:
    """Re-word an error raised under the Anthropic route in Anthropic's error JSON."""
    try:
        yield
    except AnthropicError:
        raise
    except ApiError as error:
        if route != "messages":
            raise
        raise AnthropicError(error.status, error.message, headers=error.headers) from None


class AnthropicError(ApiError):
    """An error answer in Anthropic's shape: `{"type": "error", "error": {"type", "message"}}`."""

    def body(self) -> dict[str, Any]:
        kind = _ANTHROPIC_ERROR_TYPES.get(self.status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": self.message}}


class SyncApi:
    """The synchronous routes under the current config."""

    def __init__(
        self, config: Callable[[], EmulatorConfig], clock: Callable[[], float] = time.time
    ) -> None:
        self._config = config
        self._clock = clock

    def handle(self, route: str, request: Request) -> Response:
        """Answer one request to a synchronous route."""
        body = _json_object(request)
        if route == "messages":
            return self._messages(body)
        if route == "count_message_tokens":
            return self._count_message_tokens(body)
        for name in _REQUIRED[route]:
            if body.get(name) is None:
                raise missing_parameter(name)
        if not isinstance(body.get("model"), str):
            raise bad_request("Invalid type for 'model': expected a string.", param="model")
        if body.get("stream") is True:
            raise bad_request("The emulator does not stream answers.", param="stream")
        endpoint = _ENDPOINT_OF_ROUTE[route]
        refused = openai_rejection(endpoint, body)
        if refused is not None:
            raise refused
        config = self._config()
        given = answer(
            endpoint,
            body,
            key=f"sync-{uuid.uuid4().hex}",
            created=int(self._clock()),
            dims=config.embedding_dimensions,
        ).body
        if config.sync_invalid_json and json_format(endpoint, body) is not None:
            _spoil_openai_json(endpoint, given)
        return json_response(given)

    def _count_message_tokens(self, body: dict[str, Any]) -> Response:
        """Anthropic's token counting: `{"input_tokens": N}` for Messages params without
        `max_tokens`, counted as a `Message` answer's usage counts them."""
        model, messages = body.get("model"), body.get("messages")
        if not isinstance(model, str) or not model:
            raise bad_request("model: Field required")
        if not isinstance(messages, list) or not messages:
            raise bad_request("messages: Field required (at least one message)")
        for key in body:
            if key not in _COUNT_TOKENS_FIELDS:
                raise bad_request(f"{key}: Extra inputs are not permitted")
        return json_response({"input_tokens": anthropic_input_tokens(body)})

    def _messages(self, body: dict[str, Any]) -> Response:
        """Anthropic's Messages API, answered from the equivalent chat request."""
        model, max_tokens = body.get("model"), body.get("max_tokens")
        messages = body.get("messages")
        if not isinstance(model, str) or not model:
            raise bad_request("model: Field required")
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            raise bad_request("max_tokens: Field required (an integer of at least 1)")
        if not isinstance(messages, list) or not messages:
            raise bad_request("messages: Field required (at least one message)")
        for index, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
                raise bad_request(f"messages.{index}.role: Input should be 'user' or 'assistant'")
        if body.get("stream") is True:
            raise bad_request("stream: the emulator does not stream answers")
        refused = anthropic_problem(body)
        if refused is not None:
            raise bad_request(refused)
        system = _system_text(body.get("system"))
        chat: dict[str, Any] = {
            "model": model,
            "messages": ([{"role": "system", "content": system}] if system else []) + messages,
            "max_completion_tokens": max_tokens,
        }
        output_config = body.get("output_config")
        wanted = output_config.get("format") if isinstance(output_config, dict) else None
        if isinstance(wanted, dict) and wanted.get("type") == "json_schema":
            chat["response_format"] = {
                "type": "json_schema",
                "json_schema": {"schema": wanted.get("schema")},
            }
        elif "JSON" in system:
            # No native JSON mode without a schema: a model told to answer JSON answers JSON.
            chat["response_format"] = {"type": "json_object"}
        key = f"sync-{uuid.uuid4().hex}"
        given = answer("/v1/chat/completions", chat, key=key, created=0, dims=1)
        choice = given.body["choices"][0]
        text = str(choice["message"]["content"])
        if self._config().sync_invalid_json and "response_format" in chat:
            text = _spoiled(text)
        return json_response(
            {
                "id": f"msg_{key[5:29]}",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [{"type": "text", "text": text, "citations": None}],
                "stop_reason": "max_tokens" if choice["finish_reason"] == "length" else "end_turn",
                "stop_sequence": None,
                "usage": {
                    "input_tokens": given.usage.input_tokens,
                    "output_tokens": count_tokens(text),
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                    "service_tier": "standard",
                },
            }
        )


def _spoiled(text: str) -> str:
    """JSON text made invalid the way models spoil it: prose in front, the closing brace lost."""
    return INVALID_JSON_PREFIX + text[:-1]


def _spoil_openai_json(endpoint: str, body: dict[str, Any]) -> None:
    """Make the JSON answer in a chat or responses body invalid, its usage counting the new text."""
    if endpoint == "/v1/chat/completions":
        message = body["choices"][0]["message"]
        message["content"] = _spoiled(message["content"])
        usage = body["usage"]
        usage["completion_tokens"] = count_tokens(message["content"])
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        return
    for item in body["output"]:
        for part in item.get("content") or ():
            if part.get("type") == "output_text":
                part["text"] = _spoiled(part["text"])
                usage = body["usage"]
                usage["output_tokens"] = count_tokens(part["text"])
                usage["total_tokens"] = usage["input_tokens"] + usage["output_tokens"]


def _system_text(system: Any) -> str:
    """Anthropic's `system`: a string, or a list of text blocks."""
    if isinstance(system, str):
        return system
    if isinstance(system, list):
        return " ".join(
            block["text"]
            for block in system
            if isinstance(block, Mapping) and isinstance(block.get("text"), str)
        )
    return ""


def _json_object(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(request.body)
    except (ValueError, RecursionError):
        raise bad_request("We could not parse the JSON body of your request.") from None
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    return body
