"""The model capabilities table and build-time refusal: every packaged row is sourced, dated and
sane, and `check_request` refuses what the provider would answer 400 to, naming the parameter."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from ledger.usage.capabilities import SAMPLING_RULES, load_model_table, read_table_file
from ledger.usage.capabilities import packaged_table_file as packaged
from ledger.usage.checks import CHAT, EMBEDDINGS, RESPONSES, Refusal, check_request

TODAY = dt.date(2026, 11, 29)


def chat(text: str = "Hi", **fields: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}], **fields}


def refused(model: str, body: dict[str, Any], *, provider: str = "openai", **kw: Any) -> list[str]:
    """The parameters refused (warnings left out)."""
    endpoint = kw.pop("endpoint", CHAT)
    found = check_request(model, body, provider=provider, endpoint=endpoint, today=TODAY, **kw)
    return [r.parameter or "" for r in found if not r.warning]


ROWS = read_table_file(packaged())


#: The OpenAI-compatible batch hosts: their rows may lack what no page read gave.
HOSTS = ("groq", "together", "xai")
HOST_ROWS = {name: row for name, row in ROWS.items() if row["provider"] in HOSTS}


@pytest.mark.parametrize("name", sorted(HOST_ROWS))
def test_every_host_row_is_sourced_dated_and_says_why_it_has_no_price(name: str) -> None:
    """A host's row: a source, a checked date, approximate tokens, and a plausible batch price or
    a note saying no price page was read; a `provider:model` name matches its provider."""
    row = HOST_ROWS[name]
    assert row["source"] and all(s.startswith("https://") for s in row["source"])
    assert dt.date(2026, 1, 1) <= row["checked"] <= TODAY
    assert row["batch"] is True and row["tokenizer"] == "approximate"
    if ":" in name:
        assert name.split(":")[0] == row["provider"]
    if "input" in row:
        assert row["input"] > 0 and row["output"] >= 0
        assert row.get("cached_input", 0) <= row["input"]
    else:
        assert "price" in row["note"]


@pytest.mark.parametrize("name", sorted(set(ROWS) - set(HOST_ROWS)))
def test_every_packaged_row_is_sourced_dated_and_sane(name: str) -> None:
    """A provider, a source, a checked date, limits and prices that are plausible numbers."""
    row = ROWS[name]
    assert row["provider"] in ("openai", "anthropic", "mistral", "gemini")
    assert row["source"] and all(
        s.startswith(("https://", "openai ", "anthropic ")) for s in row["source"]
    )
    assert dt.date(2026, 1, 1) <= row["checked"] <= TODAY
    assert row["context_window"] >= 1_000 and 0 <= row["max_output_tokens"] <= row["context_window"]
    assert row["tokenizer"] in ("o200k_base", "cl100k_base", "anthropic", "approximate")
    assert row.get("sampling", "any") in SAMPLING_RULES
    assert "sampling" not in row or row.get("sampling_source") or row["sampling"] == "any"
    assert row["input"] > 0 and row["output"] >= 0
    for rate in ("cached_input", "cache_write_5m", "cache_write_1h"):
        assert row.get(rate, 0) >= 0
    assert row.get("cached_input", 0) <= row["input"]


def test_the_packaged_table_loads_and_prices_every_row() -> None:
    """Every row becomes a model; every OpenAI and Anthropic row has a price."""
    table = load_model_table()
    assert set(table.rows) == set(ROWS)
    assert all(r.price for n, r in table.rows.items() if n not in HOST_ROWS)


@pytest.mark.parametrize("model", ["gpt-5", "gpt-5-mini", "o3", "o4-mini-2025-04-16", "gpt-5-pro"])
def test_reasoning_models_refuse_a_temperature_other_than_1(model: str) -> None:
    """gpt-5 family and o-series: 400 unsupported_value for temperature or top_p not 1."""
    assert refused(model, chat(temperature=0.2)) == ["temperature"]
    assert refused(model, chat(top_p=0.5)) == ["top_p"]
    assert refused(model, chat(temperature=1, top_p=1)) == []


def test_gpt_5_1_takes_temperature_with_reasoning_effort_none() -> None:
    """Its default effort is none; another effort makes temperature a refusal again."""
    assert refused("gpt-5.1", chat(temperature=0.2)) == []
    assert refused("gpt-5.1", chat(temperature=0.2, reasoning_effort="high")) == ["temperature"]
    body = {"input": "Hi", "temperature": 0.2, "reasoning": {"effort": "low"}}
    assert refused("gpt-5.1", body, endpoint=RESPONSES) == ["temperature"]


def test_gpt_5_4_takes_temperature_only_when_effort_none_is_asked() -> None:
    """No documented default effort: temperature needs an explicit reasoning effort none."""
    assert refused("gpt-5.4", chat(temperature=0)) == ["temperature"]
    body = {"input": "Hi", "temperature": 0, "reasoning": {"effort": "none"}}
    assert refused("gpt-5.4", body, endpoint=RESPONSES) == []


def test_older_chat_models_take_any_sampling() -> None:
    """gpt-4o and gpt-4.1: temperature and top_p together are fine."""
    assert refused("gpt-4o", chat(temperature=0.2, top_p=0.9)) == []
    assert refused("gpt-4.1-mini", chat(temperature=0)) == []


@pytest.mark.parametrize(
    "model", ["claude-opus-4-7", "claude-opus-4-8", "claude-sonnet-5", "claude-opus-5-5"]
)
def test_claude_models_that_deprecated_temperature_refuse_it(model: str) -> None:
    """Opus 4.7+ and Sonnet 5+: "temperature is deprecated for this model", top_p and top_k too."""
    found = check_request(
        model, chat(temperature=0.5), provider="anthropic", endpoint=CHAT, today=TODAY
    )
    assert [(r.parameter, r.warning) for r in found] == [("temperature", False)]
    assert "deprecated" in found[0].reason
    assert refused(model, chat(top_p=0.9, top_k=5), provider="anthropic") == ["top_p", "top_k"]


@pytest.mark.parametrize(
    "model",
    ["claude-sonnet-4-5-20250929", "claude-haiku-4-5", "claude-opus-4-1", "claude-sonnet-4-6"],
)
def test_claude_models_refuse_temperature_with_top_p(model: str) -> None:
    """Sonnet 4.5+, Haiku 4.5, Opus 4.1+: one of temperature and top_p, not both."""
    assert refused(model, chat(temperature=0.5, top_p=0.9), provider="anthropic") == [
        "temperature, top_p"
    ]
    assert refused(model, chat(temperature=0.5), provider="anthropic") == []
    assert refused(model, chat(top_p=0.9), provider="anthropic") == []


def test_max_output_tokens_over_the_models_limit_is_refused() -> None:
    """The parameter the body used is named, with the model's maximum."""
    found = check_request(
        "gpt-4o", chat(max_completion_tokens=20_000), provider="openai", endpoint=CHAT, today=TODAY
    )
    assert [r.parameter for r in found] == ["max_completion_tokens"]
    assert "20,000 is over the model's maximum of 16,384" in found[0].reason
    body = {"input": "Hi", "max_output_tokens": 5_000}
    assert refused("gpt-4o-2024-05-13", body, endpoint=RESPONSES) == ["max_output_tokens"]
    assert refused("gpt-4o-2024-08-06", body, endpoint=RESPONSES) == []


def test_json_mode_needs_the_word_json_in_the_messages() -> None:
    """OpenAI answers 400 to response_format json_object without "json" in any message."""
    fmt = {"type": "json_object"}
    assert refused("gpt-4o-mini", chat("List three colours.", response_format=fmt)) == [
        "response_format"
    ]
    assert refused("gpt-4o-mini", chat("Answer in JSON.", response_format=fmt)) == []
    parts = [{"role": "user", "content": [{"type": "text", "text": "a json list"}]}]
    assert refused("gpt-4o-mini", {"messages": parts, "response_format": fmt}) == []


def test_json_mode_on_responses_reads_input_and_instructions() -> None:
    """Responses: text.format json_object needs "json" in the input or the instructions."""
    body: dict[str, Any] = {"input": "Three colours.", "text": {"format": {"type": "json_object"}}}
    assert refused("gpt-4.1", body, endpoint=RESPONSES) == ["text.format"]
    body["instructions"] = "Reply with a JSON object."
    assert refused("gpt-4.1", body, endpoint=RESPONSES) == []


def test_json_mode_for_anthropic_is_left_to_its_adapter() -> None:
    """The Anthropic adapter turns JSON mode into an instruction, so nothing is refused."""
    body = chat("Three colours.", response_format={"type": "json_object"})
    assert refused("claude-haiku-4-5", body, provider="anthropic") == []


def test_structured_outputs_on_a_model_without_them_is_refused() -> None:
    """gpt-4o-2024-05-13 predates Structured Outputs (json_schema)."""
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}
    assert refused("gpt-4o-2024-05-13", chat(response_format=fmt)) == ["response_format"]
    assert refused("gpt-4o", chat(response_format=fmt)) == []


def test_a_prompt_that_does_not_fit_the_context_window_is_refused() -> None:
    """Counted prompt tokens plus the output budget must fit the window (seen: 150K on mini)."""
    assert refused("gpt-4o-mini", chat(), counted_tokens=150_000) == ["messages"]
    assert refused("gpt-4o-mini", chat(max_tokens=10_000), counted_tokens=120_000) == ["messages"]
    assert refused("gpt-4o-mini", chat(), counted_tokens=100_000) == []
    body = {"input": "x", "max_output_tokens": 1_000}
    assert refused("gpt-5-mini", body, endpoint=RESPONSES, counted_tokens=399_500) == ["input"]


def test_an_unknown_model_is_a_warning_not_a_refusal() -> None:
    """Nothing is checked for a model the table lacks; one warning says so."""
    found = check_request("acme-1", chat(temperature=9), provider="openai", endpoint=CHAT)
    assert [(r.parameter, r.warning) for r in found] == [(None, True)]
    assert "not in the model table" in str(found[0])


def test_a_model_past_its_shutdown_date_is_a_warning() -> None:
    """o1 was announced for shutdown on 2026-10-23 (SDK): said, not refused."""
    found = check_request("o1", chat(), provider="openai", endpoint=CHAT, today=TODAY)
    assert [r.warning for r in found] == [True] and "2026-10-23" in found[0].reason
    assert (
        check_request("o1", chat(), provider="openai", endpoint=CHAT, today=dt.date(2026, 1, 1))
        == []
    )


def test_a_model_of_the_other_provider_is_a_warning() -> None:
    """A Claude model sent to OpenAI is named, not refused."""
    found = check_request("claude-haiku-4-5", chat(), provider="openai", endpoint=CHAT, today=TODAY)
    assert [(r.parameter, r.warning) for r in found] == [("model", True)]


def test_embeddings_take_no_sampling_checks() -> None:
    """The embeddings endpoint has no temperature to refuse."""
    body = {"input": "x", "temperature": 0.5}
    assert refused("text-embedding-3-small", body, endpoint=EMBEDDINGS) == []


def test_an_override_row_changes_what_is_refused() -> None:
    """ledger.toml can add a model with its rule, or lift a packaged one."""
    table = load_model_table(
        {"acme-claude": {"provider": "anthropic", "sampling": "none"}, "gpt-5": {"sampling": "any"}}
    )
    assert refused("acme-claude", chat(temperature=0.1), provider="anthropic", table=table) == [
        "temperature"
    ]
    assert refused("gpt-5", chat(temperature=0.1), table=table) == []


def test_a_refusal_reads_as_one_line() -> None:
    """Model, parameter and reason in one line, for the build's error message."""
    line = str(Refusal("gpt-5", "temperature", "only the default (1)"))
    assert line == "model gpt-5: temperature: only the default (1)"
