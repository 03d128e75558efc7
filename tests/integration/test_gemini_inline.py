"""Gemini Batch Mode with inlined requests, through the reconciler with the real `google-genai`
SDK over HTTP against the emulator: a small chat job travels inside the create call (nothing
uploaded), its answers come back inside the batch and are normalized exactly as a result file's
are; a job over the threshold goes through the Files API; `kill -9` leaves one batch per job,
and a job whose shard is gone from this machine is created from the artifact store."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from support.crash_chain import crash_chain
from support.drivers import reconcile_until_done as drive_until_done
from support.factories import add_built_job
from support.ledger_reads import job_row, statuses

from adapters.gemini.inline import INLINE_MAX_BYTES
from ledger.core.db import open_ledger
from ledger.core.models import Job, JobEvent, Request
from ledger.emulator import Emulator, EmulatorConfig

MODEL = "gemini-2.5-flash"
KEY = "AIzaSy-LEAKCANARY-gemini-inline-0123456789"


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    monkeypatch.delenv("LEDGER_GEMINI_INLINE_MAX_BYTES", raising=False)
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    return KEY


def test_a_small_job_goes_inline_and_ends_normalized_in_input_order(
    engine: Engine, emu: Emulator, key: str, tmp_path: Path
) -> None:
    """Under Google's 20 MB nothing is uploaded: the requests (system text and generation
    settings too) travel in the create, tagged with the key in each request's metadata; the
    answers are read from the batch and normalized in input order."""
    assert INLINE_MAX_BYTES == 20_000_000
    ids = ["a", "b.2", "c:3"]
    body = {"max_tokens": 50, "temperature": 0.5}
    job_id = add_built_job(engine, tmp_path, "r", ids, provider="gemini", model=MODEL, body=body)
    drive_until_done(engine, emu.url)
    job = job_row(engine, job_id)
    assert job.state == "normalized" and job.provider_status == "JOB_STATE_SUCCEEDED"
    assert job.input_file_id.startswith("inline:ledger-job") and job.input_file_id.endswith(MODEL)
    assert job.output_file_id == f"inline:{job.batch_id}"
    state = emu.gemini_api.state
    assert not [f for f in state.files.values() if not f.generated], "something was uploaded"
    (batch,) = state.batches.values()
    assert batch.inline and batch.output_file is None
    assert batch.requests[0] == {
        "key": "a",
        "request": {
            "contents": [{"role": "user", "parts": [{"text": "say a"}]}],
            "generationConfig": {"maxOutputTokens": 50, "temperature": 0.5},
        },
    }
    assert statuses(engine, job_id) == ["succeeded"] * 3
    results = [json.loads(line) for line in Path(job.results_path).read_text().splitlines()]
    assert [r["custom_id"] for r in results] == ids
    assert results[1]["text"] == "Echo: say b.2" and results[1]["finish_reason"] == "stop"
    assert results[0]["usage"]["input_tokens"] == 2


@pytest.mark.parametrize(
    ("scenario", "expected"),
    [
        ("duplicate_key", {"succeeded": 4, "failed": 1, "missing": 1}),
        ("unknown_key", {"succeeded": 5, "missing": 1}),
        ("all_fail", {"failed": 6}),
    ],
)
def test_inline_answers_are_checked_like_a_result_file(
    engine: Engine,
    emu: Emulator,
    key: str,
    tmp_path: Path,
    scenario: str,
    expected: dict[str, int],
) -> None:
    """Every key exactly once: a key answered twice fails that request (duplicate_key) and
    leaves the one whose answer it took missing; an unknown key is quarantined; per-request
    errors are failed rows."""
    emu.configure(scenario=scenario)
    job_id = add_built_job(
        engine, tmp_path, "r", [f"q{i}" for i in range(6)], provider="gemini", model=MODEL
    )
    drive_until_done(engine, emu.url)
    job = job_row(engine, job_id)
    assert job.state == "normalized" and job.input_file_id.startswith("inline:")
    found = statuses(engine, job_id)
    assert {s: found.count(s) for s in set(found)} == expected
    with engine.connect() as connection:
        codes = set(
            connection.execute(
                select(Request.error_code).where(Request.status == "failed")
            ).scalars()
        )
    if scenario == "duplicate_key":
        assert codes == {"duplicate_key"}
    if scenario == "unknown_key":
        quarantine = Path(job.results_path).with_suffix(".quarantine.jsonl")
        assert "q5-not-sent" in quarantine.read_text()


def test_the_threshold_chooses_inline_or_the_files_api(
    engine: Engine, emu: Emulator, key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job whose translated requests weigh less than the threshold goes inline; one that
    weighs more is uploaded through the Files API ($LEDGER_GEMINI_INLINE_MAX_BYTES here)."""
    monkeypatch.setenv("LEDGER_GEMINI_INLINE_MAX_BYTES", "1000")
    small = add_built_job(
        engine, tmp_path, "r", ["s1", "s2"], provider="gemini", model=MODEL, shard_index=1
    )
    large = add_built_job(
        engine,
        tmp_path,
        "r",
        [f"l{i}" for i in range(30)],
        provider="gemini",
        model=MODEL,
        shard_index=2,
    )
    drive_until_done(engine, emu.url)
    assert job_row(engine, small).input_file_id.startswith("inline:")
    assert job_row(engine, large).input_file_id.startswith("files/")
    state = emu.gemini_api.state
    assert sorted(b.inline for b in state.batches.values()) == [False, True]
    assert len([f for f in state.files.values() if not f.generated]) == 1
    assert set(statuses(engine, small) + statuses(engine, large)) == {"succeeded"}


def test_killed_then_restarted_leaves_one_inline_batch_per_job(tmp_path: Path) -> None:
    """kill -9 after the (local) upload is recorded, the shard then gone from this machine:
    the create reads the stored copy. kill -9 after the create: the batch is found by its
    display name and adopted, never made twice. Nothing is uploaded either way."""
    db = tmp_path / "ledger.db"
    engine = open_ledger(db)
    shards = {s: [f"s{s}-{i}" for i in range(3)] for s in (1, 2)}
    job_ids = [
        add_built_job(engine, tmp_path, "crash", ids, shard_index=s, provider="gemini", model=MODEL)
        for s, ids in shards.items()
    ]
    gone: list[Path] = []

    def remove_uploaded_shards(point: str) -> None:
        if point != "after_upload_recorded":
            return
        with engine.connect() as connection:
            uploaded = connection.execute(select(Job.input_path).where(Job.state == "uploaded"))
            gone.extend(Path(path) for path in uploaded.scalars())
        for shard in gone:
            shard.unlink()  # as on another machine: only the artifact store has it

    env = {"GEMINI_API_KEY": KEY, "LEDGER_GEMINI_INLINE_MAX_BYTES": ""}
    with Emulator(EmulatorConfig(stage_seconds=0.05)).start() as emu:
        state = emu.gemini_api.state

        def never_twice() -> None:
            per_job = Counter(b.display_name.rsplit("-", 1)[0] for b in state.batches.values())
            assert set(per_job.values()) <= {1} and not state.files

        runs = crash_chain(
            db,
            emu.url,
            env,
            points=["after_upload_recorded", "after_create"],
            check=never_twice,
            between=remove_uploaded_shards,
        )
        per_job = Counter(b.display_name.rsplit("-", 1)[0] for b in state.batches.values())
        assert sorted(per_job) == [f"ledger-job{i}" for i in job_ids]
        assert all(b.inline for b in state.batches.values())
    assert gone, "no shard was removed before the create"
    with engine.connect() as connection:
        states = set(connection.execute(select(Job.state)).scalars())
        results = set(connection.execute(select(Request.status)).scalars())
        events = connection.execute(select(JobEvent.to_state, JobEvent.detail)).all()
    assert states == {"normalized"} and results == {"succeeded"}
    adopted = [(to, (detail or {}).get("adopted")) for to, detail in events]
    assert ("submitted", True) in adopted, "the orphaned batch was not adopted"
    assert all(KEY not in run.stdout + run.stderr for run in runs)
