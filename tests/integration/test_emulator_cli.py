"""`ledger emulator serve` runs as its own process, answers the SDK, and stops on a signal."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import openai
import pytest
from support.emulator_support import chat_line, finish, submit

LEDGER = str(Path(sys.executable).parent / "ledger")


@contextmanager
def serving(*options: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`ledger emulator serve` with options; yields the process and the base URL it printed."""
    process = subprocess.Popen(
        [LEDGER, "emulator", "serve", "--port", "0", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1"), base_url
        yield process, base_url
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_answers_the_sdk_and_stops_on_a_signal(tmp_path: Path, stop: signal.Signals) -> None:
    """The printed base URL serves a whole batch; SIGTERM or SIGINT ends it with exit code 0."""
    with serving(
        "--polls-per-stage", "1", "--state-dir", str(tmp_path / "state"), "--api-key", "sk-cli"
    ) as (process, base_url):
        client = openai.OpenAI(api_key="sk-cli", base_url=base_url, max_retries=0)
        done = finish(client, submit(client, [chat_line("a", "hello")]).id)
        assert done.status == "completed"
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(api_key="sk-other", base_url=base_url, max_retries=0).files.list()
        process.send_signal(stop)
        assert process.wait(timeout=10) == 0
    assert (tmp_path / "state" / "state.sqlite3").exists()


def test_serve_takes_scenarios_rules_and_faults(tmp_path: Path) -> None:
    """--scenario, --scenario-rule and --fault reach the emulator."""
    with serving(
        "--polls-per-stage",
        "1",
        "--scenario",
        "all_fail",
        "--scenario-rule",
        "lucky=normal",
        "--fault",
        '{"kind": "http_500", "route": "list_files", "times": 1}',
    ) as (process, base_url):
        client = openai.OpenAI(api_key="k", base_url=base_url, max_retries=0)
        assert finish(client, submit(client, [chat_line("a", "q")]).id).output_file_id is None
        lucky = finish(client, submit(client, [chat_line("a", "q")], name="lucky.jsonl").id)
        assert lucky.output_file_id is not None
        with pytest.raises(openai.InternalServerError):
            client.files.list()
        # Two inputs, the all_fail batch's error file and the lucky batch's output file.
        assert len(client.files.list().data) == 4
        process.terminate()


def test_serve_refuses_bad_options_and_a_busy_port() -> None:
    """A bad fault or a port in use: one error line and exit code 2."""
    bad = subprocess.run(
        [LEDGER, "emulator", "serve", "--fault", "{oops"], capture_output=True, text=True
    )
    assert bad.returncode == 2 and bad.stderr.startswith("error: a fault is a JSON object")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        taken = subprocess.run(
            [LEDGER, "emulator", "serve", "--port", str(port)], capture_output=True, text=True
        )
    assert taken.returncode == 2 and "cannot serve on 127.0.0.1" in taken.stderr
