"""The real input rules: what create and upload refuse at once, and what fails a batch."""

from __future__ import annotations

import io
import json
from typing import Any, cast

import openai
import pytest
from support.emulator_support import chat_line, finish, running, sdk, submit, upload

from ledger.emulator.validation import check_input_file

VALID = chat_line("ok", "fine")


def request_line(**fields: Any) -> str:
    """A chat request line with some fields replaced (None removes one)."""
    line = json.loads(VALID)
    for name, value in fields.items():
        if value is None:
            line.pop(name)
        else:
            line[name] = value
    return json.dumps(line)


def body(**fields: Any) -> dict[str, Any]:
    """A chat body with some fields replaced (None removes one)."""
    value = json.loads(VALID)["body"]
    for name, given in fields.items():
        if given is None:
            value.pop(name)
        else:
            value[name] = given
    return value


# Each case: the bad line (placed as line 2, after a valid one) and the error it must produce.
LINE_RULES: dict[str, tuple[str, str, str | None]] = {
    "invalid json": ('{"custom_id": "x", ', "invalid_json_line", None),
    "not utf-8": ('{"custom_id": "\udcff"}', "invalid_json_line", None),
    "not an object": ("[1, 2]", "invalid_request", None),
    "no custom_id": (request_line(custom_id=None), "missing_required_parameter", "custom_id"),
    "no method": (request_line(method=None), "missing_required_parameter", "method"),
    "no url": (request_line(url=None), "missing_required_parameter", "url"),
    "no body": (request_line(body=None), "missing_required_parameter", "body"),
    "custom_id not a string": (request_line(custom_id=7), "invalid_request", "custom_id"),
    "method GET": (request_line(method="GET"), "invalid_request", "method"),
    "another url": (request_line(url="/v1/embeddings"), "invalid_url", "url"),
    "body not an object": (request_line(body="x"), "invalid_request", "body"),
    "no model": (request_line(body=body(model=None)), "invalid_request", "body.model"),
    "streaming": (request_line(body=body(stream=True)), "streaming_unsupported", "body.stream"),
    "no messages": (request_line(body=body(messages=None)), "invalid_request", "body.messages"),
    "duplicate custom_id": (chat_line("ok", "again"), "duplicate_custom_id", "custom_id"),
    "second model": (chat_line("other", "q", model="gpt-4.1"), "mismatched_model", "body.model"),
}


@pytest.mark.parametrize("case", LINE_RULES, ids=str)
def test_each_line_rule_fails_the_batch_with_its_code_and_line(case: str) -> None:
    """The bad line 2 fails the batch: status failed, failed_at, one error with code and line."""
    bad, code, param = LINE_RULES[case]
    raw = bad.encode("utf-8", "surrogateescape") if "\udcff" in bad else bad.encode()
    with running() as emu:
        client = sdk(emu)
        content = VALID.encode() + b"\n" + raw + b"\n" + chat_line("last", "q").encode()
        file = client.files.create(file=("in.jsonl", io.BytesIO(content)), purpose="batch")
        created = client.batches.create(
            input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        failed = client.batches.retrieve(created.id)
        assert failed.status == "failed" and failed.failed_at is not None
        assert failed.errors is not None and failed.errors.object == "list"
        assert [(e.code, e.line, e.param) for e in failed.errors.data or []] == [(code, 2, param)]
        assert failed.in_progress_at is None and failed.output_file_id is None


def test_every_bad_line_is_reported_blank_lines_skipped() -> None:
    """Errors list each bad line with its physical line number; blank lines are not requests."""
    with running() as emu:
        client = sdk(emu)
        lines = [VALID, "", request_line(custom_id=None), "  ", "{oops", request_line(url="/x")]
        failed = finish(client, submit(client, lines).id)
        assert failed.errors is not None
        found = [(e.code, e.line) for e in failed.errors.data or []]
        assert found == [
            ("missing_required_parameter", 3),
            ("invalid_json_line", 5),
            ("invalid_url", 6),
        ]


def test_too_many_requests_fails_the_batch() -> None:
    """More lines than max_requests_per_batch: failed with too_many_requests."""
    with running(max_requests_per_batch=3) as emu:
        client = sdk(emu)
        failed = finish(client, submit(client, [chat_line(f"r{i}", "q") for i in range(4)]).id)
        assert failed.errors is not None
        assert [e.code for e in failed.errors.data or []] == ["too_many_requests"]
        assert finish(
            client, submit(client, [chat_line(f"r{i}", "q") for i in range(3)]).id
        ).status == ("completed")


def test_a_file_over_the_size_limit_fails_the_batch() -> None:
    """An input file over max_batch_file_bytes: failed with file_too_large."""
    with running(max_batch_file_bytes=100) as emu:
        client = sdk(emu)
        failed = finish(client, submit(client, [chat_line("a", "x" * 200)]).id)
        assert failed.errors is not None
        assert [e.code for e in failed.errors.data or []] == ["file_too_large"]


def test_an_input_of_blank_lines_is_an_empty_file() -> None:
    """Only blank lines: one empty_file error (the upload check keeps such files out anyway)."""
    requests, errors = check_input_file(
        b"\n  \n", "/v1/chat/completions", max_requests=10, max_bytes=1000
    )
    assert requests == []
    assert [e["code"] for e in errors] == ["empty_file"]


CREATE_RULES: dict[str, tuple[dict[str, Any], str, str | None]] = {
    "unknown endpoint": ({"endpoint": "/v1/images/nope"}, "endpoint", "invalid_value"),
    "window 48h": ({"completion_window": "48h"}, "completion_window", "invalid_value"),
    "no input file": ({"input_file_id": None}, "input_file_id", "missing_required_parameter"),
    "17 metadata pairs": (
        {"metadata": {f"k{i}": "v" for i in range(17)}},
        "metadata",
        "object_above_max_properties",
    ),
    "long metadata key": ({"metadata": {"k" * 65: "v"}}, "metadata", "string_above_max_length"),
    "long metadata value": (
        {"metadata": {"k": "v" * 513}},
        "metadata.k",
        "string_above_max_length",
    ),
    "metadata list value": ({"metadata": {"tags": ["a"]}}, "metadata.tags", "invalid_type"),
    "bad output expiry": (
        {"output_expires_after": {"anchor": "created_at", "seconds": 60}},
        "output_expires_after.seconds",
        "invalid_value",
    ),
    "unknown scenario": (
        {"metadata": {"emulator_scenario": "meteor"}},
        "metadata.emulator_scenario",
        "invalid_value",
    ),
    "unknown field": ({"priority": "high"}, "priority", "unknown_parameter"),
}


@pytest.mark.parametrize("case", CREATE_RULES, ids=str)
def test_create_refuses_what_the_api_refuses_at_once(case: str) -> None:
    """Bad create parameters: 400 BadRequestError naming the parameter; no batch is made."""
    changes, param, code = CREATE_RULES[case]
    with running() as emu:
        client = sdk(emu)
        file = upload(client, [VALID])
        params: dict[str, Any] = {
            "input_file_id": file.id,
            "endpoint": "/v1/chat/completions",
            "completion_window": "24h",
        }
        params.update(changes)
        params = {k: v for k, v in params.items() if v is not None}
        # A raw post: the SDK's typed create would not send some of these.
        with pytest.raises(openai.BadRequestError) as caught:
            client.post("/batches", body=params, cast_to=dict)
        error = caught.value.body
        assert isinstance(error, dict)
        assert (error["param"], error["code"], error["type"]) == (
            param,
            code,
            "invalid_request_error",
        )
        assert emu.stats()["batches"]["created"] == 0


def test_create_refuses_unknown_and_non_batch_files() -> None:
    """An unknown input_file_id, or a file of another purpose: 400 naming input_file_id."""
    with running() as emu:
        client = sdk(emu)
        other = client.files.create(
            file=("x.jsonl", io.BytesIO(VALID.encode())), purpose="user_data"
        )
        for file_id in ("file-unknown", other.id):
            with pytest.raises(openai.BadRequestError) as caught:
                client.batches.create(
                    input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h"
                )
            assert isinstance(caught.value.body, dict)
            assert caught.value.body["param"] == "input_file_id"


def test_an_unknown_file_can_fail_the_batch_instead() -> None:
    """unknown_input_file="fail": the batch is created, then fails with invalid_request."""
    with running(unknown_input_file="fail") as emu:
        client = sdk(emu)
        created = client.batches.create(
            input_file_id="file-unknown", endpoint="/v1/chat/completions", completion_window="24h"
        )
        failed = finish(client, created.id)
        assert failed.errors is not None
        assert [(e.code, e.param) for e in failed.errors.data or []] == [
            ("invalid_request", "file_id")
        ]


UPLOAD_RULES: dict[str, tuple[str, bytes, str]] = {
    "not .jsonl": ("input.json", VALID.encode(), "batch"),
    "empty": ("input.jsonl", b"", "batch"),
    "first line not json": ("input.jsonl", b"{oops\n" + VALID.encode(), "batch"),
    "unknown purpose": ("input.jsonl", VALID.encode(), "batch_output"),
}


@pytest.mark.parametrize("case", UPLOAD_RULES, ids=str)
def test_upload_refuses_what_the_api_refuses(case: str) -> None:
    """Batch files must be .jsonl starting with a JSON line; purposes are the uploadable ones."""
    name, content, purpose = UPLOAD_RULES[case]
    with running() as emu:
        client = sdk(emu)
        with pytest.raises(openai.BadRequestError):
            client.files.create(file=(name, io.BytesIO(content)), purpose=cast(Any, purpose))
        assert emu.stats()["files"]["created"] == 0


def test_an_upload_over_the_size_limit_is_refused() -> None:
    """A file larger than max_upload_bytes: 400, nothing stored."""
    with running(max_upload_bytes=50) as emu:
        client = sdk(emu)
        with pytest.raises(openai.BadRequestError):
            upload(client, [VALID])
        assert client.files.list().data == []
