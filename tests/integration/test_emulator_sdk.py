"""The official SDK drives every emulator route and gets its own typed objects back."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import httpx2
import openai
import pytest
from openai.types import Batch, FileDeleted, FileObject
from support.emulator_support import (
    chat_line,
    finish,
    jsonl,
    running,
    sdk,
    statuses,
    submit,
    upload,
)

from ledger.emulator import answer_text


def test_upload_returns_a_file_object_with_the_right_fields() -> None:
    """files.create stores the bytes and answers a FileObject: batch files expire in 30 days."""
    with running() as emu:
        client = sdk(emu)
        file = upload(client, [chat_line("a", "hi")], name="shard-0001.jsonl")
        assert isinstance(file, FileObject)
        assert file.id.startswith("file-")
        assert (file.filename, file.purpose, file.status) == (
            "shard-0001.jsonl",
            "batch",
            "processed",
        )
        assert file.bytes == len(chat_line("a", "hi")) + 1
        assert file.expires_at == file.created_at + 30 * 24 * 3600
        assert client.files.retrieve(file.id) == file
        assert client.files.content(file.id).text == chat_line("a", "hi") + "\n"


def test_upload_keeps_expires_after_and_odd_file_names() -> None:
    """expires_after (sent as form fields) sets expires_at; quotes and unicode in names survive."""
    with running() as emu:
        client = sdk(emu)
        name = 'job "17" \u00e9 \u4e2d\\x.jsonl'
        file = client.files.create(
            file=(name, io.BytesIO((chat_line("a", "hi") + "\n").encode())),
            purpose="batch",
            expires_after={"anchor": "created_at", "seconds": 7200},
        )
        assert file.filename == name
        assert file.expires_at == file.created_at + 7200
        other = client.files.create(file=("notes.txt", io.BytesIO(b"x")), purpose="user_data")
        assert other.expires_at is None


def test_a_batch_runs_to_completion_with_every_field_filled() -> None:
    """create -> validating, then in_progress, finalizing, completed with counts, usage, files."""
    with running() as emu:
        client = sdk(emu)
        lines = [chat_line(f"r{i}", f"question {i}") for i in range(5)]
        created = submit(client, lines, metadata={"ledger_job": "17"})
        assert isinstance(created, Batch)
        assert created.status == "validating"
        assert created.id.startswith("batch_")
        assert created.expires_at == created.created_at + 24 * 3600
        assert created.metadata == {"ledger_job": "17"}
        assert created.output_file_id is None and created.errors is None
        assert statuses(client, created.id) == ["in_progress", "finalizing", "completed"]
        done = client.batches.retrieve(created.id)
        assert done.model == "gpt-4o-mini"
        assert done.request_counts is not None
        assert done.request_counts.model_dump() == {"total": 5, "completed": 5, "failed": 0}
        for stamp in ("in_progress_at", "finalizing_at", "completed_at"):
            assert getattr(done, stamp) >= done.created_at
        assert done.failed_at is done.cancelled_at is done.expired_at is None
        assert done.error_file_id is None
        assert done.usage is not None
        output = jsonl(client, done.output_file_id)
        assert done.usage.input_tokens == sum(
            line["response"]["body"]["usage"]["prompt_tokens"] for line in output
        )
        assert done.usage.total_tokens == done.usage.input_tokens + done.usage.output_tokens
        assert sorted(line["custom_id"] for line in output) == [f"r{i}" for i in range(5)]
        for line in output:
            assert line["id"].startswith("batch_req_") and line["error"] is None
            assert line["response"]["status_code"] == 200
            content = line["response"]["body"]["choices"][0]["message"]["content"]
            assert content == answer_text(f"question {line['custom_id'][1:]}")
        result = client.files.retrieve(done.output_file_id or "")
        assert (result.purpose, result.filename) == ("batch_output", f"{done.id}_output.jsonl")


def test_the_time_clock_moves_batches_by_wall_time() -> None:
    """With stage_seconds, a batch read after three stages is completed, timestamps in order."""
    with running(polls_per_stage=None, stage_seconds=0.02) as emu:
        client = sdk(emu)
        batch = submit(client, [chat_line("a", "hi")])
        time.sleep(0.1)
        done = client.batches.retrieve(batch.id)
        assert done.status == "completed"
        assert done.created_at <= (done.in_progress_at or 0) <= (done.completed_at or 0)


def test_polls_per_stage_counts_gets_of_that_batch() -> None:
    """polls_per_stage=2: two GETs per stage; a GET of another batch does not count."""
    with running(polls_per_stage=2) as emu:
        client = sdk(emu)
        first = submit(client, [chat_line("a", "hi")])
        second = submit(client, [chat_line("a", "hi")])
        seen = [client.batches.retrieve(first.id).status for _ in range(4)]
        assert seen == ["validating", "in_progress", "in_progress", "finalizing"]
        assert client.batches.retrieve(second.id).status == "validating"


def test_files_list_pages_filters_and_orders() -> None:
    """files.list: purpose filter, asc/desc order, limit pages that the SDK auto-paginates."""
    with running() as emu:
        client = sdk(emu)
        ids = [upload(client, [chat_line("a", "hi")], f"f{i}.jsonl").id for i in range(5)]
        client.files.create(file=("x.txt", io.BytesIO(b"x")), purpose="user_data")
        batch_files = client.files.list(purpose="batch", limit=2)
        assert [f.id for f in batch_files] == ids[::-1]  # newest first; all pages
        assert len(batch_files.data) == 2 and batch_files.has_more
        ascending = client.files.list(purpose="batch", order="asc", limit=3)
        assert [f.id for f in ascending] == ids
        assert len(client.files.list().data) == 6
        client.files.delete(ids[2])
        assert ids[2] not in [f.id for f in client.files.list(purpose="batch")]


def test_a_cursor_naming_a_deleted_file_still_pages_on() -> None:
    """Deleting the file a cursor names does not lose the rest of the list."""
    with running() as emu:
        client = sdk(emu)
        ids = [upload(client, [chat_line("a", "hi")], f"f{i}.jsonl").id for i in range(4)]
        first = client.files.list(order="asc", limit=2)
        client.files.delete(ids[1])
        rest = client.files.list(order="asc", limit=2, after=first.data[-1].id)
        assert [f.id for f in rest.data] == ids[2:]


def test_batches_list_is_newest_first_in_cursor_pages() -> None:
    """batches.list pages with after/limit/has_more; the SDK's iterator walks all pages."""
    with running() as emu:
        client = sdk(emu)
        file = upload(client, [chat_line("a", "hi")])
        ids = [
            client.batches.create(
                input_file_id=file.id,
                endpoint="/v1/chat/completions",
                completion_window="24h",
                metadata={"n": str(n)},
            ).id
            for n in range(7)
        ]
        page = client.batches.list(limit=3)
        assert [b.id for b in page.data] == ids[::-1][:3]
        assert page.has_more
        assert [b.id for b in page] == ids[::-1]
        assert [b.metadata for b in client.batches.list(limit=100)][-1] == {"n": "0"}
        raw = client.batches.with_raw_response.list(limit=3, after=ids[3])
        body = json.loads(raw.text)
        assert body["object"] == "list"
        assert (body["first_id"], body["last_id"], body["has_more"]) == (ids[2], ids[0], False)


def test_downloads_stream_to_file_and_to_memory(tmp_path: Path) -> None:
    """with_streaming_response: iter_bytes and stream_to_file; files.content reads it whole."""
    with running() as emu:
        client = sdk(emu)
        done = finish(client, submit(client, [chat_line(f"r{i}", "x" * 50) for i in range(40)]).id)
        whole = client.files.content(done.output_file_id or "").content
        with client.files.with_streaming_response.content(done.output_file_id or "") as response:
            assert b"".join(response.iter_bytes(chunk_size=100)) == whole
        with client.files.with_streaming_response.content(done.output_file_id or "") as response:
            response.stream_to_file(tmp_path / "out.jsonl")
        assert (tmp_path / "out.jsonl").read_bytes() == whole
        assert len(whole.splitlines()) == 40


def test_cancel_goes_through_cancelling_to_cancelled() -> None:
    """batches.cancel answers cancelling; the next stage is cancelled; a repeat is harmless."""
    with running() as emu:
        client = sdk(emu)
        batch = submit(client, [chat_line(f"r{i}", "q") for i in range(4)])
        assert client.batches.retrieve(batch.id).status == "in_progress"
        cancelling = client.batches.cancel(batch.id)
        assert cancelling.status == "cancelling" and cancelling.cancelling_at is not None
        assert client.batches.cancel(batch.id).status == "cancelling"
        cancelled = client.batches.retrieve(batch.id)
        assert cancelled.status == "cancelled" and cancelled.cancelled_at is not None
        assert client.batches.cancel(batch.id).status == "cancelled"
        counts = cancelled.request_counts
        assert counts is not None and (counts.total, counts.completed) == (4, 2)
        errors = jsonl(client, cancelled.error_file_id)
        assert {e["error"]["code"] for e in errors} == {"batch_cancelled"}
        assert all(e["response"] is None for e in errors) and len(errors) == 2


def test_cancel_while_validating_runs_nothing() -> None:
    """A batch cancelled before it was validated ends with no files and no counts."""
    with running() as emu:
        client = sdk(emu)
        batch = submit(client, [chat_line("a", "q")])
        assert client.batches.cancel(batch.id).status == "cancelling"
        done = client.batches.retrieve(batch.id)
        assert done.status == "cancelled"
        assert done.output_file_id is None and done.error_file_id is None


def test_cancelling_a_finished_batch_is_a_409() -> None:
    """Cancel of a completed batch: 409 ConflictError in the API's error shape."""
    with running() as emu:
        client = sdk(emu)
        done = finish(client, submit(client, [chat_line("a", "q")]).id)
        with pytest.raises(openai.ConflictError) as caught:
            client.batches.cancel(done.id)
        assert caught.value.status_code == 409
        assert caught.value.body == {
            "message": "Cannot cancel a batch with status 'completed'.",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }


def test_delete_answers_file_deleted_and_the_file_is_gone() -> None:
    """files.delete answers FileDeleted; retrieve, content and delete then answer 404."""
    with running() as emu:
        client = sdk(emu)
        file = upload(client, [chat_line("a", "q")])
        deleted = client.files.delete(file.id)
        assert isinstance(deleted, FileDeleted)
        assert (deleted.id, deleted.deleted, deleted.object) == (file.id, True, "file")
        for call in (client.files.retrieve, client.files.content, client.files.delete):
            with pytest.raises(openai.NotFoundError) as caught:
                call(file.id)
            assert caught.value.body == {
                "message": f"No such File object: {file.id}",
                "type": "invalid_request_error",
                "param": "id",
                "code": None,
            }


def test_deleting_an_input_file_does_not_break_its_batch() -> None:
    """A batch keeps the input it was created with, as the real service does."""
    with running() as emu:
        client = sdk(emu)
        batch = submit(client, [chat_line("a", "q"), chat_line("b", "r")])
        client.files.delete(batch.input_file_id)
        done = finish(client, batch.id)
        assert done.status == "completed" and len(jsonl(client, done.output_file_id)) == 2


def test_unknown_batch_is_a_404() -> None:
    """retrieve and cancel of an unknown batch: NotFoundError."""
    with running() as emu:
        client = sdk(emu)
        with pytest.raises(openai.NotFoundError):
            client.batches.retrieve("batch_nope")
        with pytest.raises(openai.NotFoundError):
            client.batches.cancel("batch_nope")


def test_a_missing_key_is_a_401_and_a_wrong_one_too_when_a_key_is_set() -> None:
    """No bearer key: 401. With api_key configured, another key: 401 invalid_api_key."""
    with running(api_key="sk-right") as emu:
        response = httpx2.get(emu.base_url + "/files")
        assert response.status_code == 401
        assert response.json()["error"]["code"] is None
        assert "didn't provide an API key" in response.json()["error"]["message"]
        wrong = openai.OpenAI(api_key="sk-wrong", base_url=emu.base_url, max_retries=0)
        with pytest.raises(openai.AuthenticationError) as caught:
            wrong.files.list()
        assert isinstance(caught.value.body, dict)
        assert caught.value.body["code"] == "invalid_api_key"
        right = openai.OpenAI(api_key="sk-right", base_url=emu.base_url, max_retries=0)
        assert right.files.list().data == []


def test_unknown_routes_are_404_in_the_api_shape() -> None:
    """An unknown path or method answers 404 with the API's "Invalid URL" error."""
    with running() as emu:
        headers = {"Authorization": "Bearer sk-test"}
        for method, path in (("GET", "/v1/nothing"), ("PUT", "/v1/files"), ("PATCH", "/")):
            response = httpx2.request(method, emu.url + path, headers=headers)
            assert response.status_code == 404
            assert response.json() == {
                "error": {
                    "message": f"Invalid URL ({method} {path})",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": None,
                }
            }


def test_responses_carry_a_request_id_header() -> None:
    """Each answer has an x-request-id, which the SDK exposes as _request_id."""
    with running() as emu:
        page = sdk(emu).files.list()
        assert page._request_id and page._request_id.startswith("req_")
