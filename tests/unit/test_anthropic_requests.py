"""Anthropic request sets: chat bodies translate into Messages API params or are refused with a
reason (`translate.py`), custom_ids map reversibly into Anthropic's alphabet (`custom_ids.py`),
and Anthropic's limits hold (`requests.py`)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.anthropic.custom_ids import (
    MAX_ENCODED_CHARS,
    batch_tag,
    decode_custom_id,
    encode_custom_id,
    has_tag,
    ledger_custom_id,
    tag_custom_id,
)
from adapters.anthropic.requests import read_request_set, write_request_set
from adapters.anthropic.translate import (
    DEFAULT_MAX_TOKENS,
    JSON_MODE_INSTRUCTION,
    RequestSetError,
    translate_body,
)

ANTHROPIC_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def chat(*messages: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A chat-completions body."""
    return {"model": "claude-sonnet-4-5", "messages": list(messages), **fields}


def user(text: Any) -> dict[str, Any]:
    return {"role": "user", "content": text}


def shard(tmp_path: Path, lines: list[dict[str, Any]]) -> Path:
    """A shard of Batch API lines."""
    path = tmp_path / "shard-0001.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def line(custom_id: str, body: Any = None, url: str = "/v1/chat/completions") -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": url,
        "body": body if body is not None else chat(user("hi")),
    }


@given(st.text(min_size=1, max_size=40))
def test_any_custom_id_survives_encoding_and_fits_anthropics_alphabet(custom_id: str) -> None:
    """decode(encode(x)) == x for any text, and the tagged form is a valid Anthropic id."""
    encoded = encode_custom_id(custom_id)
    assert decode_custom_id(encoded) == custom_id
    assert re.fullmatch(r"[A-Za-z0-9_-]+", encoded)
    tagged = tag_custom_id("0123abcd", encoded)
    assert ledger_custom_id(tagged) == custom_id
    if len(encoded) <= MAX_ENCODED_CHARS:
        assert ANTHROPIC_ID.fullmatch(tagged)


def test_the_ledgers_punctuation_maps_reversibly_and_plain_ids_stay_readable() -> None:
    """`.`, `:` and `_` become `_` plus hex; letters, digits and `-` stay as they are."""
    assert encode_custom_id("run-1.q:7_b") == "run-1_2eq_3a7_5fb"
    assert encode_custom_id("plain-id-42") == "plain-id-42"
    assert decode_custom_id("run-1_2eq_3a7_5fb") == "run-1.q:7_b"


def test_tags_name_the_create_and_foreign_ids_are_not_ours() -> None:
    """A tag is the token's first 8 hex digits; ids without one decode to None."""
    tag = batch_tag("9F3A00C1" + "0" * 24)
    assert tag == "9f3a00c1"
    assert has_tag(tag_custom_id(tag, "q1"), tag) and not has_tag("deadbeef-q1", tag)
    assert ledger_custom_id("q1") is None
    assert ledger_custom_id("9f3a00c1-bad_zz") is None
    with pytest.raises(ValueError):
        batch_tag("not-hex!")


def test_system_and_developer_messages_are_lifted_in_order() -> None:
    """System and developer messages become `system`; user/assistant turns keep their order."""
    params = translate_body(
        chat(
            {"role": "system", "content": "Be brief."},
            user("Hi"),
            {"role": "assistant", "content": [{"type": "text", "text": "Hello"}]},
            {"role": "developer", "content": [{"type": "text", "text": "No lists."}]},
            user([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]),
        )
    )
    assert params["system"] == "Be brief.\n\nNo lists."
    assert params["messages"] == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": [{"type": "text", "text": "Hello"}]},
        {
            "role": "user",
            "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
        },
    ]
    assert params["model"] == "claude-sonnet-4-5"


@pytest.mark.parametrize(
    ("fields", "max_tokens"),
    [
        ({"max_completion_tokens": 50, "max_tokens": 9}, 50),
        ({"max_tokens": 9}, 9),
        ({}, DEFAULT_MAX_TOKENS),
    ],
)
def test_max_tokens_is_always_set(fields: dict[str, Any], max_tokens: int) -> None:
    """max_tokens comes from max_completion_tokens, then max_tokens, then the default."""
    assert translate_body(chat(user("x"), **fields))["max_tokens"] == max_tokens


def test_sampling_stop_and_user_translate() -> None:
    """temperature, top_p pass; stop becomes stop_sequences; user becomes metadata.user_id."""
    params = translate_body(chat(user("x"), temperature=0.2, top_p=0.9, stop="END", user="u-7"))
    assert params["temperature"] == 0.2 and params["top_p"] == 0.9
    assert params["stop_sequences"] == ["END"]
    assert params["metadata"] == {"user_id": "u-7"}
    assert "system" not in params and "output_config" not in params


def test_json_mode_adds_an_instruction_and_a_schema_uses_structured_outputs() -> None:
    """json_object has no switch: an instruction joins the system; json_schema -> output_config."""
    json_mode = translate_body(
        chat({"role": "system", "content": "S"}, user("x"), response_format={"type": "json_object"})
    )
    assert json_mode["system"] == f"S\n\n{JSON_MODE_INSTRUCTION}"
    assert "output_config" not in json_mode
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    structured = translate_body(
        chat(
            user("x"),
            response_format={"type": "json_schema", "json_schema": {"name": "n", "schema": schema}},
        )
    )
    assert structured["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    assert "system" not in structured
    plain = translate_body(chat(user("x"), response_format={"type": "text"}))
    assert "system" not in plain and "output_config" not in plain


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (chat(user("x"), temperature=1.5), "outside Anthropic's range 0 to 1"),
        (chat(user("x"), n=2), "n must be 1"),
        (chat(user("x"), stream=True), "stream"),
        (chat(user("x"), seed=7, logprobs=True), "logprobs, seed have no Anthropic translation"),
        (chat({"role": "system", "content": "only system"}), "no user or assistant message"),
        (chat(user("x"), {"role": "tool", "content": "r", "tool_call_id": "t"}), "tool_call_id"),
        (chat({"role": "tool", "content": "r"}), "role 'tool'"),
        (chat(user([{"type": "image_url", "image_url": {"url": "x"}}])), "'image_url'"),
        (chat(user("x"), response_format={"type": "grammar"}), "'grammar'"),
        ({"messages": [user("x")]}, "model"),
        (chat(), "non-empty list"),
        (chat(user("x"), max_tokens=0), "positive integer"),
    ],
)
def test_what_has_no_translation_is_refused_with_the_reason(body: Any, reason: str) -> None:
    """A body that cannot become Messages params is refused, saying which field and why."""
    with pytest.raises(RequestSetError) as refused:
        translate_body(body)
    assert reason in str(refused.value)


def test_a_request_set_is_written_beside_the_shard_in_shard_order(tmp_path: Path) -> None:
    """Every line becomes {custom_id (encoded), params}, in order; nothing else is left there."""
    source = shard(tmp_path, [line("a.1"), line("b:2", chat(user("yo"), max_tokens=3))])
    destination = tmp_path / "set.anthropic-requests.jsonl"
    info = write_request_set(source, destination)
    assert (info.requests, info.bytes) == (2, destination.stat().st_size)
    requests = read_request_set(destination)
    assert [r["custom_id"] for r in requests] == ["a_2e1", "b_3a2"]
    assert requests[1]["params"]["max_tokens"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == [destination.name, source.name]


@pytest.mark.parametrize(
    ("lines", "reason"),
    [
        ([line("x" * 60)], "64: shorten it"),
        ([line("same"), line("same")], "appears twice"),
        ([line("e", {"model": "m", "input": "x"}, url="/v1/embeddings")], "chat requests only"),
        ([line("ok"), line("bad", chat(user("x"), temperature=3))], ":2 (bad): body.temperature"),
        ([], "no request"),
    ],
)
def test_a_shard_anthropic_cannot_take_is_refused_and_nothing_is_written(
    tmp_path: Path, lines: list[dict[str, Any]], reason: str
) -> None:
    """Too-long or repeated custom_ids, other endpoints, bad bodies: refused, no file left."""
    source = shard(tmp_path, lines)
    destination = tmp_path / "set.jsonl"
    with pytest.raises(RequestSetError) as refused:
        write_request_set(source, destination)
    assert reason in str(refused.value)
    assert [p.name for p in tmp_path.iterdir()] == [source.name]


def test_anthropics_count_and_byte_limits_hold(tmp_path: Path) -> None:
    """More requests than allowed, or more bytes, is refused before anything is sent."""
    source = shard(tmp_path, [line(f"q{i}") for i in range(3)])
    with pytest.raises(RequestSetError, match="more than 2 requests"):
        write_request_set(source, tmp_path / "a.jsonl", max_requests=2)
    with pytest.raises(RequestSetError, match="more than 300 bytes"):
        write_request_set(source, tmp_path / "b.jsonl", max_bytes=300)
    assert write_request_set(source, tmp_path / "c.jsonl", max_requests=3).requests == 3
