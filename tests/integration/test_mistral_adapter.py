"""The Mistral batch adapter step by step, over real HTTP: the `mistralai` SDK against the
emulator's `/mistral/v1` routes. Every status word is mapped, uploads and jobs are found again
by their tags, and each kind of server trouble is sorted by what the reconciler must do."""

from __future__ import annotations

import json
import logging
import time
import typing
import uuid
from pathlib import Path
from typing import Any

import pytest
from mistralai.client.models import BatchJobStatus

from adapters.base import FatalError, NotFound, OutcomeUnknown, TransientError
from adapters.mistral.batch import MistralBatchProvider, server_url
from adapters.mistral.lines import upload_line
from adapters.mistral.statuses import STATUS_TO_STATE
from ledger.core.states import State
from ledger.emulator import Emulator, EmulatorConfig

KEY = "mistral-LEAKCANARY-adapter-0123456789"
MODEL = "mistral-small-latest"


def provider(emu: Emulator, key: str = KEY) -> MistralBatchProvider:
    return MistralBatchProvider(base_url=emu.url + "/mistral/v1", api_key=key)


def write_shard(root: Path, ids: list[str]) -> Path:
    shard = root / "shard.jsonl"
    lines = [
        {
            "custom_id": cid,
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": MODEL, "messages": [{"role": "user", "content": f"say {cid}"}]},
        }
        for cid in ids
    ]
    shard.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return shard


def tags(token: str) -> dict[str, str]:
    return {"ledger_job": "7", "ledger_token": token}


def create(adapter: MistralBatchProvider, file_id: str, token: str) -> Any:
    return adapter.create_batch(
        input_file_id=file_id, endpoint="/v1/chat/completions", metadata=tags(token)
    )


def test_every_status_word_of_the_sdk_has_a_ledger_state() -> None:
    """QUEUED ... CANCELLED: no status the SDK names falls through to 'unknown'."""
    words = typing.get_args(typing.get_args(BatchJobStatus)[0])
    assert set(words) == set(STATUS_TO_STATE)
    assert STATUS_TO_STATE["TIMEOUT_EXCEEDED"] is State.EXPIRED
    assert STATUS_TO_STATE["CANCELLATION_REQUESTED"] is State.IN_PROGRESS


def test_lines_go_up_without_method_and_url_and_the_sdk_gets_the_root_without_v1() -> None:
    """`{custom_id, body}` alone; `https://api.mistral.ai/v1` -> `https://api.mistral.ai`."""
    line = json.dumps({"custom_id": "a", "method": "POST", "url": "/v1/x", "body": {"m": 1}})
    assert json.loads(upload_line(line.encode())) == {"custom_id": "a", "body": {"m": 1}}
    assert server_url("https://api.mistral.ai/v1/") == "https://api.mistral.ai"
    assert server_url(None) is None


def test_a_job_runs_from_upload_to_downloaded_results(emu: Emulator, tmp_path: Path) -> None:
    """Upload, create (model read from the file), poll to SUCCESS, download checked by size."""
    adapter = provider(emu)
    remote = adapter.upload_input(write_shard(tmp_path, ["a", "b"]), filename="ledger-job7.jsonl")
    job = create(adapter, remote.id, uuid.uuid4().hex)
    assert (job.state, job.provider_status, job.input_file_id) == (
        State.SUBMITTED,
        "QUEUED",
        remote.id,
    )
    while job.provider_status != "SUCCESS":
        job = adapter.get_batch(job.id)
    assert job.state is State.COMPLETED and job.requests_completed == 2
    out = tmp_path / "out.jsonl"
    assert job.output_file_id is not None
    size = adapter.download_file(job.output_file_id, out)
    assert size == out.stat().st_size
    assert sorted(json.loads(line)["custom_id"] for line in out.read_text().splitlines()) == [
        "a",
        "b",
    ]
    assert adapter.cancel_batch(job.id).provider_status == "SUCCESS"  # ended: nothing to cancel


def test_uploads_are_found_by_their_whole_name(emu: Emulator, tmp_path: Path) -> None:
    """A name that merely contains the job's name is not the job's upload."""
    adapter = provider(emu)
    shard = write_shard(tmp_path, ["a"])
    mine = adapter.upload_input(shard, filename="ledger-job7.jsonl")
    adapter.upload_input(shard, filename="old-ledger-job7.jsonl")
    assert [f.id for f in adapter.find_uploads("ledger-job7.jsonl")] == [mine.id]
    adapter.delete_file(mine.id)
    adapter.delete_file(mine.id)  # already gone: no error
    assert adapter.find_uploads("ledger-job7.jsonl") == []


def test_a_dropped_create_is_outcome_unknown_and_then_adopted(
    emu: Emulator, tmp_path: Path
) -> None:
    """The reply to a create is lost: OutcomeUnknown; the job is found by its metadata later."""
    adapter = provider(emu)
    remote = adapter.upload_input(write_shard(tmp_path, ["a"]), filename="ledger-job7.jsonl")
    emu.configure(faults=[{"kind": "drop_response", "route": "create_batch", "times": 1}])
    token = uuid.uuid4().hex
    with pytest.raises(OutcomeUnknown):
        create(adapter, remote.id, token)
    made = next(iter(emu.store.batches))
    since = int(time.time()) - 60
    found = adapter.find_batches(input_file_id=remote.id, metadata=tags(token), created_after=since)
    assert [b.id for b in found] == [made]
    other = adapter.find_batches(
        input_file_id=remote.id, metadata=tags(uuid.uuid4().hex), created_after=since
    )
    assert other == []
    later = adapter.find_batches(
        input_file_id=remote.id, metadata=tags(token), created_after=int(time.time()) + 60
    )
    assert later == []


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ({"kind": "http_500", "route": "create_batch"}, OutcomeUnknown),
        ({"kind": "http_429", "route": "create_batch", "seconds": 3}, TransientError),
        ({"kind": "drop_response", "route": "upload_file"}, OutcomeUnknown),
    ],
)
def test_server_trouble_is_transient_or_unknown(
    emu: Emulator, tmp_path: Path, fault: dict[str, Any], error: type[Exception]
) -> None:
    """A 500 or a lost reply may have acted (OutcomeUnknown); a 429 did not, and says when."""
    adapter = provider(emu)
    shard = write_shard(tmp_path, ["a"])
    remote = adapter.upload_input(shard, filename="ledger-job7.jsonl")
    emu.configure(faults=[fault])
    with pytest.raises(error) as raised:
        if fault["route"] == "upload_file":
            adapter.upload_input(shard, filename="ledger-job8.jsonl")
        else:
            create(adapter, remote.id, uuid.uuid4().hex)
    assert type(raised.value) is error
    if fault["kind"] == "http_429":
        assert isinstance(raised.value, TransientError) and raised.value.retry_after == 3


def test_a_cut_download_is_transient(emu: Emulator, tmp_path: Path) -> None:
    """Fewer bytes than the file holds: TransientError, so the download is tried again."""
    adapter = provider(emu)
    remote = adapter.upload_input(write_shard(tmp_path, ["a", "b"]), filename="ledger-job7.jsonl")
    job = create(adapter, remote.id, uuid.uuid4().hex)
    while job.output_file_id is None:
        job = adapter.get_batch(job.id)
    emu.configure(faults=[{"kind": "truncate_download", "fraction": 0.5, "times": 1}])
    with pytest.raises(TransientError):
        adapter.download_file(job.output_file_id, tmp_path / "out.jsonl")
    assert adapter.download_file(job.output_file_id, tmp_path / "out.jsonl") > 0


def test_unknown_jobs_are_not_found_and_refused_keys_fatal_and_scrubbed(
    tmp_path: Path,
) -> None:
    """404 is NotFound; 401 pauses everything (FatalError) and never shows the key."""
    with Emulator(EmulatorConfig(polls_per_stage=1, api_key="the-right-key")).start() as emu:
        with pytest.raises(NotFound):
            provider(emu, "the-right-key").get_batch("batch_nothing")
        with pytest.raises(NotFound):
            provider(emu, "the-right-key").download_file("file-nothing", tmp_path / "x")
        with pytest.raises(FatalError) as refused:
            provider(emu).find_uploads("ledger-job7.jsonl")
    assert "401" in str(refused.value) and KEY not in str(refused.value)


def test_the_sdk_logs_nothing_even_with_its_debug_variable(
    emu: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """$MISTRAL_DEBUG makes the SDK log every request's headers and body (prompts, ids, and a
    masked key); the adapter keeps the SDK silent whatever the environment says."""
    monkeypatch.setenv("MISTRAL_DEBUG", "1")
    caplog.set_level(logging.DEBUG)
    adapter = provider(emu)
    remote = adapter.upload_input(write_shard(tmp_path, ["a"]), filename="ledger-job7.jsonl")
    create(adapter, remote.id, uuid.uuid4().hex)
    assert [r.getMessage()[:40] for r in caplog.records if r.name.startswith("mistralai")] == []
    assert KEY not in caplog.text
