"""The emulator's synchronous routes: chat completions, responses, embeddings (OpenAI) and
messages (Anthropic), answered like batch requests, with auth, errors, faults and invalid JSON."""

from __future__ import annotations

import base64
import json
import struct
import time
from typing import Any

import anthropic
import httpx2
import openai
import pytest
from support.emulator_support import chat_line, finish, jsonl, running, sdk, submit

from ledger.emulator import answer_text, count_tokens, embedding_vector
from ledger.emulator.sync_routes import INVALID_JSON_PREFIX

QUESTION = "What is the capital of France?"
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "sure": {"type": "boolean"}},
    "required": ["city", "sure"],
    "additionalProperties": False,
}


def claude(url: str) -> anthropic.Anthropic:
    """The official Anthropic client aimed at the emulator's root URL, no retries."""
    return anthropic.Anthropic(api_key="sk-ant-test", base_url=url, max_retries=0)


def test_chat_completion_answers_like_the_same_request_in_a_batch() -> None:
    """A synchronous chat completion has the text, usage and finish reason of its batch twin."""
    with running() as emu:
        client = sdk(emu)
        sync = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": QUESTION}]
        )
        batch = finish(client, submit(client, [chat_line("q1", QUESTION)]).id)
        [line] = jsonl(client, batch.output_file_id)
        twin = line["response"]["body"]
        assert sync.choices[0].message.content == answer_text(QUESTION)
        assert sync.choices[0].message.content == twin["choices"][0]["message"]["content"]
        assert sync.choices[0].finish_reason == "stop"
        assert sync.usage is not None
        assert sync.usage.model_dump()["prompt_tokens"] == twin["usage"]["prompt_tokens"] > 0
        assert sync.usage.completion_tokens == twin["usage"]["completion_tokens"] > 0
        assert sync._request_id and sync._request_id.startswith("req_")
        assert emu.stats()["requests"]["chat_completions"] == 1


def test_responses_answer_text_json_schema_and_truncation() -> None:
    """/v1/responses echoes, answers a schema instance in JSON mode, and marks a cut answer
    incomplete."""
    with running() as emu:
        client = sdk(emu)
        plain = client.responses.create(model="gpt-4o-mini", input=QUESTION)
        assert (plain.output_text, plain.status) == (answer_text(QUESTION), "completed")
        assert plain.usage is not None
        assert plain.usage.output_tokens == count_tokens(answer_text(QUESTION)) == 9
        structured = client.responses.create(
            model="gpt-4o-mini",
            input=QUESTION,
            text={"format": {"type": "json_schema", "name": "a", "schema": SCHEMA}},
        )
        assert json.loads(structured.output_text) == {
            "city": answer_text(QUESTION),
            "sure": False,
        }
        cut = client.responses.create(model="gpt-4o-mini", input=QUESTION, max_output_tokens=3)
        assert cut.status == "incomplete"
        assert cut.incomplete_details is not None
        assert cut.incomplete_details.reason == "max_output_tokens"


def test_embeddings_are_the_batch_vectors() -> None:
    """/v1/embeddings answers one unit vector per input, derived from the text alone: as floats
    when `encoding_format` is "float", as base64 float32s when it is "base64" (what the SDK asks
    for by default, decoding them back to floats)."""
    with running(embedding_dimensions=4) as emu:
        client = sdk(emu)
        answer = client.embeddings.create(
            model="text-embedding-3-small", input=["a b", "c"], encoding_format="float"
        )
        assert [item.embedding for item in answer.data] == [
            embedding_vector("a b", 4),
            embedding_vector("c", 4),
        ]
        assert answer.usage.prompt_tokens == 3
        raw = client.embeddings.with_raw_response.create(
            model="text-embedding-3-small", input="c", encoding_format="base64"
        )
        packed = json.loads(raw.http_response.text)["data"][0]["embedding"]
        assert isinstance(packed, str)
        floats = struct.unpack("<4f", base64.b64decode(packed))
        assert floats == pytest.approx(embedding_vector("c", 4), abs=1e-6)
        default = client.embeddings.create(model="text-embedding-3-small", input="c")
        assert default.data[0].embedding == list(floats)


def test_anthropic_messages_through_the_official_sdk() -> None:
    """/v1/messages answers a Message: text, end_turn or max_tokens, usage, request id."""
    with running() as emu:
        client = claude(emu.url)
        message = client.messages.create(
            model="claude-haiku-4-5",
            max_tokens=100,
            system="Be brief.",
            messages=[{"role": "user", "content": QUESTION}],
        )
        assert message.content[0].type == "text"
        assert message.content[0].text == answer_text(QUESTION)
        assert message.stop_reason == "end_turn"
        # Counted as the chat twin: 3 + (3 + "Be brief.") + (3 + the question) = 19.
        assert (message.usage.input_tokens, message.usage.output_tokens) == (19, 9)
        assert message._request_id and message._request_id.startswith("req_")
        cut = client.messages.create(
            model="claude-haiku-4-5", max_tokens=2, messages=[{"role": "user", "content": "a b c"}]
        )
        assert cut.stop_reason == "max_tokens"
        assert cut.content[0].type == "text" and cut.content[0].text == "Echo:"


def test_anthropic_json_answers_native_schema_or_system_instruction() -> None:
    """output_config.format gets a schema instance; a system prompt asking for JSON gets
    {"answer": ...}; anything else is plain text."""
    with running() as emu:
        client = claude(emu.url)
        native = client.messages.create(
            model="claude-haiku-4-5",
            max_tokens=100,
            messages=[{"role": "user", "content": QUESTION}],
            output_config={"format": {"type": "json_schema", "schema": SCHEMA}},
        )
        assert native.content[0].type == "text"
        assert json.loads(native.content[0].text) == {"city": answer_text(QUESTION), "sure": False}
        told = client.messages.create(
            model="claude-haiku-4-5",
            max_tokens=100,
            system="Answer with one JSON object.",
            messages=[{"role": "user", "content": QUESTION}],
        )
        assert told.content[0].type == "text"
        assert json.loads(told.content[0].text) == {"answer": answer_text(QUESTION)}


def test_anthropic_route_speaks_anthropic_errors_and_takes_x_api_key() -> None:
    """x-api-key authenticates; a missing or wrong key is 401 authentication_error and a bad
    body 400 invalid_request_error, in Anthropic's error JSON."""
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    version = {"anthropic-version": "2023-06-01"}  # required by the real API, sent by the SDK
    with running(api_key="sk-ant-right") as emu:
        url = emu.url + "/v1/messages"
        ok = httpx2.post(url, json=body, headers={"x-api-key": "sk-ant-right", **version})
        assert ok.status_code == 200 and ok.json()["type"] == "message"
        assert ok.headers["request-id"].startswith("req_")
        missing = httpx2.post(url, json=body, headers=version)
        assert missing.status_code == 401
        assert missing.json() == {
            "type": "error",
            "error": {"type": "authentication_error", "message": "x-api-key header is required"},
            "request_id": missing.json()["request_id"],
        }
        assert missing.json()["request_id"].startswith("req_")
        wrong = httpx2.post(url, json=body, headers={"x-api-key": "sk-ant-wrong", **version})
        assert wrong.status_code == 401 and "sk-ant-wrong" not in wrong.text
        bad = httpx2.post(
            url, json={**body, "max_tokens": None}, headers={"x-api-key": "sk-ant-right", **version}
        )
        assert bad.status_code == 400
        assert bad.json()["error"]["type"] == "invalid_request_error"
        assert "max_tokens" in bad.json()["error"]["message"]


def test_openai_sync_routes_check_their_body_and_key() -> None:
    """A chat request without messages is 400 missing_required_parameter; a wrong key is 401."""
    with running(api_key="sk-right") as emu:
        answer = httpx2.post(
            emu.base_url + "/chat/completions",
            json={"model": "gpt-4o-mini"},
            headers={"Authorization": "Bearer sk-right"},
        )
        assert answer.status_code == 400
        assert answer.json()["error"]["code"] == "missing_required_parameter"
        assert answer.json()["error"]["param"] == "messages"
        with pytest.raises(openai.AuthenticationError):
            sdk(emu).chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
            )


def test_faults_apply_to_the_sync_routes() -> None:
    """http_500, http_429 and latency rules fire on the new route names, and only there."""
    faults = [
        {"kind": "http_500", "route": "chat_completions", "times": 1},
        {"kind": "http_429", "route": "messages", "times": 1, "seconds": 2},
        {"kind": "latency", "route": "embeddings", "seconds": 0.3},
    ]
    with running(faults=faults) as emu:
        client = sdk(emu)
        hello: list[Any] = [{"role": "user", "content": "hi"}]
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="gpt-4o-mini", messages=hello)
        assert client.chat.completions.create(model="gpt-4o-mini", messages=hello).choices
        assert client.responses.create(model="gpt-4o-mini", input="hi").output_text
        with pytest.raises(anthropic.RateLimitError) as limited:
            claude(emu.url).messages.create(
                model="m", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
            )
        assert limited.value.response.headers["retry-after"] == "2"
        body = limited.value.body
        assert isinstance(body, dict) and str(body.get("request_id")).startswith("req_")
        assert body == {
            "type": "error",
            "error": {
                "type": "rate_limit_error",
                "message": "Rate limit reached for requests. Please try again later.",
            },
            "request_id": body["request_id"],
        }
        started = time.monotonic()
        client.embeddings.create(model="text-embedding-3-small", input="hi")
        assert time.monotonic() - started >= 0.3
        assert emu.stats()["faults"] == {
            "http_500": 1,
            "http_429": 1,
            "drop_response": 0,
            "truncate_download": 0,
            "latency": 1,
            "insufficient_quota": 0,
        }


def test_sync_invalid_json_spoils_json_mode_answers_only() -> None:
    """With sync_invalid_json, JSON-mode answers are prose plus broken JSON; plain text stays."""
    question = QUESTION + " Answer in JSON."  # JSON mode needs the word, or the API answers 400
    with running(sync_invalid_json=True) as emu:
        client = sdk(emu)
        spoiled = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": question}],
            response_format={"type": "json_object"},
        )
        text = spoiled.choices[0].message.content or ""
        assert text == INVALID_JSON_PREFIX + json.dumps({"answer": answer_text(question)})[:-1]
        with pytest.raises(ValueError):
            json.loads(text)
        response = client.responses.create(
            model="gpt-4o-mini", input=question, text={"format": {"type": "json_object"}}
        )
        assert response.output_text.startswith(INVALID_JSON_PREFIX)
        plain = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": question}]
        )
        assert plain.choices[0].message.content == answer_text(question)
        emu.configure(sync_invalid_json=False)
        fixed = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": question}],
            response_format={"type": "json_object"},
        )
        assert json.loads(fixed.choices[0].message.content or "") == {
            "answer": answer_text(question)
        }


def test_a_fault_rule_for_an_unknown_route_is_refused() -> None:
    """Route names are checked: the sync names are known, a misspelt one is not."""
    with running() as emu:
        emu.configure(faults=[{"kind": "http_500", "route": "messages"}])
        with pytest.raises(ValueError, match="unknown route 'message'"):
            emu.configure(faults=[{"kind": "http_500", "route": "message"}])
