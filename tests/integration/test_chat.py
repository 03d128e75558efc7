"""Synchronous chat (`ledger.chat.types`, the OpenAI and Anthropic clients) against the
emulator: answers, JSON mode, HTTP errors, invalid JSON, the context check and an unreachable
server."""

from __future__ import annotations

import json
import socket

import pytest
from support.emulator_support import running

from adapters.anthropic.chat import AnthropicChatClient
from adapters.openai.chat import OpenAIChatClient
from ledger.build.bodies import JsonSchemaFormat
from ledger.chat.types import (
    ChatClient,
    ChatRequest,
    ContextGuard,
    ContextTooLong,
    InvalidJSONAnswer,
    ProviderStatusError,
    ProviderUnreachable,
)
from ledger.emulator import Emulator, answer_text, count_tokens
from ledger.emulator.sync_routes import INVALID_JSON_PREFIX
from ledger.errors import InputError

KEY = "sk-test-LEAKCANARY0123456789"
QUESTION = "What is the capital of France?"
SCHEMA = JsonSchemaFormat(
    name="city",
    schema={
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
)
ENDPOINTS = ["chat", "responses", "messages"]


def client_for(
    emu: Emulator | str,
    endpoint: str,
    *,
    key: str = KEY,
    max_context_tokens: dict[str, int] | None = None,
    checked: bool = True,
) -> ChatClient:
    """A client of `endpoint` (chat, responses or Anthropic's messages), no SDK retries, with
    the tiktoken context check ledger.config gives every client."""
    root = emu if isinstance(emu, str) else emu.url
    provider = "anthropic" if endpoint == "messages" else "openai"
    guard = ContextGuard(max_context_tokens or {}, provider=provider)
    context_check = guard.check if checked else None
    if endpoint == "messages":
        return AnthropicChatClient(
            api_key=key,
            base_url=root,
            model="claude-haiku-4-5",
            context_check=context_check,
            max_retries=0,
            timeout=10.0,
        )
    return OpenAIChatClient(
        api_key=key,
        base_url=root + "/v1",
        endpoint=endpoint,
        model="gpt-4o-mini",
        context_check=context_check,
        max_retries=0,
        timeout=10.0,
    )


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_plain_answer_has_text_usage_finish_reason_and_request_id(endpoint: str) -> None:
    """Each endpoint answers the echo, with usage, its finish word and the request id."""
    with running() as emu:
        result = client_for(emu, endpoint).chat(ChatRequest.prompt(QUESTION, system="Be brief."))
        assert result.text == answer_text(QUESTION)
        assert result.json is None
        assert result.usage.output_tokens == count_tokens(answer_text(QUESTION)) == 9
        assert result.usage.input_tokens > count_tokens(QUESTION)
        assert result.finish_reason == ("end_turn" if endpoint == "messages" else "stop")
        assert not result.truncated
        assert result.request_id is not None and result.request_id.startswith("req_")
        # OpenAI answers with the dated snapshot the alias points at.
        assert result.model in ("gpt-4o-mini-2024-07-18", "claude-haiku-4-5")
        assert result.estimated_input_tokens is not None and result.estimated_input_tokens > 7
        route = {"chat": "chat_completions", "responses": "responses"}.get(endpoint, endpoint)
        assert emu.stats()["requests"][route] == 1


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_cut_answer_is_marked_truncated(endpoint: str) -> None:
    """A small max_output_tokens cuts the answer; the result says so in the endpoint's words."""
    with running() as emu:
        result = client_for(emu, endpoint).chat(ChatRequest.prompt(QUESTION, max_output_tokens=2))
        assert result.truncated
        assert (
            result.finish_reason
            == {
                "chat": "length",
                "responses": "max_output_tokens",
                "messages": "max_tokens",
            }[endpoint]
        )
        assert result.text == "Echo:"


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_json_mode_answers_are_parsed(endpoint: str) -> None:
    """json_mode gives a parsed object (natively, or by instruction on Anthropic)."""
    with running() as emu:
        result = client_for(emu, endpoint).chat(ChatRequest.prompt(QUESTION, json_mode=True))
        assert result.json == {"answer": answer_text(QUESTION)}
        assert json.loads(result.text) == result.json


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_json_schema_answer_is_parsed(endpoint: str) -> None:
    """A json_schema is sent natively on every endpoint and its instance comes back parsed."""
    with running() as emu:
        result = client_for(emu, endpoint).chat(ChatRequest.prompt(QUESTION, json_schema=SCHEMA))
        assert result.json == {"city": answer_text(QUESTION)}


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_invalid_json_is_an_error_showing_the_first_200_characters(endpoint: str) -> None:
    """When JSON was asked and the text does not parse: "the model returned invalid JSON" and
    the text's first 200 characters, no more."""
    long_question = " ".join(f"word{i}" for i in range(60))
    with running(sync_invalid_json=True) as emu:
        with pytest.raises(InvalidJSONAnswer) as caught:
            client_for(emu, endpoint).chat(ChatRequest.prompt(long_question, json_mode=True))
        text = caught.value.text
        assert text.startswith(INVALID_JSON_PREFIX) and len(text) > 200
        message = str(caught.value)
        assert message.startswith("the model returned invalid JSON")
        assert repr(text[:200]) in message
        assert repr(text[:201]) not in message


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_refused_key_is_an_error_naming_the_status_without_the_key(endpoint: str) -> None:
    """A 401 becomes "provider answered 401: ..." and the key is nowhere in the message."""
    with running(api_key="sk-the-right-one") as emu:
        with pytest.raises(ProviderStatusError) as caught:
            client_for(emu, endpoint).chat(ChatRequest.prompt(QUESTION))
        assert caught.value.status == 401
        assert str(caught.value).startswith("provider answered 401: ")
        assert KEY not in str(caught.value) and "LEAKCANARY" not in str(caught.value)


@pytest.mark.parametrize(
    ("endpoint", "route"), [("chat", "chat_completions"), ("messages", "messages")]
)
def test_server_errors_and_rate_limits_name_their_status(endpoint: str, route: str) -> None:
    """A 500 and a 429 (with no retries left) name their status and the provider's message."""
    faults = [
        {"kind": "http_500", "route": route, "times": 1},
        {"kind": "http_429", "route": route, "every": 2, "times": 1, "seconds": 0},
    ]
    with running(faults=faults) as emu:
        client = client_for(emu, endpoint)
        with pytest.raises(ProviderStatusError, match=r"^provider answered 500: The server had"):
            client.chat(ChatRequest.prompt(QUESTION))
        with pytest.raises(ProviderStatusError, match=r"^provider answered 429: Rate limit"):
            client.chat(ChatRequest.prompt(QUESTION))
        assert client.chat(ChatRequest.prompt(QUESTION)).text == answer_text(QUESTION)


def test_the_sdk_default_retries_get_past_a_server_error() -> None:
    """With the SDK's default retries a single 500 is retried and the call succeeds."""
    with running(faults=[{"kind": "http_500", "route": "chat_completions", "times": 1}]) as emu:
        client = OpenAIChatClient(api_key=KEY, base_url=emu.base_url, model="gpt-4o-mini")
        assert client.chat(ChatRequest.prompt(QUESTION)).text == answer_text(QUESTION)
        assert emu.stats()["requests"]["chat_completions"] == 2


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_request_over_max_context_tokens_is_refused_before_any_call(endpoint: str) -> None:
    """Estimated input plus max_output_tokens over the model's limit: refused, nothing sent."""
    limits = {"gpt-4o-mini": 50, "claude-haiku-4-5": 50}
    with running() as emu:
        client = client_for(emu, endpoint, max_context_tokens=limits)
        fits = client.chat(ChatRequest.prompt("hello", max_output_tokens=20))
        assert fits.estimated_input_tokens is not None and fits.estimated_input_tokens + 20 <= 50
        before = emu.stats()["requests"]
        with pytest.raises(ContextTooLong) as caught:
            client.chat(ChatRequest.prompt("hello " * 60, max_output_tokens=20))
        assert emu.stats()["requests"] == before
        assert "nothing was sent" in str(caught.value) and "50 tokens" in str(caught.value)
        with pytest.raises(ContextTooLong):
            client.chat(ChatRequest.prompt("hello", max_output_tokens=45))
        assert emu.stats()["requests"] == before


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_client_without_a_context_check_sends_as_is_with_no_estimate(endpoint: str) -> None:
    """The context check is handed in by the caller (ledger.config gives the tiktoken one): a
    client built without one sends the request and reports no estimate."""
    with running() as emu:
        result = client_for(emu, endpoint, checked=False).chat(ChatRequest.prompt(QUESTION))
        assert result.text == answer_text(QUESTION)
        assert result.estimated_input_tokens is None


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_closed_port_is_unreachable(endpoint: str) -> None:
    """Nothing listening: ProviderUnreachable naming where it tried."""
    root = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(ProviderUnreachable, match=r"^cannot reach http://127\.0\.0\.1:\d+"):
        client_for(root, endpoint).chat(ChatRequest.prompt(QUESTION))


def test_embeddings_through_the_openai_client() -> None:
    """embed() returns one vector per text, in order, with the token count."""
    with running(embedding_dimensions=3) as emu:
        client = OpenAIChatClient(api_key=KEY, base_url=emu.base_url, max_retries=0)
        answer = client.embed(["one", "two three"], model="text-embedding-3-small")
        assert [len(v) for v in answer.vectors] == [3, 3]
        assert answer.input_tokens == 3 and answer.model == "text-embedding-3-small"


def test_anthropic_sampling_travels_in_extra_body_to_models_that_take_it() -> None:
    """The anthropic 2.x SDK has no temperature keyword, the API still does: it is sent in
    `extra_body`, and the emulator (which refuses per model as the API does) sees it."""
    with running() as emu:
        client = client_for(emu, "messages")
        result = client.chat(ChatRequest.prompt(QUESTION, temperature=0.5))
        assert result.text == answer_text(QUESTION)
        # Unchecked, the pair reaches the emulator, which refuses it as Haiku 4.5 does: so both
        # parameters were on the wire.
        unchecked = client_for(emu, "messages", checked=False)
        with pytest.raises(ProviderStatusError, match="cannot both be specified"):
            unchecked.chat(ChatRequest.prompt(QUESTION, temperature=0.5, top_p=0.9))
        assert emu.stats()["requests"]["messages"] == 2


def test_a_sampling_parameter_the_model_refuses_is_refused_before_sending() -> None:
    """The model table's rules, as the build applies them: temperature with top_p on Haiku 4.5,
    temperature on Opus 4.7, temperature on gpt-5: one line naming model and parameter, and
    nothing sent."""
    with running() as emu:
        claude = client_for(emu, "messages")
        with pytest.raises(InputError, match="model claude-haiku-4-5: temperature, top_p"):
            claude.chat(ChatRequest.prompt(QUESTION, temperature=0.5, top_p=0.9))
        with pytest.raises(InputError, match="model claude-opus-4-7: temperature: deprecated"):
            claude.chat(ChatRequest.prompt(QUESTION, model="claude-opus-4-7", temperature=0.5))
        with pytest.raises(InputError, match="temperature: Anthropic takes 0 to 1"):
            claude.chat(ChatRequest.prompt(QUESTION, temperature=1.5))
        with pytest.raises(InputError, match="model gpt-5: temperature"):
            client_for(emu, "chat").chat(
                ChatRequest.prompt(QUESTION, model="gpt-5", temperature=0.2)
            )
        assert emu.stats()["requests"].get("messages", 0) == 0
        assert emu.stats()["requests"].get("chat_completions", 0) == 0
        plain = client_for(emu, "chat").chat(ChatRequest.prompt(QUESTION, temperature=0.5))
        assert plain.text == answer_text(QUESTION)
