"""The Mistral lifecycle through the reconciler, over real HTTP with the `mistralai` SDK against
the emulator's `/mistral/v1` routes: built -> normalized in the shared result schema, every
outcome, faults (dropped replies, 500, 429, cut downloads), and the key never written anywhere.
A real process killed at each step boundary: tests/crash/test_crash_mistral.py."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import Engine
from support.drivers import reconcile_until_done as drive_until_done
from support.factories import add_built_job
from support.ledger_reads import job_row, states_reached, statuses

from ledger.core.crashpoints import set_crash_hook
from ledger.core.models import JobEvent
from ledger.emulator import Emulator, EmulatorConfig
from ledger.reconcile.cancel import cancel_jobs
from ledger.results.schema import RESULT_KEYS

MODEL = "mistral-small-latest"
KEY = "mistral-LEAKCANARY-reconcile-0123456789"


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    """A recognisable Mistral key in the environment, to prove it never leaks."""
    monkeypatch.setenv("MISTRAL_API_KEY", KEY)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    return KEY


def url(emulator: Emulator) -> str:
    """Mistral's `/v1` root on the emulator (as `https://api.mistral.ai/v1`)."""
    return emulator.url + "/mistral/v1"


def mistral_job(engine: Engine, root: Path, ids: list[str], **kw: Any) -> int:
    return add_built_job(
        engine, root, kw.pop("run", "r"), ids, provider="mistral", model=MODEL, **kw
    )


def reconcile_until_done(engine: Engine, emulator: Emulator, **options: Any) -> None:
    drive_until_done(engine, url(emulator), **options)


def one_job_per_shard(emulator: Emulator, jobs: int) -> None:
    """Exactly `jobs` remote jobs, each over a different input file name, each file once."""
    stats = emulator.stats()
    assert stats["batches"]["created"] == jobs, stats
    assert sorted(stats["batches"]["by_input_filename"].values()) == [1] * jobs, stats
    assert stats["batches"]["by_host"] == {"mistral": jobs}
    assert all(n == 1 for n in stats["files"]["by_name"].values()), stats


def test_a_job_goes_from_built_to_normalized_in_the_shared_schema(
    engine: Engine, emu: Emulator, key: str, tmp_path: Path
) -> None:
    """Upload, create, poll, download, normalize: one Mistral job, results in input order."""
    ids = ["q.1", "q:2", "q_3"]
    job_id = mistral_job(engine, tmp_path, ids)
    reconcile_until_done(engine, emu)
    job = job_row(engine, job_id)
    assert job.state == "normalized" and job.provider == "mistral"
    assert job.base_url == url(emu) and job.provider_status == "SUCCESS"
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
    results = [json.loads(line) for line in Path(job.results_path).read_text().splitlines()]
    assert [r["custom_id"] for r in results] == ids
    first = results[0]
    assert list(first) == list(RESULT_KEYS)
    assert first["status"] == "succeeded" and first["text"] == "Echo: say q.1"
    assert first["model"] == MODEL and first["batch_id"] == job.batch_id
    one_job_per_shard(emu, 1)


def test_the_upload_is_mistrals_envelope_and_the_job_is_tagged(
    engine: Engine, emu: Emulator, key: str, tmp_path: Path
) -> None:
    """Lines go up as `{custom_id, body}`; the job names the model and carries the ledger's tags."""
    job_id = mistral_job(engine, tmp_path, ["a", "b"])
    reconcile_until_done(engine, emu)
    job = job_row(engine, job_id)
    stored = emu.store.batches[job.batch_id]
    lines = emu.store.content(stored.input_file_id).splitlines()
    assert [set(json.loads(line)) for line in lines] == [{"custom_id", "body"}] * 2
    assert stored.model == MODEL and stored.host == "mistral"
    assert stored.metadata is not None and stored.metadata["ledger_job"] == str(job_id)
    assert str(job_id) in stored.input_filename


@pytest.mark.parametrize(
    ("scenario", "state", "word", "expected"),
    [
        ("expire", "expired", "TIMEOUT_EXCEEDED", {"succeeded": 3, "expired": 3}),
        ("cancel", "cancelled", "CANCELLED", {"succeeded": 3, "cancelled": 3}),
        ("request_failures", "completed", "SUCCESS", None),
        ("all_fail", "completed", "SUCCESS", {"failed": 6}),
        ("fail_validation", "failed", "FAILED", {"failed": 6}),
        ("not_found_grace", "completed", "SUCCESS", {"succeeded": 6}),
        ("slow_finalizing", "completed", "SUCCESS", {"succeeded": 6}),
    ],
)
def test_each_outcome_ends_normalized_with_every_request_accounted_for(
    engine: Engine,
    emu: Emulator,
    key: str,
    tmp_path: Path,
    scenario: str,
    state: str,
    word: str,
    expected: dict[str, int] | None,
) -> None:
    """Timeout, Mistral's own cancel, errored requests, a failed job: six results, in order."""
    emu.configure(scenario=scenario, failure_rate=0.5)
    ids = [f"q{i}" for i in range(6)]
    job_id = mistral_job(engine, tmp_path, ids)
    reconcile_until_done(engine, emu)
    job = job_row(engine, job_id)
    assert job.state == "normalized" and job.provider_status == word
    assert state in states_reached(engine, job_id)
    found = statuses(engine, job_id)
    if expected is None:  # some requests errored: both kinds present, none missing
        assert set(found) == {"succeeded", "failed"}
    else:
        assert {s: found.count(s) for s in set(found)} == expected
    results = [json.loads(line) for line in Path(job.results_path).read_text().splitlines()]
    assert [r["custom_id"] for r in results] == ids
    one_job_per_shard(emu, 1)


def test_a_result_naming_no_request_or_one_twice_is_reported_per_request(
    engine: Engine, emu: Emulator, key: str, tmp_path: Path
) -> None:
    """Mistral's output names a stranger and one request twice, and drops another: the stranger
    is quarantined, the request answered twice is a counted conflict (the first line read kept),
    the dropped one is missing; every result stays in input order."""
    ids = ["a", "b", "c", "d"]
    job_id = mistral_job(engine, tmp_path, ids)

    def spoil_output(point: str) -> None:
        # Once the job has ended at the provider, its output file is what Mistral serves.
        batch = next(iter(emu.store.batches.values()), None)
        if point != "after_poll" or batch is None or batch.output_file_id is None:
            return
        record = emu.store.files[batch.output_file_id]
        content = emu.store.content(record.id)
        if b'"zz"' in content:
            return
        lines = {json.loads(line)["custom_id"]: line for line in content.splitlines()}
        stranger = lines["a"].replace(b'"custom_id": "a"', b'"custom_id": "zz"')
        twice = lines["b"].replace(b'"Echo: say b"', b'"Echo: something else"')
        content = b"\n".join([lines["a"], lines["b"], twice, lines["c"], stranger]) + b"\n"
        with emu.store.lock:
            emu.store._contents[record.id] = content  # pyright: ignore[reportPrivateUsage]
            record.bytes = len(content)

    set_crash_hook(spoil_output)
    try:
        reconcile_until_done(engine, emu)
    finally:
        set_crash_hook(None)
    job = job_row(engine, job_id)
    assert job.state == "normalized"
    results = [json.loads(line) for line in Path(job.results_path).read_text().splitlines()]
    assert [r["custom_id"] for r in results] == ids
    assert results[0]["status"] == "succeeded"
    assert results[2]["status"] == "succeeded" and results[3]["status"] == "missing"
    assert results[1]["text"] == "Echo: say b"  # a tie: the first line read is kept
    with engine.connect() as connection:
        detail = connection.execute(
            select(JobEvent.detail).where(JobEvent.to_state == "normalized")
        ).scalar_one()
    assert detail is not None
    assert detail["conflicts"] == 1 and detail["conflict_custom_ids"] == ["b"]
    assert detail["quarantined"] == 1
    quarantined = (Path(job.results_path).parent).glob("*.quarantine.jsonl")
    assert any(b'"zz"' in path.read_bytes() for path in quarantined)


def test_ledger_cancel_asks_mistral_and_keeps_what_finished(
    engine: Engine, emu: Emulator, key: str, tmp_path: Path
) -> None:
    """A cancel goes through CANCELLATION_REQUESTED to CANCELLED; undone requests are cancelled."""
    job_id = mistral_job(engine, tmp_path, [f"c{i}" for i in range(4)])
    drive_until_done_after_cancel = _run_until_in_progress(engine, emu, job_id)
    cancel_jobs(engine, [job_id], base_url=url(emu))
    drive_until_done_after_cancel()
    job = job_row(engine, job_id)
    assert job.state == "normalized" and job.provider_status == "CANCELLED"
    assert "cancelled" in statuses(engine, job_id)


def _run_until_in_progress(engine: Engine, emu: Emulator, job_id: int) -> Any:
    _run_until(engine, emu, job_id, "in_progress")
    return lambda: reconcile_until_done(engine, emu)


def _run_until(engine: Engine, emu: Emulator, job_id: int, state: str) -> None:
    from ledger.reconcile.engine import ReconcileOptions, Reconciler

    options = ReconcileOptions(poll_min=0.0, poll_max=0.05, jitter=0.0, base_url=url(emu))
    reconciler = Reconciler(engine, options)
    for _ in range(20):
        reconciler.run_pass()
        if job_row(engine, job_id).state == state:
            break
    assert job_row(engine, job_id).state == state


def test_lost_replies_server_errors_and_cut_downloads_still_give_one_job_each(
    engine: Engine, timed_emu: Emulator, key: str, tmp_path: Path
) -> None:
    """Dropped uploads and creates, 500s, 429s, late-visible jobs, cut files: one job per shard."""
    timed_emu.configure(
        scenario="not_found_grace",
        faults=[
            {"kind": "drop_response", "route": "upload_file", "times": 1},
            {"kind": "drop_response", "route": "create_batch", "times": 2},
            {"kind": "truncate_download", "route": "file_content", "times": 2},
            {"kind": "http_500", "every": 5},
            {"kind": "http_429", "every": 7, "seconds": 0.01},
        ],
    )
    job_ids = [
        mistral_job(engine, tmp_path, [f"j{s}-{i}" for i in range(4)], shard_index=s)
        for s in range(1, 4)
    ]
    reconcile_until_done(engine, timed_emu, concurrency=3)
    stats = timed_emu.stats()
    assert stats["faults"]["drop_response"] == 3 and stats["faults"]["truncate_download"] == 2
    assert stats["faults"]["http_500"] > 0 and stats["faults"]["http_429"] > 0
    one_job_per_shard(timed_emu, 3)
    for job_id in job_ids:
        assert job_row(engine, job_id).state == "normalized"
        assert statuses(engine, job_id) == ["succeeded"] * 4


def test_the_key_is_never_in_the_database_logs_or_errors(
    engine: Engine, key: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Refused credentials, then a whole run: the key is nowhere in rows, events, logs, files."""
    from ledger.reconcile.engine import ReconcileOptions, Reconciler

    caplog.set_level(logging.DEBUG)
    with Emulator(EmulatorConfig(polls_per_stage=1, api_key="another-key-entirely")).start() as emu:
        job_id = mistral_job(engine, tmp_path, ["a", "b"])
        options = ReconcileOptions(poll_min=0, poll_max=0.05, jitter=0, base_url=url(emu))
        report = Reconciler(engine, options).run_pass()
        assert report.paused and "401" in report.paused and KEY not in report.paused
        refused = job_row(engine, job_id).last_error
        assert refused and "credentials" in refused and KEY not in refused
        emu.configure(api_key=KEY)
        reconcile_until_done(engine, emu)
    assert job_row(engine, job_id).state == "normalized"
    with engine.connect() as connection:
        for table in ("runs", "jobs", "job_events", "requests"):
            for row in connection.execute(text(f"SELECT * FROM {table}")):
                assert KEY not in repr(tuple(row)), table
    assert KEY not in caplog.text
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path
