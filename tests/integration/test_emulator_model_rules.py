"""The emulator refuses what the real APIs refuse, per model, through the official SDKs: sampling
parameters a model does not take, JSON mode without the word "json", prompts over the context
window; synchronously as a 400, in a batch as a per-request 400 in the error file (OpenAI) or an
`errored` result (Anthropic). It also answers as the APIs do: dated model names, base64
embeddings, rate-limit headers, request counts that move while a batch runs, and Anthropic
results archived after their window."""

from __future__ import annotations

from typing import Any, cast

import anthropic
import openai
import pytest
from support.emulator_support import chat_line, finish, jsonl, running, sdk, submit

ANTHROPIC_HEADERS = {"anthropic-version": "2023-06-01"}


def claude(emu: Any) -> anthropic.Anthropic:
    """The official Anthropic client aimed at the emulator's root, no retries."""
    return anthropic.Anthropic(api_key="sk-ant-test", base_url=emu.url, max_retries=0, timeout=10)


def ask(client: openai.OpenAI, model: str, prompt: str = "hi", **body: Any) -> Any:
    """One synchronous chat completion."""
    return client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": prompt}], **body
    )


def test_temperature_on_openai_reasoning_models_is_a_400_unsupported_value() -> None:
    """gpt-5 and o-series take only the default temperature; gpt-4o takes any; gpt-5.1 takes it
    at its default effort "none"; gpt-5.4 only when the effort is "none"."""
    with running() as emu:
        client = sdk(emu)
        for model in ("gpt-5", "gpt-5-mini-2025-08-07", "o4-mini", "gpt-5.4"):
            with pytest.raises(openai.BadRequestError) as refused:
                ask(client, model, temperature=0.2)
            assert refused.value.code == "unsupported_value"
            assert refused.value.param == "temperature"
            assert "Only the default (1) value is supported" in refused.value.message
        assert ask(client, "gpt-5", temperature=1).choices[0].message.content == "Echo: hi"
        assert ask(client, "gpt-4o", temperature=0.2).choices
        assert ask(client, "gpt-5.1", temperature=0.2).choices
        assert ask(client, "gpt-5.4", temperature=0.2, reasoning_effort="none").choices
        with pytest.raises(openai.BadRequestError):
            client.responses.create(model="o3", input="hi", top_p=0.5)


def test_json_mode_without_the_word_json_is_a_400() -> None:
    """JSON mode needs "json" somewhere in the messages (chat) or input (responses)."""
    with running() as emu:
        client = sdk(emu)
        with pytest.raises(openai.BadRequestError) as refused:
            ask(client, "gpt-4o-mini", response_format={"type": "json_object"})
        assert refused.value.param == "messages"
        assert "must contain the word 'json'" in refused.value.message
        assert ask(client, "gpt-4o-mini", "reply in JSON", response_format={"type": "json_object"})
        with pytest.raises(openai.BadRequestError):
            client.responses.create(
                model="gpt-4o-mini", input="hi", text={"format": {"type": "json_object"}}
            )
        answered = client.responses.create(
            model="gpt-4o-mini",
            input="hi",
            instructions="Answer as a json object.",
            text={"format": {"type": "json_object"}},
        )
        assert answered.status == "completed"


def test_a_prompt_over_the_context_window_is_context_length_exceeded() -> None:
    """gpt-3.5-turbo has 16,385 tokens: a longer prompt answers 400 context_length_exceeded."""
    with running() as emu:
        with pytest.raises(openai.BadRequestError) as refused:
            ask(sdk(emu), "gpt-3.5-turbo", "word " * 17_000)
        assert refused.value.code == "context_length_exceeded"
        assert "maximum context length is 16385 tokens" in refused.value.message


def test_refused_batch_requests_are_400_lines_in_the_error_file() -> None:
    """In a batch, each refused request is a 400 in the error file with the API's error body;
    the others run, and request_counts say so."""
    lines = [
        chat_line("ok", "hi", model="gpt-5"),
        chat_line("hot", "hi", model="gpt-5", temperature=0.7),
        chat_line("json", "hi", model="gpt-5", response_format={"type": "json_object"}),
        chat_line("long", "word " * 400_001, model="gpt-5"),
    ]
    with running() as emu:
        client = sdk(emu)
        done = finish(client, submit(client, lines).id)
        assert done.status == "completed"
        assert done.request_counts is not None
        assert (done.request_counts.completed, done.request_counts.failed) == (1, 3)
        output = jsonl(client, done.output_file_id)
        assert [line["custom_id"] for line in output] == ["ok"]
        assert output[0]["response"]["body"]["model"] == "gpt-5-2025-08-07"
        errors = {line["custom_id"]: line["response"] for line in jsonl(client, done.error_file_id)}
        assert {cid: r["status_code"] for cid, r in errors.items()} == dict.fromkeys(
            ("hot", "json", "long"), 400
        )
        codes = {cid: r["body"]["error"]["code"] for cid, r in errors.items()}
        assert codes == {
            "hot": "unsupported_value",
            "json": None,
            "long": "context_length_exceeded",
        }


def test_claude_sampling_rules_sync_and_in_batches() -> None:
    """Opus 4.7: temperature is deprecated; Haiku 4.5 and Opus 4.6: temperature or top_p, not
    both; older Claude models take both. Synchronously a 400, in a batch an `errored` result."""
    with running() as emu:
        client = claude(emu)

        def create(model: str, **sampling: Any) -> Any:
            return client.messages.create(
                model=model,
                max_tokens=16,
                messages=[{"role": "user", "content": "hi"}],
                extra_body=sampling,
            )

        with pytest.raises(anthropic.BadRequestError) as deprecated:
            create("claude-opus-4-7", temperature=0.5)
        assert "`temperature` is deprecated for this model." in str(deprecated.value)
        with pytest.raises(anthropic.BadRequestError) as both:
            create("claude-haiku-4-5-20251001", temperature=0.5, top_p=0.9)
        assert "cannot both be specified for this model" in str(both.value)
        assert create("claude-opus-4-6", temperature=0.5).content[0].type == "text"
        assert create("claude-sonnet-4", temperature=0.5, top_p=0.9).stop_reason == "end_turn"

        def request(custom_id: str, model: str, prompt: str = "hi", **extra: Any) -> Any:
            messages = [{"role": "user", "content": prompt}]
            params = {"model": model, "max_tokens": 16, "messages": messages, **extra}
            return {"custom_id": custom_id, "params": params}

        batch = client.messages.batches.create(
            requests=cast(
                Any,
                [
                    request("fine", "claude-haiku-4-5", temperature=0.3),
                    request("deprecated", "claude-opus-4-8", top_k=5),
                    request("both", "claude-haiku-4-5", temperature=0.3, top_p=0.5),
                    request("long", "claude-haiku-4-5", "w " * 200_001),
                ],
            )
        )
        ended = batch
        for _ in range(5):
            ended = client.messages.batches.retrieve(batch.id)
        assert ended.processing_status == "ended"
        assert (ended.request_counts.succeeded, ended.request_counts.errored) == (1, 3)
        results = {
            line.custom_id: line.result for line in client.messages.batches.results(batch.id)
        }
        messages = {
            cid: result.error.error.message
            for cid, result in results.items()
            if result.type == "errored"
        }
        assert messages == {
            "deprecated": "`top_k` is deprecated for this model.",
            "both": "`temperature` and `top_p` cannot both be specified for this model. "
            "Please use only one.",
            "long": "prompt is too long: 200007 tokens > 200000 maximum",
        }


def test_answers_name_the_dated_model_and_carry_rate_limit_headers() -> None:
    """gpt-4o-mini answers as gpt-4o-mini-2024-07-18; every answer carries x-ratelimit-*
    headers whose remaining count goes down; Anthropic's carry anthropic-ratelimit-*."""
    with running() as emu:
        client = sdk(emu)
        first = client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
        assert first.parse().model == "gpt-4o-mini-2024-07-18"
        second = client.files.with_raw_response.list()
        assert first.headers["x-ratelimit-limit-requests"] == "10000"
        before = int(first.headers["x-ratelimit-remaining-requests"])
        assert int(second.headers["x-ratelimit-remaining-requests"]) == before - 1
        for name in ("limit-tokens", "remaining-tokens", "reset-requests", "reset-tokens"):
            assert first.headers[f"x-ratelimit-{name}"]
        raw = claude(emu).messages.with_raw_response.create(
            model="claude-haiku-4-5", max_tokens=8, messages=[{"role": "user", "content": "hi"}]
        )
        assert raw.headers["anthropic-ratelimit-requests-limit"] == "10000"
        assert int(raw.headers["anthropic-ratelimit-tokens-remaining"]) < 10_000_000


def test_request_counts_advance_while_in_progress() -> None:
    """A batch's completed and failed counts grow with each poll while it is in progress, never
    going back, and end at the real counts."""
    lines = [chat_line(f"r{i}", "hi") for i in range(20)]
    with running(polls_per_stage=4, scenario="request_failures", failure_rate=0.25) as emu:
        client = sdk(emu)
        batch = submit(client, lines)
        seen: list[tuple[int, int]] = []
        while batch.status not in ("completed", "failed"):
            batch = client.batches.retrieve(batch.id)
            assert batch.request_counts is not None
            if batch.status == "in_progress":
                seen.append((batch.request_counts.completed, batch.request_counts.failed))
        assert batch.request_counts is not None
        final = (batch.request_counts.completed, batch.request_counts.failed)
        assert len(seen) == 4 and seen[0] == (0, 0)
        assert seen[-1][0] > 0 and sum(seen[-1]) < 20
        assert all(
            a[0] <= b[0] and a[1] <= b[1] for a, b in zip(seen, [*seen[1:], final], strict=True)
        )
        assert sum(final) == 20 and final[1] > 0


def test_anthropic_results_are_archived_after_their_window() -> None:
    """Once `message_results_seconds` have passed since creation, the batch shows archived_at
    and its results answer 404."""
    with running() as emu:
        client = claude(emu)
        batch = client.messages.batches.create(
            requests=cast(
                Any,
                [
                    {
                        "custom_id": "a",
                        "params": {
                            "model": "claude-haiku-4-5",
                            "max_tokens": 8,
                            "messages": [{"role": "user", "content": "hi"}],
                        },
                    }
                ],
            )
        )
        ended = batch
        for _ in range(3):
            ended = client.messages.batches.retrieve(batch.id)
        assert ended.processing_status == "ended" and ended.archived_at is None
        assert [line.custom_id for line in client.messages.batches.results(batch.id)] == ["a"]
        emu.configure(message_results_seconds=0)
        archived = client.messages.batches.retrieve(batch.id)
        assert archived.archived_at is not None
        with pytest.raises(anthropic.NotFoundError):
            list(client.messages.batches.results(batch.id))
