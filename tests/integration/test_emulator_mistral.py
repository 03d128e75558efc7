"""The emulator's Mistral routes as the `mistralai` SDK sees them: files, jobs in Mistral's shape
and words, what a create refuses, cancel's two steps, and errors in Mistral's flat form."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from mistralai.client import Mistral, errors

from ledger.emulator import Emulator, EmulatorConfig

LINE = {"custom_id": "a", "body": {"model": "mistral-small-latest", "messages": []}}


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig(polls_per_stage=1, api_key="right")).start() as running:
        yield running


def client(emu: Emulator, key: str = "right") -> Mistral:
    return Mistral(api_key=key, server_url=emu.url + "/mistral", retry_config=None)


def upload(sdk: Mistral, name: str = "in.jsonl") -> Any:
    content = io.BytesIO((json.dumps(LINE) + "\n").encode())
    return sdk.files.upload(file={"file_name": name, "content": content}, purpose="batch")


def test_files_upload_list_by_search_and_retrieve(emu: Emulator) -> None:
    """An upload is a Mistral file; `search` narrows the list; retrieve says it is not deleted."""
    sdk = client(emu)
    made = upload(sdk, "ledger-job1.jsonl")
    upload(sdk, "other.jsonl")
    assert (made.purpose, made.sample_type, made.source, made.num_lines) == (
        "batch",
        "batch_request",
        "upload",
        1,
    )
    listed = sdk.files.list(purpose="batch", search="ledger-job1")
    assert [f.id for f in listed.data] == [made.id] and listed.total == 1
    assert sdk.files.retrieve(file_id=made.id).deleted is False


@pytest.mark.parametrize(
    ("change", "word"),
    [
        ({"model": None}, "model"),
        ({"timeout_hours": 0}, "timeout_hours"),
        ({"two_files": True}, "one input file"),
    ],
)
def test_a_create_refuses_what_the_emulator_cannot_run(
    emu: Emulator, change: dict[str, Any], word: str
) -> None:
    """No model, a timeout outside 1..168 h, or several input files: 400, no job."""
    sdk = client(emu)
    file_id = upload(sdk).id
    params: dict[str, Any] = {
        "input_files": [file_id, file_id] if change.get("two_files") else [file_id],
        "model": "mistral-small-latest",
        "endpoint": "/v1/chat/completions",
        "timeout_hours": 24,
    }
    params.update({k: v for k, v in change.items() if k != "two_files"})
    with pytest.raises(errors.SDKError) as refused:
        sdk.batch.jobs.create(**{k: v for k, v in params.items() if v is not None})
    assert refused.value.status_code == 400 and word in refused.value.body
    assert emu.stats()["batches"]["created"] == 0


def test_a_job_is_listed_newest_first_and_cancelled_in_two_steps(emu: Emulator) -> None:
    """QUEUED at create; a cancel asks (CANCELLATION_REQUESTED), the next read has CANCELLED."""
    sdk = client(emu)
    file_id = upload(sdk).id
    jobs = [
        sdk.batch.jobs.create(
            input_files=[file_id],
            model="mistral-small-latest",
            endpoint="/v1/chat/completions",
            metadata={"n": str(n)},
        )
        for n in range(2)
    ]
    assert jobs[0].status == "QUEUED" and jobs[0].input_files == [file_id]
    listed = sdk.batch.jobs.list(page=0, page_size=1)
    assert listed.total == 2 and [j.id for j in listed.data or []] == [jobs[1].id]
    asked = sdk.batch.jobs.cancel(job_id=jobs[0].id)
    assert asked.status == "CANCELLATION_REQUESTED"
    assert sdk.batch.jobs.get(job_id=jobs[0].id).status == "CANCELLED"


def test_errors_are_mistrals_flat_objects(emu: Emulator) -> None:
    """An unknown job is 404, a wrong key 401, each `{object: error, message, ...}`."""
    with pytest.raises(errors.SDKError) as missing:
        client(emu).batch.jobs.get(job_id="nope")
    assert missing.value.status_code == 404
    assert json.loads(missing.value.body)["object"] == "error"
    with pytest.raises(errors.SDKError) as refused:
        client(emu, "wrong").batch.jobs.list()
    assert refused.value.status_code == 401
