"""Injected faults do what they say, at start or at run time, and the stats count them."""

from __future__ import annotations

import io
import logging
import socket
import struct
import time

import httpx2
import openai
import pytest
from support.emulator_support import chat_line, finish, running, sdk, submit, upload

from ledger.emulator import Emulator, EmulatorConfig

LINES = [chat_line(f"r{i}", "q") for i in range(20)]


def test_every_third_request_answers_500() -> None:
    """http_500 every 3: the 3rd and 6th requests fail with server_error; others pass."""
    with running(faults=[{"kind": "http_500", "every": 3}]) as emu:
        client = sdk(emu)
        outcomes = []
        for _ in range(6):
            try:
                client.files.list()
                outcomes.append("ok")
            except openai.InternalServerError as error:
                assert isinstance(error.body, dict) and error.body["type"] == "server_error"
                outcomes.append("500")
        assert outcomes == ["ok", "ok", "500", "ok", "ok", "500"]
        assert emu.stats()["faults"]["http_500"] == 2


def test_sdk_retries_get_past_a_500() -> None:
    """With max_retries, the SDK retries the 500 and succeeds; the stats show both requests."""
    with running(faults=[{"kind": "http_500", "route": "list_files", "times": 1}]) as emu:
        client = sdk(emu, max_retries=2)
        assert client.files.list().data == []
        assert emu.stats()["requests"]["list_files"] == 2


def test_429_announces_retry_after_and_the_sdk_waits_for_it() -> None:
    """http_429 carries retry-after (and -ms); the SDK honours it on retry."""
    rule = {"kind": "http_429", "route": "retrieve_batch", "times": 1, "seconds": 0.3}
    with running(faults=[rule]) as emu:
        raw = httpx2.get(emu.base_url + "/batches/batch_x", headers={"Authorization": "Bearer k"})
        assert raw.status_code == 429
        assert (raw.headers["retry-after"], raw.headers["retry-after-ms"]) == ("1", "300")
        assert raw.json()["error"]["code"] == "rate_limit_exceeded"
        emu.configure(faults=[rule])
        client = sdk(emu, max_retries=1)
        batch = submit(client, LINES)
        started = time.monotonic()
        assert client.batches.retrieve(batch.id).status == "in_progress"
        assert time.monotonic() - started >= 0.3
        assert emu.stats()["faults"]["http_429"] == 2


def test_a_route_rule_leaves_other_routes_alone() -> None:
    """A rule for retrieve_batch never touches uploads, creates or lists; `times` caps it."""
    rule = {"kind": "http_500", "route": "retrieve_batch", "times": 2}
    with running(faults=[rule]) as emu:
        client = sdk(emu)
        batch = submit(client, LINES)
        assert client.batches.list().data[0].id == batch.id
        for _ in range(2):
            with pytest.raises(openai.InternalServerError):
                client.batches.retrieve(batch.id)
        assert client.batches.retrieve(batch.id).status == "in_progress"


def test_a_dropped_create_still_creates_the_batch() -> None:
    """drop_response on create: the SDK sees a connection error, yet the batch exists, with its
    metadata, in stats and in batches.list."""
    rule = {"kind": "drop_response", "route": "create_batch", "times": 1}
    with running(faults=[rule]) as emu:
        client = sdk(emu)
        file = upload(client, LINES, "job-17.jsonl")
        with pytest.raises(openai.APIConnectionError):
            client.batches.create(
                input_file_id=file.id,
                endpoint="/v1/chat/completions",
                completion_window="24h",
                metadata={"ledger_job": "17"},
            )
        stats = emu.stats()
        assert stats["batches"]["created"] == 1
        assert stats["batches"]["by_metadata"] == {"ledger_job": {"17": 1}}
        assert stats["faults"]["drop_response"] == 1
        [found] = [b for b in client.batches.list() if (b.metadata or {}).get("ledger_job") == "17"]
        assert found.input_file_id == file.id
        assert finish(client, found.id).status == "completed"


def test_an_sdk_retry_after_a_dropped_create_makes_a_duplicate() -> None:
    """Why the ledger tags batches: the SDK's own retry creates a second batch."""
    rule = {"kind": "drop_response", "route": "create_batch", "times": 1}
    with running(faults=[rule]) as emu:
        client = sdk(emu, max_retries=1)
        file = upload(client, LINES)
        client.batches.create(
            input_file_id=file.id,
            endpoint="/v1/chat/completions",
            completion_window="24h",
            metadata={"ledger_job": "17"},
        )
        assert emu.stats()["batches"]["by_metadata"] == {"ledger_job": {"17": 2}}


def test_a_dropped_upload_still_stores_the_file() -> None:
    """drop_response on upload: connection error, yet files.list finds the file by name."""
    with running(faults=[{"kind": "drop_response", "route": "upload_file", "times": 2}]) as emu:
        client = sdk(emu)
        for _ in range(2):
            with pytest.raises(openai.APIConnectionError):
                upload(client, LINES, "job-17-shard-3.jsonl")
        upload(client, LINES, "job-17-shard-3.jsonl")
        assert emu.stats()["files"]["by_name"] == {"job-17-shard-3.jsonl": 3}
        assert len([f for f in client.files.list() if f.filename == "job-17-shard-3.jsonl"]) == 3


def test_a_cut_download_announces_the_whole_length_then_closes() -> None:
    """truncate_download: full Content-Length, part of the body, then EOF; the SDK raises."""
    with running() as emu:
        client = sdk(emu)
        done = finish(client, submit(client, LINES).id)
        whole = client.files.content(done.output_file_id or "").content
        emu.configure(faults=[{"kind": "truncate_download", "fraction": 0.25, "times": 3}])
        with pytest.raises(openai.APIConnectionError):
            client.files.content(done.output_file_id or "")
        with (
            pytest.raises(httpx2.RemoteProtocolError),
            client.files.with_streaming_response.content(done.output_file_id or "") as response,
        ):
            b"".join(response.iter_bytes())
        head, received = raw_get(emu, f"/v1/files/{done.output_file_id}/content")
        assert f"content-length: {len(whole)}" in head.lower()
        assert received == whole[: len(whole) // 4]
        assert client.files.content(done.output_file_id or "").content == whole
        assert emu.stats()["faults"]["truncate_download"] == 3


def raw_get(emulator: Emulator, path: str) -> tuple[str, bytes]:
    """GET over a bare socket: the header block and every body byte before the server closed."""
    with socket.create_connection(("127.0.0.1", emulator.port), timeout=5) as connection:
        connection.sendall(
            f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n\r\n".encode()
        )
        data = b""
        while chunk := connection.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return head.decode(), body


def test_latency_delays_answers() -> None:
    """latency: each matching request waits the given seconds."""
    with running(faults=[{"kind": "latency", "seconds": 0.2, "route": "list_files"}]) as emu:
        client = sdk(emu)
        started = time.monotonic()
        client.files.list()
        assert time.monotonic() - started >= 0.2
        started = time.monotonic()
        client.batches.list()
        assert time.monotonic() - started < 0.2
        assert emu.stats()["faults"]["latency"] == 1


def test_faults_are_configured_over_http_too() -> None:
    """POST /_emulator/config changes faults and settings; GET shows them; bad ones are 400."""
    with running() as emu:
        config_url = emu.url + "/_emulator/config"
        answer = httpx2.post(
            config_url, json={"faults": [{"kind": "http_500", "every": 1}], "scenario": "expire"}
        )
        assert answer.status_code == 200
        assert answer.json()["faults"][0]["kind"] == "http_500"
        assert httpx2.get(config_url).json()["scenario"] == "expire"
        with pytest.raises(openai.InternalServerError):
            sdk(emu).files.list()
        for bad in (
            {"faults": [{"kind": "meteor"}]},
            {"faults": [{"kind": "http_500", "route": "nowhere"}]},
            {"stage_seconds": -1},
            {"scenario": "nope"},
            {"port": 1},
            {"no_such_setting": 1},
            [1, 2],
        ):
            response = httpx2.post(config_url, json=bad)
            assert response.status_code == 400, bad
            assert set(response.json()["error"]) == {"message", "type", "param", "code"}
        assert httpx2.post(config_url, content=b"{nope").status_code == 400
        assert httpx2.get(config_url).json()["scenario"] == "expire"


def test_configure_refuses_unknown_and_fixed_settings() -> None:
    """Emulator.configure raises ValueError for unknown or startup-only settings."""
    with Emulator(EmulatorConfig()).start() as emu:
        with pytest.raises(ValueError, match="unknown setting"):
            emu.configure(nope=1)
        with pytest.raises(ValueError, match="fixed"):
            emu.configure(state_dir="/tmp")
        with pytest.raises(ValueError, match="failure_rate"):
            emu.configure(failure_rate=2)
        assert emu.configure(stage_seconds=0.5).stage_seconds == 0.5


def test_stats_count_requests_per_route() -> None:
    """stats()["requests"] counts each route; GET /_emulator/stats answers the same document."""
    with running() as emu:
        client = sdk(emu)
        batch = submit(client, LINES)
        client.batches.retrieve(batch.id)
        client.batches.retrieve(batch.id)
        stats = emu.stats()
        assert stats == httpx2.get(emu.url + "/_emulator/stats").json()
        assert stats["requests"]["upload_file"] == 1
        assert stats["requests"]["create_batch"] == 1
        assert stats["requests"]["retrieve_batch"] == 2
        assert stats["requests"]["list_files"] == 0
        assert stats["batches"]["by_status"] == {"finalizing": 1}
        assert stats["files"] == {
            "created": 1,
            "by_name": {"input.jsonl": 1},
            "by_purpose": {"batch": 1},
            "deleted": 0,
            "generated": 0,
        }


def test_a_client_that_hangs_up_mid_answer_is_one_log_line(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    """A client that closes its connection while a large answer is being written costs one
    warning line naming it, never a traceback, and the emulator goes on answering."""
    with running() as emu:
        client = sdk(emu)
        big = client.files.create(
            file=("big.jsonl", io.BytesIO(b'{"custom_id": "x"}\n' * 400_000)), purpose="batch"
        )
        caplog.set_level(logging.WARNING, logger="ledger.emulator")
        with socket.create_connection(("127.0.0.1", emu.port)) as raw:
            raw.sendall(
                f"GET /v1/files/{big.id}/content HTTP/1.1\r\nHost: x\r\n"
                "Authorization: Bearer sk-test\r\n\r\n".encode()
            )
            raw.recv(100)
            # Close with a reset, not a graceful FIN: the server's next write fails.
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        deadline = time.monotonic() + 10
        while not caplog.records and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(caplog.records) == 1
        message = caplog.records[0].getMessage()
        assert message.startswith("emulator: client 127.0.0.1:") and "hung up" in message
        assert "\n" not in message
        assert client.files.retrieve(big.id).bytes == big.bytes
    assert "Traceback" not in capfd.readouterr().err
