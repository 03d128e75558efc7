"""Synchronous chat through the official `google-genai` SDK: `models.generate_content`, and
`models.count_tokens` (the provider's own count, where the provider is reachable).

JSON: a schema goes as `response_json_schema`, JSON mode as `response_mime_type:
application/json`; the answer is parsed. The SDK's retries stay off unless asked: a
generate_content call creates nothing, but the reconciler and `ledger doctor` want a prompt
answer, and an explicit `max_retries` sets `HttpRetryOptions(attempts=max_retries + 1)`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import httpx2
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from adapters.base import scrub
from adapters.chat_types import (
    DEFAULT_TIMEOUT,
    ChatError,
    ChatRequest,
    ChatResult,
    ChatUsage,
    ContextCheck,
    ProviderStatusError,
    ProviderUnreachable,
    parse_json_answer,
)
from adapters.gemini.lines import FINISH_REASONS
from adapters.http_guard import chat_client
from ledger.errors import InputError

#: The API version Batch Mode and these calls use (google-genai 3.6.1 would say v1 for a custom
#: base URL).
API_VERSION = "v1beta"
#: Where the SDK sends calls when no base URL is given (google-genai `_api_client`).
DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"


class GeminiChatClient:
    """`adapters.chat_types.ChatClient` over the Gemini Developer API's generateContent."""

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None = None,
        model: str | None = None,
        provider: str = "gemini",
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
        options = types.HttpOptions(
            base_url=base_url,
            api_version=API_VERSION,
            timeout=int(timeout * 1000),
            retry_options=types.HttpRetryOptions(attempts=(max_retries or 0) + 1),
            # A total deadline per call (not only per socket read) and a capped answer, as the
            # OpenAI and Anthropic chat clients have (adapters.http_guard).
            httpx_client=http_client or chat_client(timeout),
        )
        self._client = genai.Client(api_key=api_key, vertexai=False, http_options=options)

    @property
    def url(self) -> str:
        """The URL chat requests are posted to (the model's generateContent)."""
        root = (self.base_url or DEFAULT_BASE_URL).rstrip("/")
        return f"{root}/{API_VERSION}/models/{self.model or '{model}'}:generateContent"

    def chat(self, request: ChatRequest) -> ChatResult:
        """Send one request (after the context check) and return its answer."""
        request.check()
        model = self._model(request)
        estimated = self._context_check(request, model) if self._context_check else None
        with self._errors():
            sent = self._client.models.generate_content(
                model=model, contents=_contents(request), config=_config(request)
            )
        candidate = sent.candidates[0] if sent.candidates else None
        text = (sent.text or "") if candidate is not None else ""
        word = candidate.finish_reason.value if candidate and candidate.finish_reason else None
        finish_reason = FINISH_REASONS.get(word, word.lower()) if word else None
        refusal = None
        if candidate is None or finish_reason == "content_filter":
            feedback = sent.prompt_feedback
            reason = feedback.block_reason.value if feedback and feedback.block_reason else word
            refusal = f"blocked ({reason})"
            if request.wants_json:
                raise ChatError(f"the model refused: {refusal}")
        parsed = parse_json_answer(text, finish_reason) if request.wants_json else None
        usage = sent.usage_metadata
        output = (
            (usage.candidates_token_count or 0) + (usage.thoughts_token_count or 0) if usage else 0
        )
        return ChatResult(
            text=text,
            json=parsed,
            usage=ChatUsage(usage.prompt_token_count or 0 if usage else 0, output),
            finish_reason=finish_reason,
            request_id=sent.response_id,
            model=sent.model_version or model,
            provider=self.provider,
            refusal=refusal,
            estimated_input_tokens=estimated,
        )

    def count_tokens(self, request: ChatRequest) -> int:
        """The provider's own count of the request's input tokens (`models.count_tokens`);
        ChatError when the provider cannot be reached (then only an estimate is possible)."""
        model = self._model(request)
        with self._errors():
            counted = self._client.models.count_tokens(model=model, contents=_contents(request))
        return counted.total_tokens or 0

    def _model(self, request: ChatRequest) -> str:
        model = request.model or self.model
        if not model:
            raise InputError(f"no model: name one in the request or in [providers.{self.provider}]")
        return model

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except genai_errors.APIError as error:
            message = scrub(str(error.message or error), self._api_key)
            raise ProviderStatusError(error.code, message) from None
        except httpx2.HTTPError as error:
            where = self.base_url or DEFAULT_BASE_URL
            message = scrub(f"cannot reach {where}: {error}", self._api_key)
            raise ProviderUnreachable(message) from None


def _contents(request: ChatRequest) -> list[dict[str, Any]]:
    return [
        {"role": "model" if m.get("role") == "assistant" else "user", "parts": [_part(m)]}
        for m in request.messages
        if m.get("role") not in ("system", "developer")
    ]


def _part(message: Any) -> dict[str, str]:
    content = message.get("content")
    if isinstance(content, list):
        content = "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return {"text": str(content)}


def _config(request: ChatRequest) -> types.GenerateContentConfig:
    systems = [request.system] if request.system else []
    systems += [
        str(m["content"]) for m in request.messages if m.get("role") in ("system", "developer")
    ]
    config: dict[str, Any] = {}
    if systems:
        config["system_instruction"] = "\n\n".join(systems)
    if request.max_output_tokens is not None:
        config["max_output_tokens"] = request.max_output_tokens
    if request.temperature is not None:
        config["temperature"] = request.temperature
    if request.json_schema is not None:
        config["response_mime_type"] = "application/json"
        config["response_json_schema"] = request.json_schema.schema
    elif request.json_mode:
        config["response_mime_type"] = "application/json"
    return types.GenerateContentConfig(**config)
