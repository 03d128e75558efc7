"""With a state directory, the emulator restarts and keeps its files and batches."""

from __future__ import annotations

import json
import time
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


def test_state_is_written_atomically(tmp_path: Path) -> None:
    """state.json is whole JSON after every change, with no temporary files left beside it."""
    with running(state_dir=tmp_path) as emu:
        client = sdk(emu)
        finish(client, submit(client, LINES).id)
        state = json.loads((tmp_path / "state.json").read_text())
        assert len(state["batches"]) == 1 and len(state["files"]) == 2
        leftovers = [p.name for p in tmp_path.rglob(".*")]
        assert leftovers == []
        assert sorted(p.name for p in (tmp_path / "blobs").iterdir()) == sorted(
            f["id"] for f in state["files"]
        )


def test_a_state_directory_of_another_version_is_refused(tmp_path: Path) -> None:
    """An unknown state version stops the emulator from starting rather than misreading it."""
    (tmp_path / "state.json").write_text(json.dumps({"version": 99}))
    with (
        pytest.raises(ValueError, match="unsupported emulator state version"),
        running(state_dir=tmp_path),
    ):
        pass
