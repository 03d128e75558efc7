"""Azure, Groq, Together and xAI over real HTTP: the `openai` SDK under each host's profile
against the emulator's routes for that host, from `built` to `normalized`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import openai
import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import Engine
from support.drivers import reconcile_until_done
from support.factories import add_built_job
from support.hosts import HOST_CASES, HostCase, files_holding
from support.ledger_reads import job_row

from ledger.core.models import JobEvent

IDS = ["q.1", "q:2", "q_3", "q-4"]


@pytest.fixture(params=HOST_CASES, ids=[case.provider for case in HOST_CASES])
def host(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> HostCase:
    case: HostCase = request.param
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv(case.key_env, case.key())
    return case


def uploaded_lines(emulator: Any, case: HostCase, job: Any) -> list[dict[str, Any]]:
    client = openai.OpenAI(base_url=case.base_url(emulator), api_key=case.key())
    return [json.loads(line) for line in client.files.content(job.input_file_id).text.splitlines()]


def test_each_host_goes_from_built_to_normalized_with_results_in_input_order(
    engine: Engine, emulator: Any, tmp_path: Path, host: HostCase
) -> None:
    """One batch on the host's routes; every request succeeded; results in input order."""
    job_id = add_built_job(engine, tmp_path, "r", IDS, provider=host.provider)
    reconcile_until_done(engine, host.base_url(emulator))
    job = job_row(engine, job_id)
    assert job.state == "normalized" and job.provider == host.provider
    assert job.base_url == host.base_url(emulator)
    results = [json.loads(line) for line in Path(job.results_path).read_text().splitlines()]
    assert [r["custom_id"] for r in results] == IDS
    assert [r["status"] for r in results] == ["succeeded"] * 4
    assert results[0]["text"] == "Echo: say q.1"
    stats = emulator.stats()["batches"]
    assert stats["by_host"] == {host.provider: 1}
    assert list(stats["by_input_filename"].values()) == [1]


def test_each_host_gets_its_own_line_envelope(
    engine: Engine, emulator: Any, tmp_path: Path, host: HostCase
) -> None:
    """Together's lines lose method and url, Azure's url loses /v1, the others are as built."""
    job_id = add_built_job(engine, tmp_path, "r", IDS, provider=host.provider)
    reconcile_until_done(engine, host.base_url(emulator))
    line = uploaded_lines(emulator, host, job_row(engine, job_id))[0]
    if host.provider == "together":
        assert set(line) == {"custom_id", "body"}
    else:
        url = "/chat/completions" if host.provider == "azure" else "/v1/chat/completions"
        assert (line["method"], line["url"]) == ("POST", url)
    assert line["custom_id"] == "q.1" and line["body"]["model"] == "gpt-4o-mini"


def test_the_key_comes_from_the_hosts_variable_and_is_never_stored(
    engine: Engine, emulator: Any, tmp_path: Path, host: HostCase, db_url: str
) -> None:
    """The key is read from the host's own variable; neither the DB nor the run folder hold it."""
    job_id = add_built_job(engine, tmp_path, "r", IDS, provider=host.provider)
    reconcile_until_done(engine, host.base_url(emulator))
    assert job_row(engine, job_id).state == "normalized"
    assert files_holding(tmp_path, host.key()) == []
    with engine.connect() as connection:
        for table in ("jobs", "job_events", "requests", "runs"):
            rows = connection.execute(text(f"SELECT * FROM {table}")).all()
            assert host.key() not in repr(rows), table


def test_without_the_hosts_variable_the_reconciler_pauses_on_a_missing_key(
    engine: Engine, emulator: Any, tmp_path: Path, host: HostCase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OPENAI_API_KEY is not a fallback: a host's key lives only in its own variable."""
    monkeypatch.delenv(host.key_env)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-not-for-other-hosts")
    add_built_job(engine, tmp_path, "r", IDS, provider=host.provider)
    from ledger.reconcile.engine import ReconcileOptions, Reconciler

    options = ReconcileOptions(poll_min=0.0, base_url=host.base_url(emulator))
    report = Reconciler(engine, options).run_pass()
    assert report.paused is not None and host.key_env in str(report.paused)
    assert emulator.stats()["files"]["created"] == 0


def test_azure_keeps_polling_a_batch_that_runs_past_its_window(
    engine: Engine, emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Azure never expires a job: one past its window stays in progress, then completes."""
    case = HOST_CASES[0]
    monkeypatch.setenv(case.key_env, case.key())
    emulator.configure(scenario="expire")
    job_id = add_built_job(engine, tmp_path, "r", IDS, provider="azure")
    reconcile_until_done(engine, case.base_url(emulator))
    job = job_row(engine, job_id)
    assert job.state == "normalized" and job.provider_status == "completed"
    with engine.connect() as connection:
        polls = connection.execute(
            select(JobEvent.to_state).where(JobEvent.job_id == job_id)
        ).scalars()
        assert "expired" not in list(polls)
    results = [json.loads(line) for line in Path(job.results_path).read_text().splitlines()]
    assert [r["status"] for r in results] == ["succeeded"] * 4
    assert emulator.stats()["batches"]["by_scenario"] == {"overdue": 1}


def test_together_create_answers_a_job_and_upper_case_statuses_are_mapped(
    emulator: Any, tmp_path: Path
) -> None:
    """Together's `{job: ...}` create answer and its VALIDATING word reach the ledger mapped."""
    from adapters.openai.batch import OpenAIBatchProvider
    from adapters.openai.profiles import TOGETHER
    from ledger.core.states import State

    shard = tmp_path / "shard.jsonl"
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    line = {"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": body}
    shard.write_text(json.dumps(line) + "\n")
    provider = OpenAIBatchProvider(
        base_url=emulator.url + "/together/v1", api_key="k", profile=TOGETHER
    )
    uploaded = provider.upload_input(shard, filename="ledger-job-1.jsonl")
    assert [f.id for f in provider.find_uploads("ledger-job-1.jsonl")] == [uploaded.id]
    created = provider.create_batch(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", metadata={"ledger_job": "1"}
    )
    assert created.id.startswith("batch_") and created.provider_status == "VALIDATING"
    assert created.state is State.SUBMITTED
    found = provider.find_batches(input_file_id=uploaded.id, metadata={"x": "y"}, created_after=0)
    assert [b.id for b in found] == [created.id]
