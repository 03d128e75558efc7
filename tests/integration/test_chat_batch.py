"""`chat_batch`: empty, one (synchronous), many (a ledger run), resume by run name, adopting an
existing batch, the callback once, per-item errors and a missing result."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import openai
import pytest

from ledger import chat_batch
from ledger.chat.batch import NO_RESULT
from ledger.chat.types import ChatRequest
from ledger.errors import LedgerError

FAST = {"poll_min": 0.0, "poll_max": 0.05}


def questions(count: int) -> list[dict[str, Any]]:
    return [{"prompt": f"What is {i} + {i}?"} for i in range(count)]


def call(tmp_path: Path, emulator: Any, requests: list[Any], **kwargs: Any) -> list[Any]:
    settings = {
        "db": tmp_path / "ledger.db",
        "base_url": emulator.base_url,
        "model": "gpt-4o-mini",
    }
    return chat_batch(requests, **{**settings, **FAST, **kwargs})


def test_an_empty_list_returns_nothing_and_calls_nothing(
    tmp_path: Path, emulator: Any, api_key: str
) -> None:
    """No request: [] and not a single HTTP request."""
    assert call(tmp_path, emulator, []) == []
    assert sum(emulator.stats()["requests"].values()) == 0


def test_a_single_request_takes_the_synchronous_path(
    tmp_path: Path, emulator: Any, api_key: str
) -> None:
    """One request is answered by the chat API at once: no file, no batch."""
    [answer] = call(tmp_path, emulator, [ChatRequest.prompt("Say hi")])
    stats = emulator.stats()
    assert stats["requests"]["chat_completions"] == 1
    assert stats["batches"]["created"] == 0 and stats["files"]["created"] == 0
    assert answer.id == "request-000001" and answer.error is None
    assert isinstance(answer.response, str) and answer.response
    assert answer.usage and answer.usage["output_tokens"] > 0


def test_many_requests_make_one_batch_with_answers_in_input_order(
    tmp_path: Path, emulator: Any, api_key: str
) -> None:
    """Five requests: one batch, the callback once with its id, answers in order."""
    created: list[str] = []
    answers = call(tmp_path, emulator, questions(5), on_batch_created=created.append)
    assert [a.id for a in answers] == [f"request-{i:06d}" for i in range(1, 6)]
    assert all(a.error is None and a.status == "succeeded" for a in answers)
    assert all("What is" in a.response for a in answers)
    assert emulator.stats()["batches"]["created"] == 1
    assert len(created) == 1 and created[0].startswith("batch_")


def test_json_mode_answers_come_back_parsed(tmp_path: Path, emulator: Any, api_key: str) -> None:
    """With JSON mode every response is the parsed JSON value (the prompt says "JSON", as the
    API requires: the build refuses JSON mode without it)."""
    requests = [
        {"prompt": f"{q['prompt']} Answer in JSON.", "json_mode": True} for q in questions(3)
    ]
    answers = call(tmp_path, emulator, requests)
    assert all(isinstance(a.response, dict) for a in answers), answers


def test_calling_again_with_the_same_run_resumes_instead_of_resubmitting(
    tmp_path: Path, emulator: Any, api_key: str
) -> None:
    """A caller that gave up (or crashed) calls again: the same batch, no second one."""
    emulator.configure(stage_seconds=0.0, polls_per_stage=50)  # slow enough to time out
    created: list[str] = []
    with pytest.raises(LedgerError, match="call again to resume"):
        call(
            tmp_path,
            emulator,
            questions(4),
            run="resumable",
            timeout=0.2,
            on_batch_created=created.append,
        )
    assert emulator.stats()["batches"]["created"] == 1 and len(created) == 1
    emulator.configure(polls_per_stage=1)
    answers = call(
        tmp_path, emulator, questions(4), run="resumable", on_batch_created=created.append
    )
    assert [a.status for a in answers] == ["succeeded"] * 4
    assert emulator.stats()["batches"]["created"] == 1
    assert emulator.stats()["files"]["created"] == 1
    assert len(created) == 1, "the callback fired again for the same batch"


def create_batch_elsewhere(emulator: Any, ids: list[str]) -> str:
    """A batch made by another tool with the SDK directly."""
    client = openai.OpenAI(api_key="sk-elsewhere", base_url=emulator.base_url, max_retries=0)
    lines = [
        {
            "custom_id": custom_id,
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
        }
        for custom_id in ids
    ]
    content = "".join(json.dumps(line) + "\n" for line in lines).encode()
    upload = client.files.create(file=("mine.jsonl", io.BytesIO(content)), purpose="batch")
    batch = client.batches.create(
        input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    return batch.id


def test_an_existing_batch_is_adopted_and_a_request_it_lacks_has_no_result(
    tmp_path: Path, emulator: Any, api_key: str
) -> None:
    """existing_batch_id: no new batch; the request the batch never had gets NO_RESULT."""
    batch_id = create_batch_elsewhere(emulator, ["a", "b"])
    created: list[str] = []
    requests = [
        {"id": "a", "prompt": "hi"},
        {"id": "b", "prompt": "hi"},
        {"id": "c", "prompt": "x"},
    ]
    answers = call(
        tmp_path, emulator, requests, existing_batch_id=batch_id, on_batch_created=created.append
    )
    assert [a.id for a in answers] == ["a", "b", "c"]
    assert [a.status for a in answers] == ["succeeded", "succeeded", "missing"]
    assert answers[2].error == NO_RESULT and answers[2].response is None
    assert emulator.stats()["batches"]["created"] == 1
    assert created == []  # adopting is not creating


def test_per_item_errors_are_reported_beside_the_answers(
    tmp_path: Path, emulator: Any, api_key: str
) -> None:
    """Requests that failed carry their error; the others their answer."""
    emulator.configure(scenario="request_failures", failure_rate=0.5)
    answers = call(tmp_path, emulator, questions(12))
    failed = [a for a in answers if a.status == "failed"]
    succeeded = [a for a in answers if a.status == "succeeded"]
    assert failed and succeeded
    assert all(a.error and a.response is None for a in failed)
    assert all(a.error is None and a.response for a in succeeded)


def test_a_single_request_that_fails_returns_its_error(
    tmp_path: Path, emulator: Any, api_key: str
) -> None:
    """The synchronous path reports a non-2xx as the item's error, naming the status."""
    emulator.configure(faults=[{"kind": "http_500", "route": "chat_completions"}])
    [answer] = call(tmp_path, emulator, [ChatRequest.prompt("hi")])
    assert answer.status == "failed" and answer.response is None
    assert answer.error and "500" in answer.error
