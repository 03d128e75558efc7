"""With a state directory, the emulator restarts and keeps its files and batches."""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import closing
from pathlib import Path

import openai
import pytest
from support.emulator_support import chat_line, finish, running, sdk, submit, upload

LINES = [chat_line(f"r{i}", f"q{i}") for i in range(6)]


def test_files_and_batches_survive_a_restart(tmp_path: Path) -> None:
    """Stop mid-batch, start a new emulator on the same directory: everything is there."""
    state = tmp_path / "state"
    with running(state_dir=state) as first:
        client = sdk(first)
        batch = submit(client, LINES, metadata={"ledger_job": "3"})
        assert client.batches.retrieve(batch.id).status == "in_progress"
        doomed = upload(client, LINES, "doomed.jsonl")
        client.files.delete(doomed.id)
    with running(state_dir=state) as second:
        client = sdk(second)
        again = client.batches.retrieve(batch.id)
        assert (again.status, again.metadata) == ("finalizing", {"ledger_job": "3"})
        done = finish(client, batch.id)
        output = client.files.content(done.output_file_id or "").content
        assert [f.filename for f in client.files.list()] == [
            f"{done.id}_output.jsonl",
            "input.jsonl",
        ]
        with pytest.raises(openai.NotFoundError):
            client.files.retrieve(doomed.id)
        assert second.stats()["batches"]["by_metadata"] == {"ledger_job": {"3": 1}}
    with running(state_dir=state) as third:
        client = sdk(third)
        assert client.files.content(done.output_file_id or "").content == output
        assert client.batches.retrieve(batch.id).status == "completed"
        assert client.files.content(batch.input_file_id).text.splitlines() == LINES
        assert third.stats()["files"]["created"] == 2


def test_the_clock_runs_on_while_the_emulator_is_down(tmp_path: Path) -> None:
    """On the time clock, a batch read after a restart has caught up on the stages it missed."""
    with running(state_dir=tmp_path, polls_per_stage=None, stage_seconds=0.05) as first:
        batch = submit(sdk(first), LINES)
    time.sleep(0.2)
    with running(state_dir=tmp_path, polls_per_stage=None, stage_seconds=0.05) as second:
        done = sdk(second).batches.retrieve(batch.id)
        assert done.status == "completed" and done.output_file_id is not None


def test_state_is_kept_in_sqlite_and_committed_at_every_change(tmp_path: Path) -> None:
    """Each change is committed to state.sqlite3 as it happens: another connection reads every
    file and batch while the emulator runs, and each file's content is its blob."""
    with running(state_dir=tmp_path) as emu:
        client = sdk(emu)
        finish(client, submit(client, LINES).id)
        with closing(sqlite3.connect(tmp_path / "state.sqlite3")) as db:
            files = [json.loads(row[0]) for row in db.execute("SELECT data FROM files")]
            batches = [json.loads(row[0]) for row in db.execute("SELECT data FROM batches")]
        assert [b["status"] for b in batches] == ["completed"]
        assert sorted(p.name for p in (tmp_path / "blobs").iterdir()) == sorted(
            f["id"] for f in files
        )
        assert len(files) == 2
        assert not (tmp_path / "state.json").exists()


def test_a_json_state_directory_is_imported_once(tmp_path: Path) -> None:
    """A state directory of the first format (one state.json) is read into SQLite on first
    open and the JSON file set aside; its files and batches are all there."""
    with running(state_dir=tmp_path) as first:
        client = sdk(first)
        done = finish(client, submit(client, LINES).id)
    with closing(sqlite3.connect(tmp_path / "state.sqlite3")) as db:
        seq = int(db.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()[0])
        files = [json.loads(row[0]) for row in db.execute("SELECT data FROM files")]
        batches = [json.loads(row[0]) for row in db.execute("SELECT data FROM batches")]
    for name in ("state.sqlite3", "state.sqlite3-wal", "state.sqlite3-shm"):
        (tmp_path / name).unlink(missing_ok=True)
    old = {"version": 1, "seq": seq, "files": files, "batches": batches}
    (tmp_path / "state.json").write_text(json.dumps(old))
    with running(state_dir=tmp_path) as second:
        client = sdk(second)
        assert client.batches.retrieve(done.id).status == "completed"
        assert client.files.content(done.output_file_id or "").text.count("\n") == len(LINES)
    assert (tmp_path / "state.json.imported").exists()
    assert not (tmp_path / "state.json").exists()


def test_a_state_directory_of_another_version_is_refused(tmp_path: Path) -> None:
    """An unknown state version stops the emulator from starting rather than misreading it."""
    (tmp_path / "state.json").write_text(json.dumps({"version": 99}))
    with (
        pytest.raises(ValueError, match="unsupported emulator state version"),
        running(state_dir=tmp_path),
    ):
        pass
