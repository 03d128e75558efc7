"""Synchronous chat through the official `anthropic` SDK (2.x, on httpx2): `/v1/messages`.

JSON: with a schema, Anthropic's native structured output (`output_config.format`); without one
there is no native JSON mode, so the system prompt asks for one JSON object and the answer is
parsed (a Markdown fence around it is tolerated). The SDK's own retries stay on (default 2): a
message call creates nothing at the provider, so sending it again cannot duplicate anything.
"""

from __future__ import annotations

from typing import Any, cast

import anthropic
import httpx2

from adapters.chat_types import (
    CONNECT_TIMEOUT,
    DEFAULT_TIMEOUT,
    JSON_INSTRUCTION,
    ChatError,
    ChatRequest,
    ChatResult,
    ChatUsage,
    ContextCheck,
    parse_json_answer,
)
from adapters.http_guard import chat_client
from adapters.sdk_errors import sdk_errors
from ledger.errors import InputError

#: The Messages API needs an output limit; this one is used when the request names none.
DEFAULT_MAX_TOKENS = 1024


class AnthropicChatClient:
    """`adapters.chat_types.ChatClient` over Anthropic's Messages API.

    `context_check` is run on each request, with its model, before it is sent (ledger.config
    passes the tiktoken `ContextGuard` of the provider's `max_context_tokens`); None: no check,
    and no estimate on the result."""

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None = None,
        model: str | None = None,
        provider: str = "anthropic",
        context_check: ContextCheck | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int | None = None,
        http_client: httpx2.Client | None = None,
    ) -> None:
        self.provider = provider
        self.base_url = base_url
        self.model = model
        self._api_key = api_key
        self._context_check = context_check
        self._client = anthropic.Anthropic(
            api_key=api_key,
            base_url=base_url,
            timeout=httpx2.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT)),
            max_retries=anthropic.DEFAULT_MAX_RETRIES if max_retries is None else max_retries,
            # A total deadline per call (not only per socket read) and a capped answer.
            http_client=http_client or chat_client(timeout),
        )

    @property
    def url(self) -> str:
        """The full URL chat requests are posted to."""
        return f"{str(self._client.base_url).rstrip('/')}/v1/messages"

    def chat(self, request: ChatRequest) -> ChatResult:
        """Send one request (after the context check) and return its answer."""
        request.check()
        model = request.model or self.model
        if not model:
            raise InputError(f"no model: name one in the request or in [providers.{self.provider}]")
        estimated = self._context_check(request, model) if self._context_check else None
        where = self.base_url or str(self._client.base_url)
        with sdk_errors(
            anthropic, api_key=self._api_key, where=where, base_error=anthropic.AnthropicError
        ):
            sent = cast(Any, self._client.messages).create(**self._params(request, model))
        text = "".join(block.text for block in sent.content if block.type == "text")
        finish_reason = sent.stop_reason
        if request.wants_json and finish_reason == "refusal":
            raise ChatError(f"the model refused: {text}")
        parsed = parse_json_answer(text, finish_reason) if request.wants_json else None
        return ChatResult(
            text=text,
            json=parsed,
            usage=ChatUsage(sent.usage.input_tokens, sent.usage.output_tokens),
            finish_reason=finish_reason,
            request_id=getattr(sent, "_request_id", None),
            model=str(sent.model),
            provider=self.provider,
            refusal=text if finish_reason == "refusal" else None,
            estimated_input_tokens=estimated,
        )

    def _params(self, request: ChatRequest, model: str) -> dict[str, Any]:
        # Anthropic takes the system prompt beside the turns, never as a turn.
        systems = [request.system] if request.system else []
        systems += [str(m["content"]) for m in request.messages if m.get("role") == "system"]
        if request.json_mode and request.json_schema is None:
            systems.append(JSON_INSTRUCTION)
        params: dict[str, Any] = {
            "model": model,
            "max_tokens": request.max_output_tokens or DEFAULT_MAX_TOKENS,
            "messages": [dict(m) for m in request.messages if m.get("role") != "system"],
        }
        if systems:
            params["system"] = "\n\n".join(systems)
        sampling = request.sampling()
        if sampling:
            if request.temperature is not None and request.temperature > 1:
                raise InputError("temperature: Anthropic takes 0 to 1")
            # The anthropic 2.x SDK dropped the keyword arguments, not the API: the Messages API
            # still takes them on the models that accept them (the context check refuses the
            # others from the model table, before sending), so they travel in `extra_body`.
            params["extra_body"] = sampling
        if request.json_schema is not None:
            params["output_config"] = {
                "format": {"type": "json_schema", "schema": request.json_schema.schema}
            }
        return params
