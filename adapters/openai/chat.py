"""Synchronous chat through the official `openai` SDK: `/v1/chat/completions` or `/v1/responses`
on api.openai.com, and chat completions on any OpenAI-compatible server (Ollama, vLLM, gateways)
by `base_url`; plus `/v1/embeddings`.

Answers are read by `read_body`, the same reader batch results go through, so a synchronous
answer and a batch answer report text, finish reason and usage alike. The SDK's own
retries stay on (default 2): a chat call creates nothing at the provider, so sending it again
after a timeout cannot duplicate anything.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import httpx2
import openai

from adapters.chat_types import (
    CHAT,
    CONNECT_TIMEOUT,
    DEFAULT_TIMEOUT,
    JSON_INSTRUCTION,
    RESPONSES,
    ChatError,
    ChatRequest,
    ChatResult,
    ChatUsage,
    ContextCheck,
    EmbeddingResult,
    parse_json_answer,
    resolve_endpoint,
)
from adapters.http_guard import chat_client
from adapters.openai.lines import read_body
from adapters.sdk_errors import sdk_errors
from ledger.errors import InputError

T = TypeVar("T")


class OpenAIChatClient:
    """`adapters.chat_types.ChatClient` over OpenAI's chat completions or responses endpoint.

    `context_check` is run on each request, with its model, before it is sent (ledger.config
    passes the tiktoken `ContextGuard` of the provider's `max_context_tokens`); None: no check,
    and no estimate on the result."""

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None = None,
        endpoint: str = "chat",
        model: str | None = None,
        provider: str = "openai",
        context_check: ContextCheck | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int | None = None,
        http_client: httpx2.Client | None = None,
    ) -> None:
        self.provider = provider
        self.base_url = base_url
        self.endpoint = resolve_endpoint(endpoint)
        if self.endpoint not in (CHAT, RESPONSES):
            raise InputError(f"chat endpoint: {endpoint!r} is not chat or responses")
        self.model = model
        self._api_key = api_key
        self._context_check = context_check
        # OpenAI's reasoning models take only max_completion_tokens; compatible servers know
        # the older max_tokens best.
        self._limit_name = "max_completion_tokens" if provider == "openai" else "max_tokens"
        self._client = openai.OpenAI(
            api_key=api_key,
            base_url=base_url,
            timeout=httpx2.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT)),
            max_retries=openai.DEFAULT_MAX_RETRIES if max_retries is None else max_retries,
            # A total deadline per call (not only per socket read) and a capped answer.
            http_client=http_client or chat_client(timeout),
        )

    @property
    def url(self) -> str:
        """The full URL chat requests are posted to."""
        path = "responses" if self.endpoint == RESPONSES else "chat/completions"
        return f"{str(self._client.base_url).rstrip('/')}/{path}"

    def chat(self, request: ChatRequest) -> ChatResult:
        """Send one request (after the context check) and return its answer."""
        request.check()
        model = request.model or self.model
        if not model:
            raise InputError(f"no model: name one in the request or in [providers.{self.provider}]")
        estimated = self._context_check(request, model) if self._context_check else None
        if self.endpoint == RESPONSES:
            sent = self._call(
                cast(Any, self._client.responses).create, **self._responses_params(request, model)
            )
        else:
            sent = self._call(
                cast(Any, self._client.chat.completions).create,
                **self._chat_params(request, model),
            )
        body: dict[str, Any] = sent.model_dump(mode="json")
        answer = read_body(body)
        if answer.error is not None:
            raise ChatError(f"the provider reports the answer failed: {answer.error}")
        text = answer.text or ""
        parsed = None
        if request.wants_json:
            if answer.refusal is not None and not text:
                raise ChatError(f"the model refused: {answer.refusal}")
            parsed = parse_json_answer(text, answer.finish_reason)
        usage = answer.usage or {}
        return ChatResult(
            text=text,
            json=parsed,
            usage=ChatUsage(usage.get("input_tokens", 0), usage.get("output_tokens", 0)),
            finish_reason=_own_word(body, answer.finish_reason),
            request_id=getattr(sent, "_request_id", None),
            model=str(body.get("model") or model),
            provider=self.provider,
            refusal=answer.refusal,
            estimated_input_tokens=estimated,
        )

    def embed(self, texts: Sequence[str], *, model: str) -> EmbeddingResult:
        """Embed `texts` with `model` through `/v1/embeddings`."""
        sent = self._call(self._client.embeddings.create, model=model, input=list(texts))
        return EmbeddingResult(
            vectors=[list(item.embedding) for item in sorted(sent.data, key=lambda d: d.index)],
            input_tokens=sent.usage.prompt_tokens,
            model=sent.model,
            request_id=getattr(sent, "_request_id", None),
        )

    def _chat_params(self, request: ChatRequest, model: str) -> dict[str, Any]:
        params: dict[str, Any] = {"model": model, "messages": request.conversation()}
        if request.max_output_tokens is not None:
            params[self._limit_name] = request.max_output_tokens
        params.update(request.sampling())
        if request.json_schema is not None:
            schema = request.json_schema
            params["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": schema.name,
                    "schema": schema.schema,
                    "strict": schema.strict,
                },
            }
        elif request.json_mode:
            params["response_format"] = {"type": "json_object"}
            if not request.mentions_json():
                # The API answers 400 to JSON mode whose messages never say "json".
                params["messages"].insert(0, {"role": "system", "content": JSON_INSTRUCTION})
        return params

    def _responses_params(self, request: ChatRequest, model: str) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": model,
            "input": [dict(message) for message in request.messages],
        }
        if request.system:
            params["instructions"] = request.system
        if request.max_output_tokens is not None:
            params["max_output_tokens"] = request.max_output_tokens
        params.update(request.sampling())
        if request.json_schema is not None:
            schema = request.json_schema
            params["text"] = {
                "format": {
                    "type": "json_schema",
                    "name": schema.name,
                    "schema": schema.schema,
                    "strict": schema.strict,
                }
            }
        elif request.json_mode:
            params["text"] = {"format": {"type": "json_object"}}
            if not request.mentions_json():
                # The API answers 400 to JSON mode whose input never says "json".
                given = params.get("instructions")
                params["instructions"] = (
                    f"{given}\n\n{JSON_INSTRUCTION}" if given else JSON_INSTRUCTION
                )
        return params

    def _call(self, function: Callable[..., T], **params: Any) -> T:
        where = self.base_url or str(self._client.base_url)
        with sdk_errors(openai, api_key=self._api_key, where=where, base_error=openai.OpenAIError):
            return function(**params)


def _own_word(body: dict[str, Any], finish_reason: str | None) -> str | None:
    # A synchronous answer keeps the endpoint's own word (`max_output_tokens`), as ChatResult
    # documents; only batch results speak the schema's `length`.
    details = body.get("incomplete_details") if body.get("status") == "incomplete" else None
    reason = details.get("reason") if isinstance(details, dict) else None
    return reason if isinstance(reason, str) else finish_reason
