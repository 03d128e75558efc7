"""The emulator's Anthropic Message Batches routes: the official `anthropic` SDK drives every
route and parses every answer as its own types; auth, create rules, scenarios, faults, stats and
the state directory behave as the OpenAI routes' do."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import anthropic
import httpx2
import pytest
from anthropic.types.messages import MessageBatch, MessageBatchIndividualResponse

from ledger.emulator import Emulator, EmulatorConfig

HEADERS = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}


@contextmanager
def running(**settings: Any) -> Iterator[Emulator]:
    """An emulator on a free port, one stage per GET unless told otherwise."""
    settings.setdefault("polls_per_stage", 1)
    with Emulator(EmulatorConfig(**settings)).start() as emulator:
        yield emulator


def sdk(emulator: Emulator, **options: Any) -> anthropic.Anthropic:
    """The official client aimed at the emulator's root (its paths carry /v1), no retries."""
    options.setdefault("max_retries", 0)
    options.setdefault("timeout", 10.0)
    return anthropic.Anthropic(api_key="sk-ant-test", base_url=emulator.url, **options)


def params(prompt: str, **extra: Any) -> dict[str, Any]:
    """Messages API params for one prompt."""
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": prompt}],
        **extra,
    }


def send(client: anthropic.Anthropic, requests: list[dict[str, Any]], **kw: Any) -> MessageBatch:
    """Create a batch of these requests (plain dicts, some deliberately off the SDK's types)."""
    return client.messages.batches.create(requests=cast(Any, requests), **kw)


def create(
    client: anthropic.Anthropic, count: int = 4, prefix: str = "r", **kw: Any
) -> MessageBatch:
    """A batch of `count` requests `<prefix>0..`, each asking about its own number."""
    requests = [
        {"custom_id": f"{prefix}{i}", "params": params(f"question {i}")} for i in range(count)
    ]
    return send(client, requests, **kw)


def finish(client: anthropic.Anthropic, batch_id: str, polls: int = 20) -> MessageBatch:
    """Retrieve until the batch has ended."""
    for _ in range(polls):
        batch = client.messages.batches.retrieve(batch_id)
        if batch.processing_status == "ended":
            return batch
    raise AssertionError(f"{batch_id} never ended")


def results(client: anthropic.Anthropic, batch_id: str) -> dict[str, Any]:
    """An ended batch's results by custom_id, parsed by the SDK's decoder."""
    return {line.custom_id: line.result for line in client.messages.batches.results(batch_id)}


def test_the_sdk_drives_create_retrieve_results_and_delete() -> None:
    """Create -> in_progress, one more GET -> ended with counts; results and delete parse."""
    with running() as emu:
        client = sdk(emu)
        batch = create(client)
        assert isinstance(batch, MessageBatch) and batch.id.startswith("msgbatch_")
        assert batch.processing_status == "in_progress" and batch.results_url is None
        assert batch.request_counts.processing == 4
        assert batch.expires_at.timestamp() - batch.created_at.timestamp() == 24 * 3600
        assert client.messages.batches.retrieve(batch.id).processing_status == "in_progress"
        ended = client.messages.batches.retrieve(batch.id)
        assert ended.processing_status == "ended" and ended.ended_at is not None
        assert ended.request_counts.succeeded == 4 and ended.request_counts.processing == 0
        assert ended.results_url == f"{emu.url}/v1/messages/batches/{batch.id}/results"
        lines = list(client.messages.batches.results(batch.id))
        assert all(isinstance(line, MessageBatchIndividualResponse) for line in lines)
        assert sorted(line.custom_id for line in lines) == ["r0", "r1", "r2", "r3"]
        answer = {line.custom_id: line.result for line in lines}["r2"]
        assert answer.type == "succeeded"
        assert answer.message.content[0].type == "text"
        assert answer.message.content[0].text == "Echo: question 2"
        assert answer.message.stop_reason == "end_turn"
        assert answer.message.usage.output_tokens == 4
        deleted = client.messages.batches.delete(batch.id)
        assert (deleted.id, deleted.type) == (batch.id, "message_batch_deleted")
        with pytest.raises(anthropic.NotFoundError) as missing:
            client.messages.batches.retrieve(batch.id)
        assert missing.value.type == "not_found_error"
        assert [b.id for b in client.messages.batches.list()] == []
        stats = emu.stats()
        assert stats["message_batches"]["deleted"] == 1
        assert stats["requests"]["create_message_batch"] == 1
        assert stats["requests"]["delete_message_batch"] == 1


def test_results_come_unordered_but_complete() -> None:
    """Result lines are shuffled (not input order) and name every request exactly once."""
    with running() as emu:
        client = sdk(emu)
        batch = create(client, count=30)
        finish(client, batch.id)
        order = [line.custom_id for line in client.messages.batches.results(batch.id)]
        assert sorted(order) == sorted(f"r{i}" for i in range(30))
        assert order != [f"r{i}" for i in range(30)]


def test_list_pages_newest_first_both_ways() -> None:
    """limit pages through after_id (auto-pagination) and before_id, newest first."""
    with running() as emu:
        client = sdk(emu)
        made = [create(client, count=1, prefix=f"b{n}-").id for n in range(5)]
        newest_first = list(reversed(made))
        page = client.messages.batches.list(limit=2)
        assert [b.id for b in page.data] == newest_first[:2] and page.has_more
        assert (page.first_id, page.last_id) == (newest_first[0], newest_first[1])
        assert [b.id for b in client.messages.batches.list(limit=2)] == newest_first
        older = client.messages.batches.list(limit=2, after_id=newest_first[3])
        assert [b.id for b in older.data] == newest_first[4:] and not older.has_more
        newer = client.messages.batches.list(limit=2, before_id=newest_first[3])
        assert [b.id for b in newer.data] == newest_first[1:3] and newer.has_more
        with pytest.raises(anthropic.BadRequestError):
            client.messages.batches.list(after_id=made[0], before_id=made[1])
        assert emu.stats()["requests"]["list_message_batches"] >= 5


def test_a_client_cancel_ends_with_partial_results() -> None:
    """cancel while running: canceling, then ended; half ran, the rest are canceled results."""
    with running(partial_fraction=0.5) as emu:
        client = sdk(emu)
        batch = create(client, count=6)
        canceling = client.messages.batches.cancel(batch.id)
        assert canceling.processing_status == "canceling"
        assert canceling.cancel_initiated_at is not None
        assert client.messages.batches.cancel(batch.id).processing_status == "canceling"
        ended = finish(client, batch.id)
        counts = ended.request_counts
        assert (counts.succeeded, counts.canceled) == (3, 3)
        kinds = sorted(r.type for r in results(client, batch.id).values())
        assert kinds == ["canceled"] * 3 + ["succeeded"] * 3
        with pytest.raises(anthropic.BadRequestError, match="already ended"):
            client.messages.batches.cancel(batch.id)


def test_delete_refuses_a_running_batch() -> None:
    """A batch still processing cannot be deleted; results are refused until it ends."""
    with running() as emu:
        client = sdk(emu)
        batch = create(client)
        with pytest.raises(anthropic.BadRequestError, match="still processing"):
            client.messages.batches.delete(batch.id)
        raw = httpx2.get(f"{emu.url}/v1/messages/batches/{batch.id}/results", headers=HEADERS)
        assert raw.status_code == 400
        assert raw.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("scenario", "kinds"),
    [
        ("expire", {"succeeded": 2, "expired": 2}),
        ("cancel", {"succeeded": 2, "canceled": 2}),
        ("all_fail", {"errored": 4}),
    ],
)
def test_scenarios_end_as_they_say(scenario: str, kinds: dict[str, int]) -> None:
    """expire, the provider's cancel and all_fail end with the result kinds they promise."""
    with running(scenario=scenario) as emu:
        client = sdk(emu)
        batch = create(client)
        ended = finish(client, batch.id)
        found: dict[str, int] = {}
        for result in results(client, batch.id).values():
            found[result.type] = found.get(result.type, 0) + 1
        assert found == kinds
        counts = ended.request_counts.model_dump()
        assert {k: v for k, v in counts.items() if v} == kinds
        if scenario == "cancel":
            assert ended.cancel_initiated_at is not None
        assert emu.stats()["message_batches"]["by_scenario"] == {scenario: 1}


def test_request_failures_error_a_share_with_anthropic_error_types() -> None:
    """request_failures: about failure_rate of the requests are errored, typed as the API does."""
    with running(scenario="request_failures", failure_rate=0.5) as emu:
        client = sdk(emu)
        batch = create(client, count=40)
        finish(client, batch.id)
        errored = [r for r in results(client, batch.id).values() if r.type == "errored"]
        assert 8 <= len(errored) <= 32
        types = {r.error.error.type for r in errored}
        assert types <= {"invalid_request_error", "api_error", "overloaded_error"}


def test_the_scenario_header_and_custom_id_rules_choose() -> None:
    """X-Emulator-Scenario picks a batch's scenario; rules match its first custom_id."""
    rules = [{"file_name_contains": "doomed", "scenario": "all_fail"}]
    with running(scenario_rules=rules) as emu:
        client = sdk(emu)
        create(client, extra_headers={"X-Emulator-Scenario": "expire"})
        create(client, prefix="doomed-")
        create(client)
        assert emu.stats()["message_batches"]["by_scenario"] == {
            "expire": 1,
            "all_fail": 1,
            "normal": 1,
        }


def test_not_found_grace_hides_a_new_batch_from_gets_not_lists() -> None:
    """not_found_grace: the first GETs answer 404 not_found_error; the list shows the batch."""
    with running(scenario="not_found_grace", not_found_gets=2) as emu:
        client = sdk(emu)
        batch = create(client)
        for _ in range(2):
            with pytest.raises(anthropic.NotFoundError):
                client.messages.batches.retrieve(batch.id)
        assert [b.id for b in client.messages.batches.list()] == [batch.id]
        assert client.messages.batches.retrieve(batch.id).processing_status == "in_progress"


def test_params_are_checked_when_they_run_not_at_create() -> None:
    """Bad params are accepted at create and end as errored results, like the real API."""
    with running() as emu:
        client = sdk(emu)
        bad = {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "x"}]}
        requests = [
            {"custom_id": "good", "params": params("fine")},
            {"custom_id": "no-max", "params": bad},
            {"custom_id": "extra", "params": params("x", frequency_penalty=1)},
        ]
        batch = send(client, requests)
        finish(client, batch.id)
        found = results(client, batch.id)
        assert found["good"].type == "succeeded"
        assert found["no-max"].type == "errored"
        assert "max_tokens" in found["no-max"].error.error.message
        assert found["extra"].type == "errored"
        assert "frequency_penalty" in found["extra"].error.error.message


def test_answers_honour_max_tokens_stop_sequences_and_json_schema() -> None:
    """max_tokens cuts (stop_reason max_tokens), a stop sequence stops, a schema gives JSON."""
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    with running() as emu:
        client = sdk(emu)
        requests = [
            {"custom_id": "cut", "params": params("one two three four", max_tokens=2)},
            {"custom_id": "stop", "params": params("alpha beta gamma", stop_sequences=["beta"])},
            {
                "custom_id": "json",
                "params": params(
                    "hi", output_config={"format": {"type": "json_schema", "schema": schema}}
                ),
            },
        ]
        batch = send(client, requests)
        finish(client, batch.id)
        found = {
            k: v.message for k, v in results(client, batch.id).items() if v.type == "succeeded"
        }
        assert (found["cut"].stop_reason, found["cut"].content[0].text) == ("max_tokens", "Echo:")
        assert found["stop"].stop_reason == "stop_sequence"
        assert found["stop"].stop_sequence == "beta"
        assert found["stop"].content[0].text == "Echo: alpha "
        assert json.loads(found["json"].content[0].text) == {"answer": "Echo: hi"}


@pytest.mark.parametrize(
    ("requests", "status", "words"),
    [
        ([], 400, "at least 1 item"),
        ([{"custom_id": "has.dot", "params": {}}], 400, "should match pattern"),
        ([{"custom_id": "x" * 65, "params": {}}], 400, "should match pattern"),
        ([{"custom_id": "a", "params": {}}, {"custom_id": "a", "params": {}}], 400, "Duplicate"),
        ([{"custom_id": "a"}], 400, "params: Field required"),
        ([{"custom_id": "a", "params": {}, "extra": 1}], 400, "Extra inputs"),
        ([{"custom_id": f"n{i}", "params": {}} for i in range(3)], 400, "at most 2 items"),
    ],
)
def test_create_refuses_what_the_api_refuses_at_once(
    requests: list[dict[str, Any]], status: int, words: str
) -> None:
    """custom_id pattern and uniqueness, count and shape are refused at create, nothing made."""
    with running(max_message_batch_requests=2) as emu:
        raw = httpx2.post(
            f"{emu.url}/v1/messages/batches", headers=HEADERS, json={"requests": requests}
        )
        assert raw.status_code == status
        body = raw.json()
        assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
        assert words in body["error"]["message"]
        assert emu.stats()["message_batches"]["created"] == 0


def test_a_body_over_the_byte_limit_is_413_request_too_large() -> None:
    """A create body over max_message_batch_bytes answers 413 request_too_large."""
    with running(max_message_batch_bytes=200) as emu:
        client = sdk(emu)
        with pytest.raises(anthropic.APIStatusError) as refused:
            create(client, count=5)
        assert refused.value.status_code == 413 and refused.value.type == "request_too_large"


def test_auth_takes_x_api_key_or_bearer_and_needs_a_version() -> None:
    """x-api-key or Bearer authenticate; none is 401; the wrong one too; no version is 400."""
    with running(api_key="sk-ant-right") as emu:
        url = f"{emu.url}/v1/messages/batches"
        version = {"anthropic-version": "2023-06-01"}
        assert httpx2.get(url, headers={"x-api-key": "sk-ant-right", **version}).is_success
        bearer = {"Authorization": "Bearer sk-ant-right", **version}
        assert httpx2.get(url, headers=bearer).is_success
        missing = httpx2.get(url, headers=version)
        assert missing.status_code == 401
        assert missing.json()["error"] == {
            "type": "authentication_error",
            "message": "x-api-key header is required",
        }
        wrong = httpx2.get(url, headers={"x-api-key": "sk-ant-wrong", **version})
        assert wrong.status_code == 401 and "sk-ant-wrong" not in wrong.text
        no_version = httpx2.get(url, headers={"x-api-key": "sk-ant-right"})
        assert no_version.status_code == 400
        assert "anthropic-version" in no_version.json()["error"]["message"]
        with pytest.raises(anthropic.AuthenticationError):
            sdk(emu).messages.batches.list()


def test_faults_fire_on_the_new_routes_in_anthropic_shape() -> None:
    """http_500 and http_429 answer api_error / rate_limit_error; nothing is created."""
    faults = [
        {"kind": "http_500", "route": "create_message_batch", "times": 1},
        {"kind": "http_429", "route": "list_message_batches", "times": 1, "seconds": 2},
    ]
    with running(faults=faults) as emu:
        client = sdk(emu)
        with pytest.raises(anthropic.InternalServerError) as server_error:
            create(client)
        assert server_error.value.type == "api_error"
        with pytest.raises(anthropic.RateLimitError) as limited:
            client.messages.batches.list()
        assert limited.value.type == "rate_limit_error"
        assert limited.value.response.headers["retry-after"] == "2"
        assert emu.stats()["message_batches"]["created"] == 0
        create(client)
        assert emu.stats()["faults"]["http_500"] == 1
        assert emu.stats()["faults"]["http_429"] == 1


def test_a_dropped_create_reply_still_makes_the_batch() -> None:
    """drop_response: the SDK sees a connection error, yet the batch exists (stats prove it)."""
    faults = [{"kind": "drop_response", "route": "create_message_batch", "times": 1}]
    with running(faults=faults) as emu:
        client = sdk(emu)
        with pytest.raises(anthropic.APIConnectionError):
            create(client)
        stats = emu.stats()["message_batches"]
        assert stats["created"] == 1 and stats["by_first_custom_id"] == {"r0": 1}
        assert len(client.messages.batches.list().data) == 1


def test_a_cut_results_download_is_an_error_not_short_data() -> None:
    """truncate_download on the results route cuts the stream; the SDK raises mid-read."""
    with running() as emu:
        client = sdk(emu)
        batch = create(client, count=10)
        finish(client, batch.id)
        emu.configure(faults=[{"kind": "truncate_download", "fraction": 0.3}])
        with pytest.raises((anthropic.APIConnectionError, httpx2.HTTPError)):
            list(client.messages.batches.results(batch.id))
        assert emu.stats()["faults"]["truncate_download"] == 1


def test_latency_delays_the_named_route() -> None:
    """latency on retrieve_message_batch is served and counted."""
    with running(faults=[{"kind": "latency", "route": "retrieve_message_batch"}]) as emu:
        client = sdk(emu)
        batch = create(client)
        client.messages.batches.retrieve(batch.id)
        assert emu.stats()["faults"]["latency"] == 1


def test_stats_fingerprint_request_sets_whatever_their_custom_ids() -> None:
    """by_fingerprint counts identical request sets (custom_ids aside): a resend shows as 2."""
    with running() as emu:
        client = sdk(emu)
        create(client, prefix="first-")
        create(client, prefix="again-")
        requests = [{"custom_id": "other", "params": params("something else")}]
        send(client, requests)
        stats = emu.stats()["message_batches"]
        assert sorted(stats["by_fingerprint"].values()) == [1, 2]
        assert stats["by_first_custom_id"] == {"first-0": 1, "again-0": 1, "other": 1}
        assert stats["by_status"] == {"in_progress": 3}


def test_time_clock_ends_batches_read_late() -> None:
    """With stage_seconds, a batch read after two stages has ended; lists move it too."""
    with running(polls_per_stage=None, stage_seconds=0.05) as emu:
        client = sdk(emu)
        batch = create(client)
        time.sleep(0.15)
        assert [b.processing_status for b in client.messages.batches.list()] == ["ended"]
        assert client.messages.batches.retrieve(batch.id).request_counts.succeeded == 4


def test_message_batches_survive_a_restart_on_a_state_dir(tmp_path: Path) -> None:
    """A state directory keeps Message Batches, their requests and their results."""
    state = tmp_path / "state"
    with running(state_dir=state) as first:
        client = sdk(first)
        batch = create(client)
        client.messages.batches.retrieve(batch.id)
    with running(state_dir=state) as second:
        client = sdk(second)
        finish(client, batch.id)
        assert sorted(results(client, batch.id)) == ["r0", "r1", "r2", "r3"]
        assert second.stats()["message_batches"]["created"] == 1
