"""Shards and results live in the artifact store: a reconciler that shares only the database
finishes the work, every read is verified against the recorded sha256, and a job whose artifact
cannot be had waits with the reason instead of failing or looping (issue 11)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from support.buildkit import prompts, query, write_jsonl
from support.drivers import LEDGER

from cli import cli
from ledger.artifacts import LocalFolderStore, resolve
from ledger.core.db import open_ledger
from ledger.core.store import release_held

FAST = ["--interval", "0.05", "--poll-min", "0.05", "--poll-max", "0.1"]


def ledger(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def run_ledger(db: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`ledger --db DB ARGS` as its own process working in `cwd`."""
    env = {**os.environ, "OPENAI_API_KEY": "sk-test-artifacts"}
    return subprocess.run(
        [LEDGER, "--db", db, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def submit_here(emulator: Any, monkeypatch: pytest.MonkeyPatch, count: int = 20) -> None:
    """Submit `count` prompts from the current folder as run `in`: two jobs, `built`, free for
    a reconciler to send (built as a dry run, then released without sending)."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-artifacts")
    write_jsonl("in.jsonl", prompts(count))
    args = ["submit", "in.jsonl", "--model", "gpt-4o-mini", "--max-requests", str(count // 2)]
    result = ledger(*args, "--base-url", emulator.base_url, "--dry-run")
    assert result.exit_code == 0, result.output
    engine = open_ledger("ledger.db")
    with engine.begin() as connection:
        assert release_held(connection, 1) == 2
    engine.dispose()


def stored_shard(job_id: int) -> tuple[LocalFolderStore, Path, bytes]:
    """The local store, the file holding job `job_id`'s shard in it, and the shard's bytes."""
    [row] = query(f"SELECT input_ref FROM jobs WHERE id = {job_id}")
    store, ref = resolve(row["input_ref"])
    assert isinstance(store, LocalFolderStore)
    path = store.path_of(ref.sha256)
    return store, path, path.read_bytes()


def results_of(output: str) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in output.splitlines()]


def test_a_reconciler_sharing_only_postgresql_takes_jobs_to_normalized(
    db_url: str, emulator: Any, tmp_path: Path
) -> None:
    """PostgreSQL with the default (database) store: the submit folder is gone, and a reconciler
    and `ledger results` working in another, empty folder finish the run and read every result."""
    if db_url.startswith("sqlite"):
        pytest.skip("the database artifact store is PostgreSQL's default; SQLite's is a folder")
    submitter, elsewhere = tmp_path / "submitter", tmp_path / "elsewhere"
    submitter.mkdir()
    elsewhere.mkdir()
    write_jsonl(submitter / "in.jsonl", prompts(20))
    built = run_ledger(
        db_url,
        submitter,
        "submit",
        "in.jsonl",
        "--model",
        "gpt-4o-mini",
        "--max-requests",
        "10",
        "--dry-run",
    )
    assert built.returncode == 0, built.stderr
    shutil.rmtree(submitter)  # the other machine never sees this folder
    engine = open_ledger(db_url)
    with engine.begin() as connection:  # released, not sent: every step happens elsewhere
        assert release_held(connection, 1) == 2
    done = run_ledger(
        db_url, elsewhere, "reconcile", "--until-done", "--base-url", emulator.base_url, *FAST
    )
    assert done.returncode == 0, done.stderr
    results = run_ledger(db_url, elsewhere, "results", "in")
    assert results.returncode == 0, results.stderr
    lines = results_of(results.stdout)
    assert [line["custom_id"] for line in lines] == [f"q{n}" for n in range(1, 21)]
    assert {line["status"] for line in lines} == {"succeeded"}
    with engine.connect() as connection:
        jobs = connection.exec_driver_sql(
            "SELECT state, input_ref, output_ref, results_ref, results_path FROM jobs"
        ).all()
    engine.dispose()
    assert [job[0] for job in jobs] == ["normalized", "normalized"]
    assert all(ref.startswith("db:sha256:") for job in jobs for ref in job[1:4])
    assert all(job[4] is None for job in jobs)  # no local copy where the run's folder is not
    assert list(elsewhere.iterdir()) == []
    assert emulator.stats()["batches"]["created"] == 2


def test_an_unreachable_shard_makes_the_job_wait_and_until_done_exit_1(
    emulator: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Stored shard, run folder copy and input all gone: nothing is sent, the job waits in
    `built` with the reason, `status` shows it, and `--until-done` ends with exit 1 naming it."""
    submit_here(emulator, monkeypatch)
    shutil.rmtree(tmp_path / "artifacts")
    shutil.rmtree(tmp_path / "runs" / "in" / "batch_inputs")
    (tmp_path / "in.jsonl").unlink()
    result = ledger("reconcile", "--until-done", "--base-url", emulator.base_url, *FAST)
    assert result.exit_code == 1
    error = result.output.strip().splitlines()[-1]
    assert error.startswith("error: 2 job(s) wait for an artifact: job 1: job 1's shard: ")
    assert "is missing" in error and "cannot be rebuilt" in error
    assert "Traceback" not in result.output
    assert [row["state"] for row in query("SELECT state FROM jobs")] == ["built", "built"]
    status = ledger("status", "in")
    assert "is missing" in status.output
    assert emulator.stats()["batches"]["created"] == 0


def test_a_shard_edited_before_sending_is_rebuilt_from_the_recorded_input(
    emulator: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A stored shard edited before it was sent is never sent: it is built again from the run's
    input, verified against the recorded sha256, and every request gets its own result."""
    submit_here(emulator, monkeypatch)
    _, path, original = stored_shard(1)
    path.write_bytes(original.replace(b"What is 1 + 1?", b"TAMPERED PROMPT"))
    result = ledger("reconcile", "--until-done", "--base-url", emulator.base_url, *FAST)
    assert result.exit_code == 0, result.output
    assert path.read_bytes() == original  # repaired by storing the rebuilt bytes again
    exported = results_of(ledger("results", "in").output)
    assert [line["custom_id"] for line in exported] == [f"q{n}" for n in range(1, 21)]
    assert {line["status"] for line in exported} == {"succeeded"}
    assert "TAMPERED" not in (tmp_path / "runs" / "in" / "results" / "shard-0001.jsonl").read_text()
    assert emulator.stats()["batches"]["created"] == 2


def test_a_shard_cut_after_sending_drops_no_request(
    emulator: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The stored shard cut after its batch was sent: the job waits `downloaded` with the reason
    (no request marked, none left silently pending); once the shard is stored again, all 20
    requests get their result."""
    submit_here(emulator, monkeypatch)
    assert ledger("reconcile", "--base-url", emulator.base_url, *FAST).exit_code == 0
    assert {row["state"] for row in query("SELECT state FROM jobs")} <= {"submitted", "in_progress"}
    store, path, original = stored_shard(1)
    path.write_bytes(original[: len(original) // 2])
    result = ledger("reconcile", "--until-done", "--base-url", emulator.base_url, *FAST)
    assert result.exit_code == 1
    assert "job 1: job 1's shard" not in result.output  # normalize names the artifact itself
    assert "is damaged" in result.output.splitlines()[-1]
    states = query("SELECT id, state, last_error FROM jobs ORDER BY id")
    assert [row["state"] for row in states] == ["downloaded", "normalized"]
    assert "is damaged" in states[0]["last_error"]
    pending = query("SELECT count(*) AS n FROM requests WHERE job_id = 1 AND status = 'pending'")
    assert pending == [{"n": 10}]
    store.put(tmp_path / "runs" / "in" / "batch_inputs" / "shard-0001.jsonl")
    result = ledger("reconcile", "--until-done", "--base-url", emulator.base_url, *FAST)
    assert result.exit_code == 0, result.output
    statuses = query("SELECT status, count(*) AS n FROM requests GROUP BY status")
    assert statuses == [{"status": "succeeded", "n": 20}]
