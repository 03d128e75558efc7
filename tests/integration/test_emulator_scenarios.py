"""Scenarios do what they say, are chosen the four documented ways, and answers have real shapes."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import openai
import pytest
from openai.types import CreateEmbeddingResponse
from openai.types.chat import ChatCompletion
from openai.types.responses import Response
from support.emulator_support import (
    chat_line,
    finish,
    jsonl,
    responses_line,
    running,
    sdk,
    statuses,
    submit,
    upload,
)

from ledger.emulator import answer_text, embedding_vector
from ledger.emulator.scenarios import run_requests
from ledger.emulator.validation import check_input_file

TEN = [chat_line(f"r{i}", f"question {i}") for i in range(10)]


def test_expire_keeps_the_finished_share_and_expires_the_rest() -> None:
    """expire: in_progress -> expired; partial_fraction done, the rest batch_expired lines."""
    with running(scenario="expire", partial_fraction=0.3) as emu:
        client = sdk(emu)
        batch = submit(client, TEN)
        assert statuses(client, batch.id) == ["in_progress", "expired"]
        expired = client.batches.retrieve(batch.id)
        assert expired.expired_at is not None and expired.completed_at is None
        assert expired.request_counts is not None
        assert expired.request_counts.model_dump() == {"total": 10, "completed": 3, "failed": 0}
        output, errors = jsonl(client, expired.output_file_id), jsonl(client, expired.error_file_id)
        assert len(output) == 3 and len(errors) == 7
        assert {e["error"]["code"] for e in errors} == {"batch_expired"}
        assert all(e["response"] is None and e["error"]["message"] for e in errors)
        assert {line["custom_id"] for line in output + errors} == {f"r{i}" for i in range(10)}


def test_cancel_scenario_is_a_provider_side_cancel_with_partial_results() -> None:
    """cancel: the batch goes cancelling then cancelled unasked, with partial results."""
    with running(scenario="cancel") as emu:
        client = sdk(emu)
        batch = submit(client, TEN)
        assert statuses(client, batch.id) == ["in_progress", "cancelling", "cancelled"]
        cancelled = client.batches.retrieve(batch.id)
        assert cancelled.cancelling_at is not None and cancelled.cancelled_at is not None
        assert len(jsonl(client, cancelled.output_file_id)) == 5
        errors = jsonl(client, cancelled.error_file_id)
        assert len(errors) == 5 and {e["error"]["code"] for e in errors} == {"batch_cancelled"}


def test_fail_validation_fails_with_the_configured_code() -> None:
    """fail_validation: failed at validation with fail_validation_code."""
    with running(scenario="fail_validation", fail_validation_code="invalid_file_format") as emu:
        client = sdk(emu)
        failed = finish(client, submit(client, TEN).id)
        assert failed.status == "failed" and failed.errors is not None
        assert [e.code for e in failed.errors.data or []] == ["invalid_file_format"]


def test_token_limit_fails_the_first_creations_then_lets_a_resubmission_run() -> None:
    """token_limit_exceeded, token_limit_failures=2: two failures per file name, then success."""
    with running(scenario="token_limit_exceeded", token_limit_failures=2) as emu:
        client = sdk(emu)
        file = upload(client, TEN, "shard-7.jsonl")

        def create(file_id: str) -> str:
            return client.batches.create(
                input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h"
            ).id

        first = finish(client, create(file.id))
        assert first.status == "failed" and first.errors is not None
        error = (first.errors.data or [])[0]
        assert error.code == "token_limit_exceeded" and "Enqueued token limit" in (
            error.message or ""
        )
        again = upload(client, TEN, "shard-7.jsonl")  # a re-upload of the same shard counts too
        assert finish(client, create(again.id)).status == "failed"
        assert finish(client, create(file.id)).status == "completed"
        other = upload(client, TEN, "shard-8.jsonl")
        assert finish(client, create(other.id)).status == "failed"


def test_token_limit_without_a_count_always_fails() -> None:
    """token_limit_exceeded with no token_limit_failures: every creation fails."""
    with running(scenario="token_limit_exceeded") as emu:
        client = sdk(emu)
        file = upload(client, TEN)
        for _ in range(3):
            created = client.batches.create(
                input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
            )
            assert finish(client, created.id).status == "failed"


def test_request_failures_put_4xx_and_5xx_answers_in_the_error_file() -> None:
    """request_failures: a share answers non-2xx with an error body; counts add up."""
    lines = [chat_line(f"r{i}", "q") for i in range(60)]
    with running(scenario="request_failures", failure_rate=0.5) as emu:
        client = sdk(emu)
        done = finish(client, submit(client, lines).id)
        assert done.status == "completed" and done.request_counts is not None
        output, errors = jsonl(client, done.output_file_id), jsonl(client, done.error_file_id)
        counts = done.request_counts
        assert (counts.completed, counts.failed) == (len(output), len(errors))
        assert counts.completed + counts.failed == 60
        assert 15 <= len(errors) <= 45
        assert {e["response"]["status_code"] for e in errors} <= {400, 429, 500}
        for line in errors:
            assert line["error"] is None
            assert set(line["response"]["body"]["error"]) == {"message", "type", "param", "code"}
        assert all(line["response"]["status_code"] == 200 for line in output)


def test_all_fail_leaves_no_output_file() -> None:
    """all_fail: every request fails, output_file_id stays null, the error file has them all."""
    with running(scenario="all_fail") as emu:
        client = sdk(emu)
        done = finish(client, submit(client, TEN).id)
        assert done.status == "completed" and done.output_file_id is None
        assert done.request_counts is not None and done.request_counts.failed == 10
        assert done.usage is not None and done.usage.total_tokens == 0
        assert len(jsonl(client, done.error_file_id)) == 10


def test_slow_finalizing_stays_in_finalizing_for_extra_stages() -> None:
    """slow_finalizing: finalizing lasts 1 + slow_finalizing_stages stages."""
    with running(scenario="slow_finalizing", slow_finalizing_stages=2) as emu:
        client = sdk(emu)
        batch = submit(client, TEN)
        seen = statuses(client, batch.id)
        assert seen == ["in_progress", "finalizing", "finalizing", "finalizing", "completed"]


def test_not_found_grace_hides_a_new_batch_from_its_first_gets() -> None:
    """not_found_grace: the first not_found_gets retrieves are 404, then it is there."""
    with running(scenario="not_found_grace", not_found_gets=2) as emu:
        client = sdk(emu)
        batch = submit(client, TEN)
        for _ in range(2):
            with pytest.raises(openai.NotFoundError):
                client.batches.retrieve(batch.id)
        assert client.batches.retrieve(batch.id).status == "in_progress"
        assert [b.id for b in client.batches.list()] == [batch.id]


def test_zipped_output_serves_zip_archives_of_jsonl_members() -> None:
    """zipped_output: the result file is a ZIP of zip_members JSONL files holding every line."""
    with running(scenario="zipped_output", zip_members=3) as emu:
        client = sdk(emu)
        done = finish(client, submit(client, TEN).id)
        archive = zipfile.ZipFile(
            io.BytesIO(client.files.content(done.output_file_id or "").content)
        )
        names = archive.namelist()
        assert len(names) == 3 and all(name.endswith(".jsonl") for name in names)
        lines = [json.loads(x) for n in names for x in archive.read(n).decode().splitlines()]
        assert sorted(line["custom_id"] for line in lines) == sorted(f"r{i}" for i in range(10))
        assert client.files.retrieve(done.output_file_id or "").filename.endswith(".zip")


def test_scenario_choice_metadata_then_header_then_rule_then_default() -> None:
    """metadata emulator_scenario beats the header, which beats a file-name rule and the default."""
    rules = [{"file_name_contains": "doomed", "scenario": "all_fail"}]
    with running(scenario="expire", scenario_rules=rules) as emu:
        client = sdk(emu)
        doomed = upload(client, TEN, "run-doomed-1.jsonl")
        plain = upload(client, TEN, "run-1.jsonl")
        header = {"X-Emulator-Scenario": "cancel"}
        meta = {"emulator_scenario": "slow_finalizing"}
        for expected, file_id, options in [
            ("slow_finalizing", doomed.id, {"metadata": meta, "extra_headers": header}),
            ("cancel", doomed.id, {"extra_headers": header}),
            ("all_fail", doomed.id, {}),
            ("expire", plain.id, {}),
        ]:
            created = client.batches.create(
                input_file_id=file_id,
                endpoint="/v1/chat/completions",
                completion_window="24h",
                **options,
            )
            assert emu.store.batches[created.id].plan.scenario == expected
        assert emu.stats()["batches"]["by_scenario"] == {
            "slow_finalizing": 1,
            "cancel": 1,
            "all_fail": 1,
            "expire": 1,
        }
        emu.configure(scenario="normal")
        assert finish(client, submit(client, TEN).id).status == "completed"


def test_an_unknown_scenario_header_is_a_400() -> None:
    """X-Emulator-Scenario naming no scenario: 400, no batch."""
    with running() as emu:
        client = sdk(emu)
        file = upload(client, TEN)
        with pytest.raises(openai.BadRequestError):
            client.batches.create(
                input_file_id=file.id,
                endpoint="/v1/chat/completions",
                completion_window="24h",
                extra_headers={"X-Emulator-Scenario": "meteor"},
            )
        assert emu.stats()["batches"]["created"] == 0


def answers_of(endpoint: str, lines: list[str], **settings: Any) -> dict[str, dict[str, Any]]:
    """Run one batch and return each custom_id's response body."""
    with running(**settings) as emu:
        client = sdk(emu)
        done = finish(client, submit(client, lines, endpoint=endpoint).id)
        assert done.status == "completed", done.errors
        output = jsonl(client, done.output_file_id)
        return {line["custom_id"]: line["response"]["body"] for line in output}


def test_responses_answers_are_real_response_objects() -> None:
    """/v1/responses: a Response with output_text echoing the prompt, status and usage details."""
    bodies = answers_of("/v1/responses", [responses_line("a", "What is  2+2?")])
    response = Response.model_validate(bodies["a"])
    assert response.status == "completed" and response.incomplete_details is None
    assert response.output_text == answer_text("What is  2+2?") == "Echo: What is 2+2?"
    assert response.usage is not None
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens
    assert response.usage.input_tokens_details.cached_tokens == 0
    assert response.usage.output_tokens_details.reasoning_tokens == 0


def test_a_small_max_output_tokens_gives_an_incomplete_response() -> None:
    """max_output_tokens below the answer: status incomplete, reason max_output_tokens, text cut."""
    lines = [responses_line("a", "hello there world", max_output_tokens=3)]
    response = Response.model_validate(answers_of("/v1/responses", lines)["a"])
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.output_text == "Echo: hello"
    assert response.usage is not None and response.usage.output_tokens == 3


def test_chat_answers_are_real_chat_completions_and_max_tokens_cuts_them() -> None:
    """/v1/chat/completions: a ChatCompletion; a small max_tokens gives finish_reason length."""
    bodies = answers_of(
        "/v1/chat/completions",
        [chat_line("a", "tell me"), chat_line("b", "tell me more please", max_tokens=2)],
    )
    whole, cut = (
        ChatCompletion.model_validate(bodies["a"]),
        ChatCompletion.model_validate(bodies["b"]),
    )
    assert whole.choices[0].message.content == "Echo: tell me"
    assert whole.choices[0].finish_reason == "stop"
    assert cut.choices[0].finish_reason == "length"
    assert cut.choices[0].message.content == "Echo:"
    assert whole.usage is not None and whole.usage.completion_tokens == 4
    assert whole.usage.total_tokens == whole.usage.prompt_tokens + whole.usage.completion_tokens


def test_json_mode_answers_valid_json() -> None:
    """json_object and json_schema (chat response_format, responses text.format) answer JSON."""
    schema = {
        "type": "object",
        "properties": {
            "label": {"type": "string", "enum": ["yes", "no"]},
            "score": {"type": "integer", "minimum": 1},
            "reasons": {"type": "array", "items": {"type": "string"}},
            "detail": {"$ref": "#/$defs/detail"},
        },
        "required": ["label", "score", "reasons", "detail"],
        "$defs": {"detail": {"type": "object", "properties": {"ok": {"type": "boolean"}}}},
    }
    chat = answers_of(
        "/v1/chat/completions",
        [
            chat_line("object", "q, in json", response_format={"type": "json_object"}),
            chat_line(
                "schema",
                "q",
                response_format={
                    "type": "json_schema",
                    "json_schema": {"name": "v", "schema": schema, "strict": True},
                },
            ),
        ],
    )
    answered = json.loads(chat["object"]["choices"][0]["message"]["content"])
    assert answered == {"answer": "Echo: q, in json"}
    value = json.loads(chat["schema"]["choices"][0]["message"]["content"])
    assert value == {"label": "yes", "score": 1, "reasons": ["Echo: q"], "detail": {"ok": False}}
    responses = answers_of(
        "/v1/responses",
        [
            responses_line(
                "schema",
                "q",
                text={"format": {"type": "json_schema", "name": "v", "schema": schema}},
            )
        ],
    )
    assert json.loads(Response.model_validate(responses["schema"]).output_text) == value


def test_reasoning_effort_spends_reasoning_tokens() -> None:
    """A reasoning effort adds reasoning tokens to the output tokens, and to the batch usage."""
    lines = [responses_line("a", "q", model="o4-mini", reasoning={"effort": "low"})]
    with running() as emu:
        client = sdk(emu)
        done = finish(client, submit(client, lines, endpoint="/v1/responses").id)
        response = Response.model_validate(
            jsonl(client, done.output_file_id)[0]["response"]["body"]
        )
        assert response.usage is not None
        assert response.usage.output_tokens_details.reasoning_tokens == 8
        assert done.usage is not None and done.usage.output_tokens_details.reasoning_tokens == 8


def test_embeddings_are_deterministic_unit_vectors() -> None:
    """/v1/embeddings: a list of float vectors, the same text always the same vector."""

    def line(custom_id: str, given: Any, **body: Any) -> str:
        request = {"model": "text-embedding-3-small", "input": given, **body}
        return json.dumps(
            {"custom_id": custom_id, "method": "POST", "url": "/v1/embeddings", "body": request}
        )

    bodies = answers_of(
        "/v1/embeddings",
        [line("one", "alpha"), line("two", ["alpha", "beta"], dimensions=4)],
        embedding_dimensions=6,
    )
    one, two = (CreateEmbeddingResponse.model_validate(bodies[k]) for k in ("one", "two"))
    assert one.data[0].embedding == embedding_vector("alpha", 6)
    assert [len(d.embedding) for d in two.data] == [4, 4]
    assert two.data[0].embedding == embedding_vector("alpha", 4)
    assert abs(sum(v * v for v in one.data[0].embedding) - 1) < 1e-9
    assert (one.usage.prompt_tokens, two.usage.prompt_tokens) == (1, 2)


def test_result_lines_are_shuffled_but_deterministic_per_batch() -> None:
    """Output lines are not in input order; the same batch always gives the same file."""
    lines = [chat_line(f"r{i:02}", "q") for i in range(30)]
    with running() as emu:
        client = sdk(emu)
        done = finish(client, submit(client, lines).id)
        order = [line["custom_id"] for line in jsonl(client, done.output_file_id)]
        assert order != sorted(order) and sorted(order) == [f"r{i:02}" for i in range(30)]
        batch = emu.store.batches[done.id]
        requests, _ = check_input_file(
            emu.store.content(batch.input_file_id), batch.endpoint, max_requests=50, max_bytes=10**6
        )
        rerun = run_requests(batch, requests, seed=0, created=0, dims=8)
        assert [line["custom_id"] for line in rerun.output_lines] == order
