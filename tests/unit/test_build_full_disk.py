"""A full disk during a build: one line naming it, exit 1, and no partial file left behind."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from support.buildkit import prompts, submit, write_jsonl

from ledger.build import shards


def test_a_full_disk_during_the_build_is_one_line_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shard write failing with ENOSPC: exit 1, one line, no staging or run directory."""

    def no_space(_self: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shards._OpenShard, "flush", no_space)
    source = write_jsonl(tmp_path / "in.jsonl", prompts(5))
    result = submit(str(source), "--model", "gpt-4o-mini")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"error: {tmp_path}: no space left on the device while building run 'in' "
        "(its partial files are removed; free some space and submit again)"
    ]
    assert list(tmp_path.glob(".ledger-build-*")) == []
    assert not (tmp_path / "runs").exists()
