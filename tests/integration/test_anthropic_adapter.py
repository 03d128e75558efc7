"""The Anthropic adapter against the emulator: request sets, create, status mapping, results
download, adoption after a lost create, and errors sorted (and scrubbed) as the reconciler needs."""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest
from anthropic.types.messages import MessageBatchRequestCounts

from adapters import get_provider
from adapters.anthropic.batch import AnthropicBatchProvider, ledger_state
from adapters.base import FatalError, NotFound, OutcomeUnknown, Rejected, TransientError, scrub
from ledger.core.states import State
from ledger.emulator import Emulator, EmulatorConfig

KEY = "sk-ant-api03-LEAKCANARY-adapter-0123456789"


def provider(emulator: Emulator) -> AnthropicBatchProvider:
    return AnthropicBatchProvider(base_url=emulator.url, api_key=KEY, timeout=10.0)


def write_shard(root: Path, custom_ids: list[str], run: str = "r") -> Path:
    """A chat shard under runs/<run>/batch_inputs/, as the ledger lays them out."""
    path = root / "runs" / run / "batch_inputs" / "shard-0001.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        {
            "custom_id": custom_id,
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": "claude-sonnet-4-5",
                "messages": [{"role": "user", "content": f"say {custom_id}"}],
            },
        }
        for custom_id in custom_ids
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def until_ended(adapter: AnthropicBatchProvider, batch_id: str) -> None:
    """Poll (each GET is a stage on the emulator's poll clock) until the batch has ended."""
    for _ in range(10):
        if adapter.get_batch(batch_id).provider_status == "ended":
            return
    raise AssertionError(f"{batch_id} never ended")


def token() -> str:
    return uuid.uuid4().hex


def tags(value: str) -> dict[str, str]:
    return {"ledger_job": "1", "ledger_token": value}


def test_the_registry_knows_anthropic_and_the_key_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """get_provider("anthropic") builds the adapter; with no ANTHROPIC_API_KEY it is fatal."""
    with pytest.raises(FatalError, match="ANTHROPIC_API_KEY"):
        get_provider("anthropic", "http://127.0.0.1:9")
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9")
    built = get_provider("anthropic")
    assert built.name == "anthropic" and built.base_url == "http://127.0.0.1:9"
    assert get_provider("anthropic", "http://127.0.0.1:8").base_url == "http://127.0.0.1:8"


def test_upload_writes_the_request_set_beside_the_shard_and_finds_it_again(
    tmp_path: Path, emu: Emulator
) -> None:
    """The "upload" is a local request set; this and a fresh adapter both find it by name."""
    shard = write_shard(tmp_path, ["a.1", "b:2"])
    name = f"ledger-job1-abc-{token()}.jsonl"
    remote = provider(emu).upload_input(shard, filename=name)
    local = Path(remote.id.removeprefix("requests:"))
    assert local.parent == shard.parent and local.is_file()
    assert remote.filename == name and remote.bytes == local.stat().st_size
    assert provider(emu).find_uploads(name) == [remote]  # a new process, from the workdir
    assert provider(emu).find_uploads("ledger-job2-other.jsonl") == []
    assert emu.stats()["requests"]["create_message_batch"] == 0


def test_a_shard_anthropic_cannot_take_is_rejected_at_upload(tmp_path: Path, emu: Emulator) -> None:
    """A custom_id too long for Anthropic is Rejected with the reason; nothing is written."""
    shard = write_shard(tmp_path, ["x" * 70])
    with pytest.raises(Rejected, match="shorten it"):
        provider(emu).upload_input(shard, filename="ledger-job1.jsonl")
    assert sorted(p.name for p in shard.parent.iterdir()) == [shard.name]


def test_create_poll_and_download_give_the_ledgers_custom_ids_back(
    tmp_path: Path, emu: Emulator
) -> None:
    """Created with tagged ids, polled to completed, downloaded with the original ids."""
    adapter = provider(emu)
    ids = ["a.1", "b:2", "c_3"]
    remote = adapter.upload_input(write_shard(tmp_path, ids), filename="ledger-job1.jsonl")
    create_token = token()
    created = adapter.create_batch(
        input_file_id=remote.id, endpoint="/v1/chat/completions", metadata=tags(create_token)
    )
    assert created.state is State.IN_PROGRESS and created.provider_status == "in_progress"
    assert created.requests_total == 3 and created.output_file_id is None
    assert abs(created.created_at - time.time()) < 5
    sent = emu.store.message_batches[created.id].requests
    assert [r["custom_id"] for r in sent] == [
        f"{create_token[:8]}-a_2e1",
        f"{create_token[:8]}-b_3a2",
        f"{create_token[:8]}-c_5f3",
    ]
    assert adapter.get_batch(created.id).state is State.IN_PROGRESS
    done = adapter.get_batch(created.id)
    assert (done.state, done.provider_status) == (State.COMPLETED, "ended")
    assert (done.requests_total, done.requests_completed, done.requests_failed) == (3, 3, 0)
    assert done.output_file_id == f"results:{created.id}" and done.error_file_id is None
    destination = tmp_path / "results.jsonl"
    size = adapter.download_file(f"results:{created.id}", destination)
    lines = [json.loads(line) for line in destination.read_text().splitlines()]
    assert sorted(line["custom_id"] for line in lines) == sorted(ids)
    assert all(line["result"]["type"] == "succeeded" for line in lines)
    sent_results = emu.store.message_batches[created.id].results
    assert size == sum(len(json.dumps(result).encode()) + 1 for result in sent_results)


def test_a_cut_off_download_is_transient(tmp_path: Path, emu: Emulator) -> None:
    """A results stream cut short raises TransientError, so the reconciler fetches it again."""
    adapter = provider(emu)
    remote = adapter.upload_input(
        write_shard(tmp_path, [f"q{i}" for i in range(8)]), filename="ledger-job1.jsonl"
    )
    batch = adapter.create_batch(
        input_file_id=remote.id, endpoint="/v1/chat/completions", metadata=tags(token())
    )
    until_ended(adapter, batch.id)
    emu.configure(faults=[{"kind": "truncate_download", "fraction": 0.5, "times": 1}])
    with pytest.raises(TransientError):
        adapter.download_file(f"results:{batch.id}", tmp_path / "out.jsonl")
    assert adapter.download_file(f"results:{batch.id}", tmp_path / "out.jsonl") > 0
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 8


def test_archived_results_are_not_found_with_the_reason(tmp_path: Path, emu: Emulator) -> None:
    """Results archived by the provider raise NotFound naming the archive time."""
    adapter = provider(emu)
    remote = adapter.upload_input(write_shard(tmp_path, ["q"]), filename="ledger-job1.jsonl")
    batch = adapter.create_batch(
        input_file_id=remote.id, endpoint="/v1/chat/completions", metadata=tags(token())
    )
    until_ended(adapter, batch.id)
    emu.store.message_batches[batch.id].archived_at = time.time()
    with pytest.raises(NotFound, match="archived"):
        adapter.download_file(f"results:{batch.id}", tmp_path / "out.jsonl")


@pytest.mark.parametrize(
    ("status", "counts", "state"),
    [
        ("in_progress", {"processing": 4}, State.IN_PROGRESS),
        ("canceling", {"processing": 4}, State.IN_PROGRESS),
        ("ended", {"succeeded": 3, "errored": 1}, State.COMPLETED),
        ("ended", {"errored": 4}, State.COMPLETED),
        ("ended", {"succeeded": 2, "expired": 2}, State.EXPIRED),
        ("ended", {"succeeded": 1, "canceled": 2, "expired": 1}, State.CANCELLED),
        ("ended", {"succeeded": 2, "canceled": 2}, State.CANCELLED),
        ("some_future_status", {"processing": 4}, State.IN_PROGRESS),
    ],
)
def test_status_mapping(status: str, counts: dict[str, int], state: State) -> None:
    """ended splits by counts: any canceled -> cancelled, else any expired -> expired."""
    full = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0, **counts}
    assert ledger_state(status, MessageBatchRequestCounts.model_validate(full)) is state


def test_cancel_returns_canceling_and_an_ended_batch_as_it_is(
    tmp_path: Path, emu: Emulator
) -> None:
    """Cancel maps canceling to in_progress; cancelling an ended batch just reports it."""
    adapter = provider(emu)
    remote = adapter.upload_input(write_shard(tmp_path, ["a", "b"]), filename="ledger-job1.jsonl")
    batch = adapter.create_batch(
        input_file_id=remote.id, endpoint="/v1/chat/completions", metadata=tags(token())
    )
    cancelling = adapter.cancel_batch(batch.id)
    assert (cancelling.state, cancelling.provider_status) == (State.IN_PROGRESS, "canceling")
    ended = adapter.get_batch(batch.id)
    assert ended.state is State.CANCELLED
    assert adapter.cancel_batch(batch.id).state is State.CANCELLED


def orphan(adapter: AnthropicBatchProvider, input_file_id: str, value: str) -> str:
    """Create a batch as a crashed process would have: made, id never recorded."""
    return adapter.create_batch(
        input_file_id=input_file_id, endpoint="/v1/chat/completions", metadata=tags(value)
    ).id


def test_find_batches_adopts_only_the_batch_carrying_the_creates_tag(
    tmp_path: Path, emu: Emulator
) -> None:
    """Same-size batches of other creates are passed over; ours is found once it has ended."""
    adapter = provider(emu)
    remote = adapter.upload_input(write_shard(tmp_path, ["a", "b"]), filename="ledger-job1.jsonl")
    other = write_shard(tmp_path, ["x", "y"], run="other")
    other_remote = adapter.upload_input(other, filename="ledger-job2.jsonl")
    since = int(time.time()) - 5
    ours, theirs = token(), token()
    mine = orphan(adapter, remote.id, ours)
    foreign = orphan(adapter, other_remote.id, theirs)
    orphan(
        adapter, adapter.upload_input(write_shard(tmp_path, ["z"], "small"), filename="s").id, ours
    )
    with pytest.raises(TransientError, match="have not ended"):
        adapter.find_batches(input_file_id=remote.id, metadata=tags(ours), created_after=since)
    for batch_id in (mine, foreign):
        until_ended(adapter, batch_id)
    found = adapter.find_batches(input_file_id=remote.id, metadata=tags(ours), created_after=since)
    assert [b.id for b in found] == [mine]
    assert found[0].state is State.COMPLETED
    nobody = adapter.find_batches(
        input_file_id=remote.id, metadata=tags(token()), created_after=since
    )
    assert nobody == []
    later = adapter.find_batches(
        input_file_id=remote.id, metadata=tags(ours), created_after=int(time.time()) + 60
    )
    assert later == []


def test_a_dropped_create_is_outcome_unknown_and_then_adopted(
    tmp_path: Path, emu: Emulator
) -> None:
    """The reply to a create is lost: OutcomeUnknown; the batch is found by its tag later."""
    adapter = provider(emu)
    remote = adapter.upload_input(write_shard(tmp_path, ["a", "b"]), filename="ledger-job1.jsonl")
    emu.configure(faults=[{"kind": "drop_response", "route": "create_message_batch", "times": 1}])
    value = token()
    with pytest.raises(OutcomeUnknown):
        orphan(adapter, remote.id, value)
    made = next(iter(emu.store.message_batches))
    until_ended(adapter, made)
    found = adapter.find_batches(
        input_file_id=remote.id, metadata=tags(value), created_after=int(time.time()) - 60
    )
    assert [b.id for b in found] == [made]


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ({"kind": "http_500", "route": "create_message_batch"}, OutcomeUnknown),
        ({"kind": "http_429", "route": "create_message_batch", "seconds": 3}, TransientError),
    ],
)
def test_server_trouble_on_create_is_transient_or_unknown(
    tmp_path: Path, emu: Emulator, fault: dict[str, Any], error: type[Exception]
) -> None:
    """A 500 on create may have created the batch (OutcomeUnknown); a 429 did not."""
    adapter = provider(emu)
    remote = adapter.upload_input(write_shard(tmp_path, ["a"]), filename="ledger-job1.jsonl")
    emu.configure(faults=[fault])
    with pytest.raises(error) as raised:
        orphan(adapter, remote.id, token())
    assert type(raised.value) is error
    if fault["kind"] == "http_429":
        assert isinstance(raised.value, TransientError) and raised.value.retry_after == 3


def test_unknown_batches_are_not_found_and_bad_requests_rejected(emu: Emulator) -> None:
    """404 is NotFound; a 400 (an unknown results id) is never retried as transient."""
    adapter = provider(emu)
    with pytest.raises(NotFound):
        adapter.get_batch("msgbatch_01nothing")
    with pytest.raises(NotFound):
        adapter.download_file("file-123", Path(os.devnull))
    with pytest.raises(Rejected, match="chat requests only"):
        adapter.create_batch(input_file_id="requests:/x", endpoint="/v1/embeddings", metadata={})


def test_refused_credentials_are_fatal_and_the_key_is_scrubbed() -> None:
    """401 pauses everything (FatalError); the key never appears in the message."""
    with (
        Emulator(EmulatorConfig(api_key="sk-ant-the-right-one")).start() as emu,
        pytest.raises(FatalError) as refused,
    ):
        provider(emu).get_batch("msgbatch_01x")
    assert KEY not in str(refused.value) and "authentication_error" in str(refused.value)


def test_scrub_removes_the_key_wherever_an_error_quotes_it() -> None:
    """The key itself, key-shaped text and auth header values are redacted."""
    text = (
        f"bad key {KEY}; header x-api-key: {KEY}; Authorization: Bearer abc.def; "
        "'x-api-key': 'sk-ant-other-999'"
    )
    cleaned = scrub(text, KEY)
    assert KEY not in cleaned and "abc.def" not in cleaned and "sk-ant-other-999" not in cleaned
    assert cleaned.count("[redacted]") >= 4


def test_a_connection_refused_is_transient_for_reads_unknown_for_creates(tmp_path: Path) -> None:
    """Nothing listening: a read is TransientError, a create OutcomeUnknown."""
    adapter = AnthropicBatchProvider(base_url="http://127.0.0.1:9", api_key=KEY, timeout=2.0)
    with pytest.raises(TransientError) as read:
        adapter.get_batch("msgbatch_01x")
    assert not isinstance(read.value, OutcomeUnknown)
    remote = adapter.upload_input(write_shard(tmp_path, ["a"]), filename="ledger-job1.jsonl")
    with pytest.raises(OutcomeUnknown):
        orphan(adapter, remote.id, token())


def test_the_sdk_client_is_built_with_retries_off() -> None:
    """SDK retries are off: a retried create after a timeout would make a second batch."""
    adapter = AnthropicBatchProvider(base_url="http://127.0.0.1:9", api_key=KEY)
    client: Any = adapter._client  # the one place the test looks inside
    assert isinstance(client, anthropic.Anthropic) and client.max_retries == 0
    assert isinstance(client.timeout, httpx2.Timeout)
