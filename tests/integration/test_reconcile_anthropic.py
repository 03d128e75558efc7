"""The Anthropic lifecycle through the reconciler, over real HTTP against the emulator: built ->
normalized in the shared result schema, every outcome, faults, a crash between create and the
recorded id (a real process killed and restarted), and the key never written anywhere."""

from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import Engine
from support.drivers import reconcile_process as run_reconcile
from support.drivers import reconcile_until_done as drive_until_done
from support.factories import add_built_job
from support.ledger_reads import job_row, states_reached, statuses

from ledger.core.crashpoints import CRASH_POINTS
from ledger.core.db import open_ledger
from ledger.core.models import Job, JobEvent, Request
from ledger.emulator import Emulator, EmulatorConfig
from ledger.reconcile.cancel import cancel_jobs
from ledger.reconcile.engine import ReconcileOptions, Reconciler
from ledger.results.schema import RESULT_KEYS

MODEL = "claude-sonnet-4-5"
KEY = "sk-ant-api03-LEAKCANARY-reconcile-0123456789"
KILLED = 137


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    """A recognisable Anthropic key in the environment, to prove it never leaks."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    return KEY


def anthropic_job(engine: Engine, root: Path, ids: list[str], **kw: Any) -> int:
    return add_built_job(
        engine, root, kw.pop("run", "r"), ids, provider="anthropic", model=MODEL, **kw
    )


def reconcile_until_done(engine: Engine, emulator: Emulator, **options: Any) -> None:
    drive_until_done(engine, emulator.url, **options)


def one_batch_per_request_set(emulator: Emulator, jobs: int) -> None:
    """Exactly `jobs` batches, and no request set (params, custom_ids aside) sent twice."""
    stats = emulator.stats()["message_batches"]
    assert stats["created"] == jobs, stats
    assert sorted(stats["by_fingerprint"].values()) == [1] * jobs, stats


def test_a_job_goes_from_built_to_normalized_in_the_shared_schema(
    engine: Engine, emu: Emulator, key: str, tmp_path: Path
) -> None:
    """Request set, create, poll, results, normalize: one batch, results in input order."""
    ids = ["q.1", "q:2", "q_3"]
    job_id = anthropic_job(engine, tmp_path, ids)
    reconcile_until_done(engine, emu)
    job = job_row(engine, job_id)
    assert job.state == "normalized" and job.provider == "anthropic"
    assert job.base_url == emu.url and job.provider_status == "ended"
    assert job.input_file_id.startswith("requests:") and job.batch_id.startswith("msgbatch_")
    assert (job.requests_total, job.requests_completed, job.requests_failed) == (3, 3, 0)
    assert states_reached(engine, job_id) == [
        "built",
        "uploaded",
        "submitted",
        "in_progress",
        "completed",
        "downloaded",
        "normalized",
    ]
    assert statuses(engine, job_id) == ["succeeded"] * 3
    results = [json.loads(line) for line in Path(job.results_path).read_text().splitlines()]
    assert [r["custom_id"] for r in results] == ids
    first = results[0]
    assert list(first) == list(RESULT_KEYS)
    assert first["text"] == "Echo: say q.1" and first["finish_reason"] == "stop"
    assert first["model"] == MODEL and first["http_status"] == 200
    assert first["batch_id"] == job.batch_id and first["request_id"].startswith("msg_")
    assert first["usage"]["input_tokens"] > 0 and first["usage"]["output_tokens"] == 6
    assert job.input_tokens == sum(r["usage"]["input_tokens"] for r in results)
    one_batch_per_request_set(emu, 1)


@pytest.mark.parametrize(
    ("scenario", "state", "expected", "code"),
    [
        ("expire", "expired", {"succeeded": 3, "expired": 3}, "batch_expired"),
        ("cancel", "cancelled", {"succeeded": 3, "cancelled": 3}, "batch_cancelled"),
        ("all_fail", "completed", {"failed": 6}, None),
        ("not_found_grace", "completed", {"succeeded": 6}, None),
    ],
)
def test_each_outcome_ends_normalized_with_every_request_accounted_for(
    engine: Engine,
    emu: Emulator,
    key: str,
    tmp_path: Path,
    scenario: str,
    state: str,
    expected: dict[str, int],
    code: str | None,
) -> None:
    """Expiry and the provider's cancel keep partial results; all-errored and late-visible end."""
    emu.configure(scenario=scenario)
    job_id = anthropic_job(engine, tmp_path, [f"q{i}" for i in range(6)])
    reconcile_until_done(engine, emu)
    assert job_row(engine, job_id).state == "normalized"
    assert state in states_reached(engine, job_id)
    found = statuses(engine, job_id)
    assert {s: found.count(s) for s in set(found)} == expected
    if code is not None:
        with engine.connect() as connection:
            codes = set(
                connection.execute(
                    select(Request.error_code).where(Request.status != "succeeded")
                ).scalars()
            )
        assert codes == {code}
    one_batch_per_request_set(emu, 1)


def test_per_request_errors_are_failed_results_with_the_error_type(
    engine: Engine, emu: Emulator, key: str, tmp_path: Path
) -> None:
    """request_failures: errored requests are failed rows with Anthropic's error type."""
    emu.configure(scenario="request_failures", failure_rate=0.5)
    job_id = anthropic_job(engine, tmp_path, [f"q{i}" for i in range(20)])
    reconcile_until_done(engine, emu)
    with engine.connect() as connection:
        failed = connection.execute(
            select(Request.error_code, Request.http_status).where(Request.status == "failed")
        ).all()
    assert 0 < len(failed) < 20
    assert set(failed) <= {
        ("invalid_request_error", 400),
        ("api_error", 500),
        ("overloaded_error", 529),
    }
    assert set(statuses(engine, job_id)) == {"succeeded", "failed"}
    assert job_row(engine, job_id).requests_failed == len(failed)


def test_ledger_cancel_stops_a_running_batch_and_keeps_what_finished(
    engine: Engine, emu: Emulator, key: str, tmp_path: Path
) -> None:
    """A client cancel while in progress: canceling, then cancelled with partial results."""
    job_id = anthropic_job(engine, tmp_path, [f"q{i}" for i in range(4)])
    reconciler = Reconciler(
        engine, ReconcileOptions(poll_min=0, poll_max=0.05, jitter=0, base_url=emu.url)
    )
    while job_row(engine, job_id).state != "in_progress":
        reconciler.run_pass()
    outcome = cancel_jobs(engine, [job_id])
    assert outcome == {job_id: "cancel requested (canceling)"}
    reconcile_until_done(engine, emu)
    assert "cancelled" in states_reached(engine, job_id)
    assert sorted(statuses(engine, job_id)) == ["cancelled"] * 2 + ["succeeded"] * 2


def test_json_schema_uses_structured_outputs_and_json_mode_an_instruction(
    engine: Engine, emu: Emulator, key: str, tmp_path: Path
) -> None:
    """A schema answers parsed JSON; json_object sends the instruction (the echo is not JSON)."""
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    structured = anthropic_job(
        engine,
        tmp_path,
        ["s1"],
        run="schema",
        body={"response_format": {"type": "json_schema", "json_schema": {"schema": schema}}},
    )
    json_mode = anthropic_job(
        engine, tmp_path, ["j1"], run="mode", body={"response_format": {"type": "json_object"}}
    )
    reconcile_until_done(engine, emu)
    parsed = json.loads(Path(job_row(engine, structured).results_path).read_text())
    assert parsed["json"] == {"answer": "Echo: say s1"} and parsed["json_error"] is None
    instructed = json.loads(Path(job_row(engine, json_mode).results_path).read_text())
    assert instructed["json"] is None and instructed["json_error"]
    sent = [b.requests[0]["params"] for b in emu.store.message_batches.values()]
    assert any("valid JSON object" in p.get("system", "") for p in sent)
    assert any("output_config" in p for p in sent)


def test_a_shard_anthropic_cannot_take_fails_before_anything_is_sent(
    engine: Engine, emu: Emulator, key: str, tmp_path: Path
) -> None:
    """An embeddings shard for Anthropic fails at upload with the reason; no batch is made."""
    job_id = anthropic_job(engine, tmp_path, ["e1"], endpoint="/v1/embeddings")
    reconcile_until_done(engine, emu)
    job = job_row(engine, job_id)
    assert states_reached(engine, job_id)[:2] == ["built", "failed"]
    assert "chat requests only" in job.last_error
    with engine.connect() as connection:
        request = connection.execute(select(Request.status, Request.error_message)).one()
    assert request.status == "failed" and "chat requests only" in request.error_message
    assert emu.stats()["message_batches"]["created"] == 0


def test_lost_replies_server_errors_and_cut_downloads_still_give_one_batch_each(
    engine: Engine, timed_emu: Emulator, key: str, tmp_path: Path
) -> None:
    """Dropped creates, 500s, 429s, late-visible batches and cut results: one batch per job."""
    timed_emu.configure(
        scenario="not_found_grace",
        faults=[
            {"kind": "drop_response", "route": "create_message_batch", "times": 2},
            {"kind": "truncate_download", "route": "message_batch_results", "times": 2},
            {"kind": "http_500", "every": 5},
            {"kind": "http_429", "every": 7, "seconds": 0.01},
        ],
    )
    job_ids = [
        anthropic_job(engine, tmp_path, [f"j{s}-{i}" for i in range(4)], shard_index=s)
        for s in range(1, 5)
    ]
    reconcile_until_done(engine, timed_emu, concurrency=4)
    stats = timed_emu.stats()
    assert stats["faults"]["drop_response"] == 2 and stats["faults"]["truncate_download"] == 2
    assert stats["faults"]["http_500"] > 0 and stats["faults"]["http_429"] > 0
    one_batch_per_request_set(timed_emu, 4)
    for job_id in job_ids:
        assert job_row(engine, job_id).state == "normalized"
        assert statuses(engine, job_id) == ["succeeded"] * 4


def reconcile_process(
    db: Path, emulator: Emulator, *extra: str, crash_at: str | None = None
) -> subprocess.CompletedProcess[str]:
    return run_reconcile(
        db, emulator.url, "-v", *extra, env={"ANTHROPIC_API_KEY": KEY}, crash_at=crash_at
    )


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_killed_at_each_step_boundary_then_restarted(
    tmp_path: Path, timed_emu: Emulator, point: str
) -> None:
    """A real `ledger reconcile` dies at `point` and restarts: one batch per job, all final."""
    db = tmp_path / "ledger.db"
    engine = open_ledger(db)
    job_ids = [
        anthropic_job(engine, tmp_path, [f"s{s}-{i}" for i in range(3)], run="crash", shard_index=s)
        for s in (1, 2, 3)
    ]
    first = reconcile_process(db, timed_emu, "--until-done", crash_at=point)
    assert first.returncode == KILLED, first.stderr
    second = reconcile_process(db, timed_emu, "--until-done")
    assert second.returncode == 0, second.stderr
    one_batch_per_request_set(timed_emu, 3)
    with engine.connect() as connection:
        states = set(connection.execute(select(Job.state).where(Job.id.in_(job_ids))).scalars())
        request_statuses = set(connection.execute(select(Request.status)).scalars())
        adopted = [
            detail["adopted"]
            for detail in connection.execute(
                select(JobEvent.detail).where(JobEvent.to_state == "submitted")
            ).scalars()
        ]
    assert states == {"normalized"} and request_statuses == {"succeeded"}
    if point == "after_create":
        assert adopted.count(True) >= 1, "the orphaned batch was not adopted"
    assert KEY not in first.stderr + first.stdout + second.stderr + second.stdout


def test_the_key_is_never_in_the_database_logs_or_errors(
    engine: Engine,
    key: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Refused credentials, then a whole run: the key is nowhere in rows, events or logs."""
    caplog.set_level(logging.DEBUG)
    with Emulator(EmulatorConfig(polls_per_stage=1, api_key="sk-ant-another-key")).start() as emu:
        job_id = anthropic_job(engine, tmp_path, ["a", "b"])
        reconciler = Reconciler(
            engine, ReconcileOptions(poll_min=0, poll_max=0.05, jitter=0, base_url=emu.url)
        )
        report = reconciler.run_pass()
        assert report.paused and "authentication_error" in report.paused
        assert KEY not in report.paused
        refused = job_row(engine, job_id).last_error
        assert refused and "credentials" in refused
        emu.configure(api_key=KEY)
        reconcile_until_done(engine, emu)
    assert job_row(engine, job_id).state == "normalized"
    with engine.connect() as connection:
        for table in ("runs", "jobs", "job_events", "requests"):
            for row in connection.execute(text(f"SELECT * FROM {table}")):
                assert KEY not in repr(tuple(row)), table
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "authentication_error" in logged or refused in logged
    assert KEY not in logged and KEY not in caplog.text
    for path in tmp_path.rglob("*"):
        if path.is_file() and path.suffix in (".jsonl", ".db"):
            assert KEY.encode() not in path.read_bytes(), path
