"""Garbage in, 4xx JSON out: random, truncated and malformed requests never crash the emulator."""

from __future__ import annotations

import dataclasses
import http.client
import json
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.emulator_support import chat_line, finish, running, sdk, submit, upload

from ledger.emulator import Emulator, EmulatorConfig
from ledger.emulator.answers import ENDPOINTS, answer
from ledger.emulator.config import STARTUP_ONLY
from ledger.emulator.errors import ApiError
from ledger.emulator.multipart import parse

SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**30, max_value=10**40)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
create_fields = st.fixed_dictionaries(
    {},
    optional={
        "input_file_id": json_values,
        "endpoint": st.sampled_from([*ENDPOINTS, "/v1/nope", ""]) | json_values,
        "completion_window": st.sampled_from(["24h", "1h"]) | json_values,
        "metadata": st.dictionaries(st.text(max_size=70), json_values, max_size=20) | json_values,
        "output_expires_after": json_values,
    },
)


@pytest.fixture(scope="module")
def target() -> Iterator[tuple[Emulator, dict[str, str]]]:
    """One emulator for the module, with a real file and batch so ids can hit something."""
    with running() as emu:
        client = sdk(emu)
        batch = submit(client, [chat_line("a", "q")])
        ids = {"file": batch.input_file_id, "batch": batch.id}
        yield emu, ids


def restore(emu: Emulator, baseline: EmulatorConfig) -> None:
    """Undo whatever a random POST /_emulator/config changed."""
    emu.configure(
        **{
            f.name: getattr(baseline, f.name)
            for f in dataclasses.fields(baseline)
            if f.name not in STARTUP_ONLY
        }
    )


@st.composite
def requests(draw: st.DrawFn, ids: dict[str, str]) -> tuple[str, str, dict[str, str], bytes]:
    """A random request: method, path with query, headers and body."""
    method = draw(st.sampled_from(["GET", "POST", "DELETE", "PUT", "PATCH", "OPTIONS"]))
    some_id = draw(
        st.sampled_from([ids["file"], ids["batch"], "", "file-nope", "9" * 40])
        | st.text(min_size=1, max_size=30)
    )
    template = draw(
        st.sampled_from(
            [
                "/v1/files",
                "/v1/files/{}",
                "/v1/files/{}/content",
                "/v1/batches",
                "/v1/batches/{}",
                "/v1/batches/{}/cancel",
                "/_emulator/stats",
                "/_emulator/config",
                "/{}",
                "/v1/{}/x",
            ]
        )
    )
    path = template.format(quote(some_id, safe=""))
    query = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["limit", "after", "order", "purpose", "x"]),
                st.sampled_from(["0", "-1", "101", "10001", "1e9", "99999999999999999999"])
                | st.text(max_size=10),
            ),
            max_size=3,
        )
    )
    if query:
        path += "?" + urlencode(query)
    content_type = draw(
        st.sampled_from(
            [
                "application/json",
                "multipart/form-data; boundary=b0und",
                "multipart/form-data",
                "text/plain",
                "",
            ]
        )
        | st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30)
    )
    body = draw(
        st.binary(max_size=300)
        | json_values.map(lambda v: json.dumps(v).encode())
        | create_fields.map(lambda v: json.dumps(v).encode())
        | multipart_bodies()
    )
    headers = {"Content-Type": content_type} if content_type else {}
    if draw(st.booleans()) or draw(st.booleans()):
        headers["Authorization"] = "Bearer sk-test"
    if draw(st.booleans()):
        headers["X-Emulator-Scenario"] = draw(st.sampled_from(["expire", "nope", ""]))
    return method, path, headers, body


@st.composite
def multipart_bodies(draw: st.DrawFn) -> bytes:
    """A multipart body with random parts, sometimes cut short."""
    parts = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["file", "purpose", "expires_after[seconds]", "x"])
                | st.text(max_size=8),
                st.none() | st.text(max_size=12),
                st.binary(max_size=60)
                | st.sampled_from([b"batch", b"user_data", b"3600", b'{"a": 1}\n']),
            ),
            max_size=4,
        )
    )
    chunks = []
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        chunks.append(
            b"--b0und\r\nContent-Disposition: "
            + disposition.encode()
            + b"\r\n\r\n"
            + content
            + b"\r\n"
        )
    body = b"".join(chunks) + b"--b0und--\r\n"
    cut = draw(st.none() | st.integers(min_value=0, max_value=len(body)))
    return body if cut is None else body[:cut]


def send(
    emu: Emulator, method: str, path: str, headers: dict[str, str], body: bytes
) -> tuple[int, str, bytes]:
    """One request on a fresh connection: status, content type, body."""
    connection = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type") or "", response.read()
    finally:
        connection.close()


def assert_answer_is_clean(status: int, content_type: str, body: bytes) -> None:
    """2xx, or a 4xx carrying the API's error JSON; never a 5xx."""
    assert status < 500, body
    if status >= 400:
        error = json.loads(body)["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert "Traceback" not in error["message"]
    elif content_type == "application/json":
        json.loads(body)


@SETTINGS
@given(data=st.data())
def test_random_requests_get_2xx_or_4xx_json(
    target: tuple[Emulator, dict[str, str]], data: st.DataObject
) -> None:
    """Any method, path, query, content type and body: a clean 2xx or 4xx answer."""
    emu, ids = target
    baseline = emu.config
    method, path, headers, body = data.draw(requests(ids))
    try:
        assert_answer_is_clean(*send(emu, method, path, headers, body))
    finally:
        restore(emu, baseline)


@SETTINGS
@given(body=st.binary(min_size=1, max_size=200), missing=st.integers(min_value=1, max_value=500))
def test_a_body_shorter_than_its_length_is_a_400(
    target: tuple[Emulator, dict[str, str]], body: bytes, missing: int
) -> None:
    """A client that promises more bytes than it sends, then stops writing: 400, then close."""
    emu, _ = target
    with socket.create_connection(("127.0.0.1", emu.port), timeout=10) as connection:
        head = (
            f"POST /v1/batches HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body) + missing}\r\n\r\n"
        )
        connection.sendall(head.encode() + body)
        connection.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"]["message"]


@SETTINGS
@given(garbage=st.binary(max_size=200))
def test_garbage_on_the_wire_is_refused_politely(
    target: tuple[Emulator, dict[str, str]], garbage: bytes
) -> None:
    """Bytes that are not HTTP: either no answer or a 4xx JSON error; the server goes on."""
    emu, _ = target
    with socket.create_connection(("127.0.0.1", emu.port), timeout=10) as connection:
        connection.sendall(garbage + b"\r\n\r\n")
        connection.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    if answer:
        status = int(answer.split(b" ", 2)[1])
        assert 400 <= status < 500, answer
        assert "error" in json.loads(answer.partition(b"\r\n\r\n")[2])
    status, _, _ = send(emu, "GET", "/_emulator/stats", {}, b"")
    assert status == 200


@SETTINGS
@given(
    endpoint=st.sampled_from(ENDPOINTS),
    body=st.dictionaries(
        st.sampled_from(
            [
                "messages",
                "input",
                "prompt",
                "max_tokens",
                "max_output_tokens",
                "max_completion_tokens",
                "response_format",
                "text",
                "reasoning",
                "reasoning_effort",
                "dimensions",
                "instructions",
            ]
        ),
        json_values,
    ),
)
def test_answers_never_fail_whatever_the_body(endpoint: str, body: dict[str, Any]) -> None:
    """Any body that passed validation gets an answer with the endpoint's shape."""
    result = answer(endpoint, {**body, "model": "m"}, key="k", created=0, dims=4)
    assert result.status_code == 200
    json.dumps(result.body)


@SETTINGS
@given(body=st.binary(max_size=400), boundary=st.binary(min_size=1, max_size=10))
def test_the_multipart_parser_only_ever_raises_api_errors(body: bytes, boundary: bytes) -> None:
    """Random bytes parse into parts or raise ApiError(400), nothing else."""
    try:
        parse(body, boundary)
    except ApiError as error:
        assert error.status == 400


@pytest.fixture(scope="module")
def client(target: tuple[Emulator, dict[str, str]]) -> openai.OpenAI:
    """The SDK aimed at the module's emulator."""
    return sdk(target[0])


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(lines=st.lists(json_values.map(json.dumps) | st.text(max_size=40), min_size=1, max_size=6))
def test_random_input_files_end_in_a_final_batch(client: openai.OpenAI, lines: list[str]) -> None:
    """Whatever the input lines (after one valid first line), the batch ends completed or failed."""
    file = upload(client, [chat_line("first", "q"), *[line.replace("\n", " ") for line in lines]])
    created = client.batches.create(
        input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert finish(client, created.id).status in ("completed", "failed")
