"""Synchronous chat: one typed request in, one typed result out, whatever the provider.

The vocabulary (ChatRequest, ChatResult, the ChatClient Protocol, the chat errors ...) is the one
the clients in `adapters/` speak, defined in `adapters.chat_types` and re-exported here, so
`from ledger.chat.types import ChatRequest` keeps working. What stays on the ledger side is the
context-window check, which counts tokens with tiktoken (`ledger.usage.tokens`): `ContextGuard`,
handed to each client by `ledger.config.chat_client` as its `context_check`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from adapters.chat_types import (
    CONNECT_TIMEOUT,
    DEFAULT_TIMEOUT,
    INVALID_JSON_EXCERPT,
    TRUNCATED_REASONS,
    ChatClient,
    ChatError,
    ChatRequest,
    ChatResult,
    ChatUsage,
    ContextCheck,
    EmbeddingResult,
    InvalidJSONAnswer,
    JsonSchemaFormat,
    ProviderStatusError,
    ProviderUnreachable,
    parse_json_answer,
)
from adapters.sdk_errors import error_message, sdk_errors
from ledger.errors import InputError
from ledger.usage.checks import CHAT, check_request
from ledger.usage.tokens import TokenCounters

__all__ = [
    "CONNECT_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "INVALID_JSON_EXCERPT",
    "TRUNCATED_REASONS",
    "ChatClient",
    "ChatError",
    "ChatRequest",
    "ChatResult",
    "ChatUsage",
    "ContextCheck",
    "ContextGuard",
    "ContextTooLong",
    "EmbeddingResult",
    "InvalidJSONAnswer",
    "JsonSchemaFormat",
    "ProviderStatusError",
    "ProviderUnreachable",
    "error_message",
    "parse_json_answer",
    "sdk_errors",
]


class ContextTooLong(InputError):
    """The request cannot fit the model's context window; it was not sent."""

    def __init__(self, model: str, estimated: int, output: int, limit: int) -> None:
        super().__init__(
            f"the request does not fit {model}'s context of {limit} tokens "
            f"(max_context_tokens): about {estimated} input tokens + {output} output tokens; "
            "nothing was sent"
        )
        self.estimated = estimated
        self.limit = limit


@dataclass
class ContextGuard:
    """Counts a request's input tokens with tiktoken and refuses one over its model's limit, or
    one setting a sampling parameter its model refuses (the model table's rules, as the build
    applies them)."""

    #: Model name -> the most tokens (input plus the output limit) its context holds.
    limits: Mapping[str, int] = field(default_factory=dict)
    counters: TokenCounters = field(default_factory=TokenCounters)
    #: The provider the requests go to ("openai", "anthropic"); None: sampling is not checked.
    provider: str | None = None

    def check(self, request: ChatRequest, model: str) -> int:
        """The request's estimated input tokens; ContextTooLong when it cannot fit,
        InputError when the model refuses its sampling parameters (a `ContextCheck`)."""
        sampling = request.sampling()
        if sampling and self.provider is not None:
            for found in check_request(model, sampling, provider=self.provider, endpoint=CHAT):
                if not found.warning:
                    raise InputError(f"{found}; nothing was sent")
        estimated = self.counters.for_model(model).messages(request.conversation())
        limit = self.limits.get(model)
        output = request.max_output_tokens or 0
        if limit is not None and estimated + output > limit:
            raise ContextTooLong(model, estimated, output, limit)
        return estimated
