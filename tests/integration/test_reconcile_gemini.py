"""The Gemini Batch Mode lifecycle through the reconciler, with the real `google-genai` SDK over
real HTTP against the emulator: built -> normalized in the shared result schema, every outcome
(succeeded, errored, expired, cancelled, a key twice, a key unknown), faults, and the key never
written anywhere. `kill -9` at every step boundary is tests/crash/test_crash_gemini.py."""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import Engine
from support.drivers import reconcile_until_done as drive_until_done
from support.factories import add_built_job
from support.ledger_reads import job_row, states_reached, statuses

from adapters.base import MissingAPIKey
from adapters.registry import get_provider
from ledger.core.models import Request
from ledger.emulator import Emulator, EmulatorConfig
from ledger.reconcile.cancel import cancel_jobs
from ledger.reconcile.engine import ReconcileOptions, Reconciler
from ledger.results.schema import RESULT_KEYS

MODEL = "gemini-2.5-flash"
KEY = "AIzaSy-LEAKCANARY-gemini-0123456789"


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    """A recognisable Gemini key in the environment, to prove it never leaks; these jobs go
    through the Files API (inline jobs: test_gemini_inline.py)."""
    monkeypatch.setenv("LEDGER_GEMINI_INLINE_MAX_BYTES", "0")
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    return KEY


def gemini_job(engine: Engine, root: Path, ids: list[str], **kw: Any) -> int:
    return add_built_job(
        engine, root, kw.pop("run", "r"), ids, provider="gemini", model=MODEL, **kw
    )


def one_batch_per_job(emulator: Emulator, jobs: int) -> None:
    """Exactly `jobs` batches at the emulator, each tagged with a different job."""
    names = [b.display_name for b in emulator.gemini_api.state.batches.values()]
    per_job = Counter(name.rsplit("-", 1)[0] for name in names)
    assert len(names) == jobs and set(per_job.values()) == {1}, names


def test_a_job_goes_from_built_to_normalized_in_the_shared_schema(
    engine: Engine, emu: Emulator, key: str, tmp_path: Path
) -> None:
    """Upload, create, poll, download, normalize: one batch, results in input order."""
    ids = ["q.1", "q:2", "q_3"]
    job_id = gemini_job(engine, tmp_path, ids)
    drive_until_done(engine, emu.url)
    job = job_row(engine, job_id)
    assert job.state == "normalized" and job.provider == "gemini"
    assert job.base_url == emu.url and job.provider_status == "JOB_STATE_SUCCEEDED"
    assert job.input_file_id.startswith("files/") and job.input_file_id.endswith("#" + MODEL)
    assert job.batch_id.startswith("batches/")
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
    assert first["http_status"] == 200 and first["batch_id"] == job.batch_id
    assert first["usage"]["input_tokens"] == 4 and first["usage"]["output_tokens"] == 6
    batch = next(iter(emu.gemini_api.state.batches.values()))
    assert batch.display_name == f"ledger-job{job_id}-" + batch.display_name.rsplit("-", 1)[1]
    assert batch.requests[0] == {
        "key": "q.1",
        "request": {"contents": [{"role": "user", "parts": [{"text": "say q.1"}]}]},
    }
    one_batch_per_job(emu, 1)


@pytest.mark.parametrize(
    ("scenario", "state", "expected", "code"),
    [
        ("expire", "expired", {"expired": 6}, "batch_expired"),
        ("cancel", "cancelled", {"cancelled": 6}, "batch_cancelled"),
        ("all_fail", "completed", {"failed": 6}, None),
        ("not_found_grace", "completed", {"succeeded": 6}, None),
        ("duplicate_key", "completed", {"succeeded": 4, "failed": 1, "missing": 1}, None),
        ("unknown_key", "completed", {"succeeded": 5, "missing": 1}, "missing_result"),
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
    """Expired and cancelled batches leave no file: every request ends so; a key on two lines
    fails that request and leaves the one whose answer it stole missing; an unknown key is
    quarantined and its request missing."""
    emu.configure(scenario=scenario)
    job_id = gemini_job(engine, tmp_path, [f"q{i}" for i in range(6)])
    drive_until_done(engine, emu.url)
    assert job_row(engine, job_id).state == "normalized"
    assert state in states_reached(engine, job_id)
    found = statuses(engine, job_id)
    assert {s: found.count(s) for s in set(found)} == expected
    with engine.connect() as connection:
        codes = set(
            connection.execute(
                select(Request.error_code).where(Request.status != "succeeded")
            ).scalars()
        )
    if code is not None:
        assert codes == {code}
    if scenario == "duplicate_key":
        assert codes == {"duplicate_key", "missing_result"}
    if scenario == "unknown_key":
        quarantine = Path(job_row(engine, job_id).results_path).with_suffix(".quarantine.jsonl")
        assert "not-sent" in quarantine.read_text()
    one_batch_per_job(emu, 1)


def test_per_request_errors_are_failed_results_with_google_status(
    engine: Engine, emu: Emulator, key: str, tmp_path: Path
) -> None:
    """request_failures: error lines are failed rows with Google's status word and HTTP code."""
    emu.configure(scenario="request_failures", failure_rate=0.5)
    gemini_job(engine, tmp_path, [f"q{i}" for i in range(20)])
    drive_until_done(engine, emu.url)
    with engine.connect() as connection:
        failed = connection.execute(
            select(Request.error_code, Request.http_status).where(Request.status == "failed")
        ).all()
    assert 0 < len(failed) < 20
    assert set(failed) <= {
        ("INVALID_ARGUMENT", 400),
        ("INTERNAL", 500),
        ("RESOURCE_EXHAUSTED", 429),
    }


def test_ledger_cancel_stops_a_running_batch(
    engine: Engine, emu: Emulator, key: str, tmp_path: Path
) -> None:
    """A client cancel while running: the batch ends cancelled and every request with it."""
    job_id = gemini_job(engine, tmp_path, [f"q{i}" for i in range(4)])
    reconciler = Reconciler(
        engine, ReconcileOptions(poll_min=0, poll_max=0.05, jitter=0, base_url=emu.url)
    )
    while job_row(engine, job_id).state != "in_progress":
        reconciler.run_pass()
    cancel_jobs(engine, [job_id])
    drive_until_done(engine, emu.url)
    assert "cancelled" in states_reached(engine, job_id)
    assert statuses(engine, job_id) == ["cancelled"] * 4


def test_a_shard_gemini_cannot_take_fails_before_anything_is_sent(
    engine: Engine, emu: Emulator, key: str, tmp_path: Path
) -> None:
    """A Responses API shard fails at upload with the reason; no file, no batch is made."""
    job_id = gemini_job(engine, tmp_path, ["e1"], endpoint="/v1/responses")
    drive_until_done(engine, emu.url)
    assert states_reached(engine, job_id)[:2] == ["built", "failed"]
    assert "chat or embeddings requests only" in job_row(engine, job_id).last_error
    assert not emu.gemini_api.state.files and not emu.gemini_api.state.batches


def test_an_embeddings_shard_runs_as_an_embeddings_batch(
    engine: Engine, emu: Emulator, key: str, tmp_path: Path
) -> None:
    """/v1/embeddings lines go through batches.create_embeddings; each result is a vector of the
    asked dimensions, in input order; a list input gives a list of one vector."""
    single = gemini_job(
        engine, tmp_path, ["e1", "e2"], run="emb", endpoint="/v1/embeddings", body={"dimensions": 4}
    )
    listed = gemini_job(
        engine, tmp_path, ["l1"], run="lst", endpoint="/v1/embeddings", body={"input": ["one"]}
    )
    drive_until_done(engine, emu.url)
    results = [
        json.loads(line)
        for line in Path(job_row(engine, single).results_path).read_text().splitlines()
    ]
    assert [r["custom_id"] for r in results] == ["e1", "e2"]
    assert all(r["status"] == "succeeded" and len(r["embedding"]) == 4 for r in results)
    [as_list] = [json.loads(Path(job_row(engine, listed).results_path).read_text())]
    assert len(as_list["embedding"]) == 1 and len(as_list["embedding"][0]) == 8
    batches = list(emu.gemini_api.state.batches.values())
    assert all(b.embeddings for b in batches) and len(batches) == 2
    [first] = [b for b in batches if b.display_name.startswith(f"ledger-job{single}-")]
    assert first.requests[0]["request"] == {
        "content": {"parts": [{"text": "say e1"}]},
        "outputDimensionality": 4,
    }


def test_without_a_key_the_provider_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """No GEMINI_API_KEY nor GOOGLE_API_KEY: MissingAPIKey naming both; GOOGLE_API_KEY serves."""
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    with pytest.raises(MissingAPIKey, match=r"GEMINI_API_KEY.*GOOGLE_API_KEY"):
        get_provider("gemini")
    monkeypatch.setenv("GOOGLE_API_KEY", KEY)
    assert get_provider("gemini").name == "gemini"


def test_lost_replies_server_errors_and_cut_downloads_still_give_one_batch_each(
    engine: Engine, timed_emu: Emulator, key: str, tmp_path: Path
) -> None:
    """Dropped creates, 500s, 429s, late-visible batches and cut results: one batch per job."""
    timed_emu.configure(
        scenario="not_found_grace",
        faults=[
            {"kind": "drop_response", "route": "gemini_create_batch", "times": 2},
            {"kind": "truncate_download", "route": "gemini_download_file", "times": 2},
            {"kind": "http_500", "every": 5},
            {"kind": "http_429", "every": 7, "seconds": 0.01},
        ],
    )
    job_ids = [
        gemini_job(engine, tmp_path, [f"j{s}-{i}" for i in range(4)], shard_index=s)
        for s in range(1, 5)
    ]
    drive_until_done(engine, timed_emu.url, concurrency=4)
    stats = timed_emu.stats()
    assert stats["faults"]["drop_response"] == 2 and stats["faults"]["truncate_download"] == 2
    assert stats["faults"]["http_500"] > 0 and stats["faults"]["http_429"] > 0
    one_batch_per_job(timed_emu, 4)
    for job_id in job_ids:
        assert job_row(engine, job_id).state == "normalized"
        assert statuses(engine, job_id) == ["succeeded"] * 4


def test_the_key_is_never_in_the_database_logs_or_errors(
    engine: Engine, key: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Refused credentials, then a whole run: the key is nowhere in rows, events or logs."""
    caplog.set_level(logging.DEBUG)
    with Emulator(EmulatorConfig(polls_per_stage=1, api_key="AIza-another-key")).start() as emu:
        job_id = gemini_job(engine, tmp_path, ["a", "b"])
        reconciler = Reconciler(
            engine, ReconcileOptions(poll_min=0, poll_max=0.05, jitter=0, base_url=emu.url)
        )
        reconciler.run_pass()
        assert job_row(engine, job_id).last_error
        emu.configure(api_key=KEY)
        drive_until_done(engine, emu.url)
        assert job_row(engine, job_id).state == "normalized"
    with engine.connect() as connection:
        for table in ("jobs", "job_events", "requests", "runs"):
            dump = str(connection.execute(text(f"SELECT * FROM {table}")).all())
            assert KEY not in dump, table
    assert KEY not in caplog.text
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path
