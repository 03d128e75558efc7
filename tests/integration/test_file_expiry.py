"""Result files that are gone: `--output-expires-after` reaches create, input files are uploaded
with an expiry, the emulator answers 404 once a file has expired, and a job whose files are gone
past the grace ends normalized with each request `unavailable` and the reason, which `ledger
retry` resends."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from cli import cli
from ledger import Ledger
from ledger.core.models import Job, Request
from ledger.core.states import State
from ledger.emulator import Emulator, EmulatorConfig

HOUR = 3600
#: Reconcile up to the provider's end of each batch, downloading nothing yet.
UP_TO_THE_END = (State.BUILT, State.UPLOADED, State.SUBMITTED, State.IN_PROGRESS)


class Clock:
    """Wall time, moved forward at will."""

    def __init__(self) -> None:
        self.shift = 0.0

    def __call__(self) -> float:
        return time.time() + self.shift


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def emu(clock: Clock) -> Iterator[Emulator]:
    with Emulator(EmulatorConfig(polls_per_stage=1), clock=clock).start() as running:
        yield running


def test_gone_result_files_end_unavailable_and_retry_resends_them(
    tmp_path: Path, emu: Emulator, clock: Clock, api_key: str
) -> None:
    """Files kept 1 h (asked at submit); fetched 1 h later they answer 404; after two 404s (the
    grace here) the job is normalized with every request `unavailable` and why; a retry sends
    them again and they succeed."""
    rows = "".join(json.dumps({"id": f"q{i}", "prompt": f"say {i}"}) + "\n" for i in range(4))
    (tmp_path / "qs.jsonl").write_text(rows)
    ledger = Ledger.open(tmp_path / "ledger.db", base_url=emu.base_url, poll_min=0, poll_max=0.05)
    ledger.submit(tmp_path / "qs.jsonl", run="gone", model="gpt-4o-mini", output_expires_after=HOUR)
    fast: dict[str, Any] = {"jitter": 0.0, "not_found_answers": 2, "not_found_window": 0.0}
    job: Any = None
    for _ in range(20):
        ledger.reconcile(run="gone", states=UP_TO_THE_END, **fast)
        with ledger.engine.connect() as connection:
            job = connection.execute(select(Job.__table__)).one()
        if job.state == "completed":
            break
    assert job.state == "completed" and job.output_file_id

    client = openai.OpenAI(base_url=emu.base_url, api_key="sk-test", max_retries=0)
    batch = client.batches.retrieve(job.batch_id)
    output = client.files.retrieve(job.output_file_id)
    uploaded = client.files.retrieve(job.input_file_id)
    assert (
        batch.completed_at is not None and output.expires_at == batch.completed_at + HOUR
    )  # output_expires_after reached create
    assert uploaded.expires_at == uploaded.created_at + 7 * 24 * HOUR  # expires_after on upload

    clock.shift = HOUR + 1
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(job.output_file_id)
    ledger.reconcile(run="gone", **fast)
    with ledger.engine.connect() as connection:
        job = connection.execute(select(Job.__table__)).one()
    assert job.state == "completed" and job.not_found_count == 1  # one 404 proves nothing
    assert "is gone at the provider" in job.last_error
    ledger.reconcile(run="gone", until_done=True, timeout=30, interval=0.01, **fast)

    results = list(ledger.results("gone"))
    assert [r.status for r in results] == ["unavailable"] * 4
    assert results[0].error is not None
    assert results[0].error.code == "result_file_unavailable"
    assert job.output_file_id in (results[0].error.message or "")
    with ledger.engine.connect() as connection:
        progress = connection.exec_driver_sql(
            "SELECT requests_succeeded, requests_not_run FROM run_progress"
        ).one()
    assert tuple(progress) == (0, 4)  # unavailable is not counted as succeeded

    outcome = CliRunner().invoke(
        cli,
        [
            "--db",
            str(tmp_path / "ledger.db"),
            "retry",
            "gone",
            "--only",
            "unavailable",
            "--base-url",
            emu.base_url,
            "--poll-min",
            "0",
        ],
        catch_exceptions=False,
    )
    assert outcome.exit_code == 0, outcome.output
    assert "4 request(s)" in outcome.output
    ledger.reconcile(run="gone", until_done=True, timeout=30, interval=0.01, **fast)
    assert Counter(r.status for r in ledger.results("gone")) == {"succeeded": 4}
    with ledger.engine.connect() as connection:
        assert connection.execute(select(Request.status).distinct()).scalars().all() == [
            "succeeded"
        ]
    ledger.close()


def test_output_expires_after_is_refused_out_of_range(tmp_path: Path) -> None:
    """The API takes 1 hour to 30 days: anything else is refused before anything is built."""
    (tmp_path / "qs.jsonl").write_text(json.dumps({"id": "a", "prompt": "x"}) + "\n")
    outcome = CliRunner().invoke(
        cli,
        [
            "--db",
            str(tmp_path / "l.db"),
            "submit",
            str(tmp_path / "qs.jsonl"),
            "--model",
            "gpt-4o-mini",
            "--output-expires-after",
            "60",
            "--dry-run",
        ],
    )
    assert outcome.exit_code == 2 and "--output-expires-after" in outcome.output
    assert not (tmp_path / "runs").exists()
