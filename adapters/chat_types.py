"""Synchronous chat in the provider-neutral words the clients and ledger share: one typed request
in, one typed result out, whatever the provider.

The clients are `adapters/openai/chat.py` (OpenAI's chat completions and responses, and any
OpenAI-compatible server such as Ollama) and `adapters/anthropic/chat.py` (Anthropic's messages);
`ledger.config.chat_client` builds the right one from the settings, and `ledger.chat.types`
re-exports this vocabulary for users. Also here: the endpoint names (`--endpoint chat` ...), the
structured-output schema, the chat errors and the reading of a JSON answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ledger.errors import InputError, ProviderError

#: Seconds a synchronous call may take in all, and to connect. The SDKs' 600 s default is meant
#: for batch uploads; a chat answer that takes minutes is better reported than waited for.
DEFAULT_TIMEOUT = 60.0
CONNECT_TIMEOUT = 5.0

#: How much of an unparsable answer an error shows.
INVALID_JSON_EXCERPT = 200

#: Finish reasons (in each API's own words) that mean the answer was cut at its output limit.
TRUNCATED_REASONS = frozenset({"length", "max_output_tokens", "max_tokens"})

#: Endpoint names accepted by `--endpoint`, and the URL each stands for.
ENDPOINTS: dict[str, str] = {
    "responses": "/v1/responses",
    "chat": "/v1/chat/completions",
    "embeddings": "/v1/embeddings",
    # The rest of what the openai SDK's `batches.create(endpoint=...)` Literal lists for text
    # (openai 3.x `types/batch_create_params.py`; images and videos are not built).
    "completions": "/v1/completions",
    "moderations": "/v1/moderations",
}
RESPONSES, CHAT, EMBEDDINGS = ENDPOINTS["responses"], ENDPOINTS["chat"], ENDPOINTS["embeddings"]
COMPLETIONS, MODERATIONS = ENDPOINTS["completions"], ENDPOINTS["moderations"]


def resolve_endpoint(value: str) -> str:
    """The endpoint URL for a name (`chat`) or URL (`/v1/chat/completions`)."""
    if value in ENDPOINTS:
        return ENDPOINTS[value]
    if value in ENDPOINTS.values():
        return value
    names = ", ".join(ENDPOINTS)
    raise InputError(f'--endpoint: unknown endpoint "{value}" (choose {names})')


#: What a JSON-mode request is told when it does not say "json" itself: OpenAI refuses JSON mode
#: without the word, and Anthropic has no JSON mode without a schema.
JSON_INSTRUCTION = "Answer with one JSON object and nothing else: no prose, no code fence."


@dataclass(frozen=True)
class JsonSchemaFormat:
    """Structured output: the schema the model's JSON must follow."""

    name: str
    schema: dict[str, Any]
    strict: bool = True
    description: str | None = None


@dataclass(frozen=True)
class ChatRequest:
    """One synchronous chat call, in the provider-neutral words of the ledger."""

    #: The conversation: `{"role": "user" | "assistant" | "system", "content": ...}` items.
    messages: Sequence[Mapping[str, Any]]
    #: The model; None: the provider's configured model.
    model: str | None = None
    #: A system prompt, sent the way the endpoint takes one.
    system: str | None = None
    max_output_tokens: int | None = None
    temperature: float | None = None
    #: Nucleus sampling; some models take it or temperature, not both (the model table says).
    top_p: float | None = None
    #: Ask for a JSON object (natively where the endpoint has a JSON mode) and parse the answer.
    json_mode: bool = False
    #: Ask for JSON following this schema (structured output); implies parsing the answer.
    json_schema: JsonSchemaFormat | None = None

    @classmethod
    def prompt(cls, text: str, **options: Any) -> ChatRequest:
        """A request of one user message."""
        return cls(messages=[{"role": "user", "content": text}], **options)

    @property
    def wants_json(self) -> bool:
        """Whether the answer must be JSON."""
        return self.json_mode or self.json_schema is not None

    def conversation(self) -> list[dict[str, Any]]:
        """The system prompt (if any) as a first message, then the messages."""
        head = [{"role": "system", "content": self.system}] if self.system else []
        return head + [dict(message) for message in self.messages]

    def mentions_json(self) -> bool:
        """Whether the system prompt or a message says "json" (OpenAI refuses JSON mode
        without the word; it answers 400)."""
        texts = [self.system or ""] + [str(m.get("content", "")) for m in self.messages]
        return any("json" in text.lower() for text in texts)

    def check(self) -> None:
        """Refuse a request no provider could take, before anything is sent."""
        if not self.messages:
            raise InputError("a chat request needs at least one message")
        for index, message in enumerate(self.messages):
            if not isinstance(message, Mapping) or "role" not in message:
                raise InputError(f"message {index}: needs a role and a content")
            if "content" not in message:
                raise InputError(f"message {index}: needs a role and a content")
        if self.max_output_tokens is not None and self.max_output_tokens < 1:
            raise InputError("max_output_tokens: must be at least 1")
        if self.temperature is not None and not 0 <= self.temperature <= 2:
            raise InputError("temperature: must be from 0 to 2")
        if self.top_p is not None and not 0 <= self.top_p <= 1:
            raise InputError("top_p: must be from 0 to 1")

    def sampling(self) -> dict[str, float]:
        """The sampling parameters the request sets, by their API names."""
        given = {"temperature": self.temperature, "top_p": self.top_p}
        return {name: value for name, value in given.items() if value is not None}


#: Checked before a request is sent, with the model it goes to: returns the estimated input
#: tokens, or raises to refuse the request (ledger's `ContextGuard.check`, which counts with
#: tiktoken, is the one the settings give).
ContextCheck = Callable[[ChatRequest, str], int]


@dataclass(frozen=True)
class ChatUsage:
    """Tokens the provider counted for one call."""

    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True)
class ChatResult:
    """One synchronous answer."""

    #: The answer's text ("" when there is none, e.g. a refusal).
    text: str
    #: The parsed answer when JSON was asked for, else None.
    json: Any
    usage: ChatUsage
    #: Why the answer ended, in the endpoint's own words: `stop`, `length` (chat),
    #: `max_output_tokens` (responses), `end_turn`, `max_tokens` (Anthropic) ...
    finish_reason: str | None
    #: The provider's id of this request (for its support), from the response headers.
    request_id: str | None
    #: The model that answered, as the provider names it.
    model: str
    #: The provider's name in the ledger's settings.
    provider: str
    #: The model's refusal, when it said one instead of answering.
    refusal: str | None = None
    #: Input tokens as the context check estimated them before sending (None: no check).
    estimated_input_tokens: int | None = None

    @property
    def truncated(self) -> bool:
        """The answer was cut at its output limit (whatever the endpoint calls that)."""
        return self.finish_reason in TRUNCATED_REASONS


@dataclass(frozen=True)
class EmbeddingResult:
    """One synchronous embeddings answer."""

    vectors: list[list[float]]
    input_tokens: int
    model: str
    request_id: str | None = None


class ChatClient(Protocol):
    """What a synchronous chat client offers."""

    #: The provider's name in the ledger's settings.
    provider: str
    #: Where requests go (None: the SDK's default).
    base_url: str | None

    @property
    def url(self) -> str:
        """The full URL chat requests are posted to."""
        ...

    def chat(self, request: ChatRequest) -> ChatResult:
        """Send one request and return its answer; raises ChatError, or what the context check
        raises (`ledger.chat.types.ContextTooLong`)."""
        ...


class ChatError(ProviderError):
    """A synchronous call gave no usable answer. Messages never carry the API key."""


class ProviderStatusError(ChatError):
    """The provider answered a non-2xx status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"provider answered {status}: {message}")
        self.status = status


class ProviderUnreachable(ChatError):
    """No answer came: the connection was refused, dropped or timed out."""


class InvalidJSONAnswer(ChatError):
    """JSON was asked for and the answer is not JSON."""

    def __init__(self, text: str, finish_reason: str | None, problem: str) -> None:
        cut = (
            " (the answer was cut at its output limit)"
            if finish_reason in TRUNCATED_REASONS
            else ""
        )
        super().__init__(
            f"the model returned invalid JSON{cut}: {problem}; it begins "
            f"{text[:INVALID_JSON_EXCERPT]!r}"
        )
        self.text = text


def parse_json_answer(text: str, finish_reason: str | None) -> Any:
    """The JSON value of an answer (a Markdown code fence around it is allowed);
    InvalidJSONAnswer when it is not JSON."""
    candidate = text.strip()
    if candidate.startswith("```") and candidate.endswith("```") and len(candidate) > 6:
        candidate = candidate[3:-3].removeprefix("json").strip()
    try:
        return json.loads(candidate)
    except ValueError as error:
        raise InvalidJSONAnswer(text, finish_reason, str(error).split(":")[0]) from None
