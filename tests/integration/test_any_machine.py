"""With PostgreSQL and the default (database) artifact store, work started on one machine is
finished from any other: an Anthropic job uploaded in one folder is created and normalized by a
reconciler in another, and `ledger retry` cuts its shards from the stored parents' shards
(issue 11). Each "machine" is its own process in its own folder; the submitting folder is
deleted before the other takes over, so nothing can be read from it."""

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
KILLED = 137
ANTHROPIC_MODEL = "anthropic:claude-haiku-4-5"


@pytest.fixture
def postgres_url(db_url: str) -> str:
    """An empty PostgreSQL ledger (the database store is PostgreSQL's default)."""
    if db_url.startswith("sqlite"):
        pytest.skip("many machines share a PostgreSQL ledger; a SQLite one lives on one machine")
    return db_url


def here(db: str, cwd: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> str:
    """`ledger --db DB ARGS` in this process, working in `cwd` (a step whose machine does not
    matter to the test); its output, once it succeeded."""
    monkeypatch.chdir(cwd)
    result = CliRunner().invoke(cli, ["--db", db, *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def run_ledger(
    db: str, cwd: Path, *args: str, crash_at: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`ledger --db DB ARGS` as its own process working in `cwd` (dying at `crash_at`)."""
    env = {
        **os.environ,
        "OPENAI_API_KEY": "sk-test-any-machine",
        "ANTHROPIC_API_KEY": "sk-ant-test-any-machine",
    }
    env.pop("LEDGER_CRASH_AT", None)
    if crash_at:
        env["LEDGER_CRASH_AT"] = crash_at
    return subprocess.run(
        [LEDGER, "--db", db, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def folders(tmp_path: Path) -> tuple[Path, Path]:
    """The submitting machine's folder, with 20 prompts in `in.jsonl`, and an empty one."""
    submitter, elsewhere = tmp_path / "submitter", tmp_path / "elsewhere"
    submitter.mkdir()
    elsewhere.mkdir()
    write_jsonl(submitter / "in.jsonl", prompts(20))
    return submitter, elsewhere


def jobs_of(db: str) -> list[Any]:
    engine = open_ledger(db)
    try:
        with engine.connect() as connection:
            return list(
                connection.exec_driver_sql(
                    "SELECT id, state, parent_job_id, input_file_id, input_ref, input_sha256, "
                    "request_count FROM jobs ORDER BY id"
                )
            )
    finally:
        engine.dispose()


def release(db: str) -> None:
    """Let reconcilers take run 1's held jobs (a dry run's), unsent."""
    engine = open_ledger(db)
    with engine.begin() as connection:
        assert release_held(connection, 1) >= 1
    engine.dispose()


def exported(db: str, cwd: Path, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """`ledger results in` read in `cwd`."""
    return [orjson.loads(line) for line in here(db, cwd, monkeypatch, "results", "in").splitlines()]


def test_an_anthropic_job_uploaded_on_one_machine_is_created_and_finished_on_another(
    postgres_url: str, emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Anthropic's upload keeps the request set as a file on the machine that made it. That
    machine dies right after the upload is recorded and its folder is gone: a reconciler in an
    empty folder makes the request set again from the job's stored shard (verified), creates
    exactly one batch, and takes the job to `normalized`, leaving its own folder empty."""
    submitter, elsewhere = folders(tmp_path)
    here(
        postgres_url,
        submitter,
        monkeypatch,
        "submit",
        "in.jsonl",
        "--model",
        ANTHROPIC_MODEL,
        "--dry-run",
    )
    release(postgres_url)
    uploaded = run_ledger(
        postgres_url,
        submitter,
        *("reconcile", "--base-url", emulator.url, *FAST),
        crash_at="after_upload_recorded",
    )
    assert uploaded.returncode == KILLED, uploaded.stderr
    [job] = jobs_of(postgres_url)
    assert job.state == "uploaded" and job.input_file_id.startswith("requests:")
    assert str(submitter) in job.input_file_id  # the request set was a file there
    shutil.rmtree(submitter)  # that machine is gone, and its files with it

    done = run_ledger(
        postgres_url,
        elsewhere,
        *("reconcile", "--until-done", "--base-url", emulator.url, *FAST),
    )
    assert done.returncode == 0, done.stderr
    [job] = jobs_of(postgres_url)
    assert job.state == "normalized"
    assert list(elsewhere.iterdir()) == []
    lines = exported(postgres_url, elsewhere, monkeypatch)
    assert [line["custom_id"] for line in lines] == [f"q{n}" for n in range(1, 21)]
    assert {line["status"] for line in lines} == {"succeeded"}
    assert emulator.stats()["message_batches"]["created"] == 1


def test_retry_runs_from_a_machine_without_the_run_folder(
    postgres_url: str, emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every request of a run failed; the submitting folder is gone. `ledger retry` in an empty
    folder cuts the retry's shard from the parent's stored shard (byte for byte: all 20 lines,
    so the same sha256), stores it, sends it, and a reconciler there takes it to `normalized`:
    every row then succeeds once, and the folder stays empty."""
    submitter, elsewhere = folders(tmp_path)
    emulator.configure(scenario="all_fail")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-any-machine")
    on_emulator = ("--base-url", emulator.base_url)
    here(
        postgres_url,
        submitter,
        monkeypatch,
        "submit",
        "in.jsonl",
        "--model",
        "gpt-4o-mini",
        *on_emulator,
    )
    here(postgres_url, submitter, monkeypatch, "reconcile", "--until-done", *on_emulator, *FAST)
    assert {line["status"] for line in exported(postgres_url, submitter, monkeypatch)} == {"failed"}
    shutil.rmtree(submitter)

    emulator.configure(scenario="normal")
    retried = run_ledger(
        postgres_url,
        elsewhere,
        *("retry", "in", "--base-url", emulator.base_url, "--poll-min", "0"),
    )
    assert retried.returncode == 0, retried.stderr
    assert "20 request(s)" in retried.stdout
    here(postgres_url, elsewhere, monkeypatch, "reconcile", "--until-done", *on_emulator, *FAST)
    parent, retry = jobs_of(postgres_url)
    assert retry.parent_job_id == parent.id and retry.request_count == 20
    assert retry.state == "normalized"
    assert retry.input_ref.startswith("db:sha256:")
    assert retry.input_sha256 == parent.input_sha256
    assert list(elsewhere.iterdir()) == []
    lines = exported(postgres_url, elsewhere, monkeypatch)
    assert [line["custom_id"] for line in lines] == [f"q{n}" for n in range(1, 21)]
    assert {line["status"] for line in lines} == {"succeeded"}
    assert emulator.stats()["batches"]["created"] == 2


def test_retry_refuses_a_damaged_stored_parent_shard_and_records_nothing(
    emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The retry reads the parent's shard from the store, verified: a stored copy cut short is
    never cut into a retry shard (even with the run folder's intact copy beside it). The retry
    ends with one line naming the damage, and no job or request moves."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-any-machine")
    write_jsonl("in.jsonl", prompts(6))
    emulator.configure(scenario="all_fail")
    on_emulator = ("--base-url", emulator.base_url)
    runner = CliRunner()
    for args in (
        ("submit", "in.jsonl", "--model", "gpt-4o-mini", *on_emulator),
        ("reconcile", "--until-done", *on_emulator, *FAST),
    ):
        assert runner.invoke(cli, list(args), catch_exceptions=False).exit_code == 0
    [parent] = jobs_of("sqlite:///ledger.db")
    store, ref = resolve(parent.input_ref)
    assert isinstance(store, LocalFolderStore)
    stored = store.path_of(ref.sha256)
    stored.chmod(0o600)
    stored.write_bytes(stored.read_bytes()[:-40])
    emulator.configure(scenario="normal")
    result = runner.invoke(cli, ["retry", "in", *on_emulator])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "is damaged" in result.output.strip().splitlines()[-1]
    assert len(jobs_of("sqlite:///ledger.db")) == 1
    statuses = {row["status"] for row in query("SELECT status FROM requests")}
    assert statuses == {"failed"}
    assert emulator.stats()["batches"]["created"] == 1
