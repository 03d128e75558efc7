"""A ledger worth looking at, made offline by the emulator, and `ledger ui` started over it.

`build_dashboard_ledger` records two runs: `eval-week-48`, finished (four batches over two models:
one where a share of the requests fail, one that expires part way), and `live-run`, sent but never
reconciled, so its batches stay in flight and its pages keep refreshing themselves.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ledger.api import Ledger
from ledger.emulator import Emulator, EmulatorConfig

FINISHED_RUN = "eval-week-48"
LIVE_RUN = "live-run"
#: Requests of the finished run per model; simple rows are grouped into shards by model.
MODEL_REQUESTS = {"gpt-4o-mini": 45, "gpt-4o": 15}
REQUESTS_PER_BATCH = 15
LIVE_REQUESTS = 20

_TOPICS = ("tides", "photosynthesis", "prime numbers", "volcanoes", "rainbows", "magnets")


@dataclass(frozen=True)
class DashboardLedger:
    #: The ledger's SQLAlchemy URL.
    url: str
    finished_run: str = FINISHED_RUN
    live_run: str = LIVE_RUN


def _write_rows(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def build_dashboard_ledger(directory: Path, url: str | None = None) -> DashboardLedger:
    """Record the finished run and the live run in the ledger at `url` (default
    `directory/ledger.db`), with their files in `directory` (a few seconds)."""
    directory.mkdir(parents=True, exist_ok=True)
    url = url or f"sqlite:///{directory / 'ledger.db'}"
    rows: list[dict[str, object]] = []
    for model, count in MODEL_REQUESTS.items():
        for _ in range(count):
            number = len(rows) + 1
            topic = _TOPICS[number % len(_TOPICS)]
            rows.append(
                {
                    "id": f"q{number:03d}",
                    "prompt": f"Explain {topic} to a curious ten-year-old (question {number}).",
                    "model": model,
                }
            )
    finished_input = _write_rows(directory / "questions.jsonl", rows)
    live_input = _write_rows(
        directory / "live.jsonl",
        [{"id": f"l{n:03d}", "prompt": f"Name a colour ({n})."} for n in range(LIVE_REQUESTS)],
    )
    config = EmulatorConfig(
        polls_per_stage=1,
        # Shard 2 (of the mini model) meets request failures; shard 4 (gpt-4o) expires half way.
        scenario_rules=[
            {"file_name_contains": "ledger-job2-", "scenario": "request_failures"},
            {"file_name_contains": "ledger-job4-", "scenario": "expire"},
        ],
        failure_rate=0.5,
    )
    saved_key = os.environ.get("OPENAI_API_KEY")
    os.environ["OPENAI_API_KEY"] = "sk-test-dashboard"
    try:
        with Emulator(config).start() as emulator:
            ledger = Ledger.open(url, base_url=emulator.base_url, poll_min=0.05, poll_max=0.1)
            with ledger:
                ledger.submit(
                    finished_input,
                    run=FINISHED_RUN,
                    max_requests=REQUESTS_PER_BATCH,
                    max_output_tokens=200,
                    workdir=directory,
                )
                ledger.reconcile(run=FINISHED_RUN, until_done=True, timeout=60, interval=0.05)
                ledger.submit(
                    live_input,
                    run=LIVE_RUN,
                    model="gpt-4o-mini",
                    max_requests=10,
                    max_output_tokens=50,
                    workdir=directory,
                )
    finally:
        if saved_key is None:
            os.environ.pop("OPENAI_API_KEY", None)
        else:
            os.environ["OPENAI_API_KEY"] = saved_key
    return DashboardLedger(url)


@dataclass(frozen=True)
class RunningUI:
    url: str
    process: subprocess.Popen[str]


_LISTENING = re.compile(r"(http://\S+/)")


@contextmanager
def running_ui(database: str | Path, *options: str) -> Iterator[RunningUI]:
    """`ledger ui --port 0 OPTIONS` over `database` (a path or URL) in a subprocess, stopped
    (SIGTERM) after."""
    command = [sys.executable, "-m", "cli", "--db", str(database), "ui", "--port", "0", *options]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 20
        url = None
        seen = []
        while url is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            seen.append(line)
            found = _LISTENING.search(line)
            url = found.group(1) if found else None
        if url is None:
            raise AssertionError(f"ledger ui did not start: {''.join(seen)}")
        # Keep reading what it prints, so a full pipe can never stall the server.
        threading.Thread(target=process.stdout.read, daemon=True).start()
        yield RunningUI(url, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
