"""`ledger gc` lists and removes the artifacts no job references, once they are a day old, and
never one a job references (each configured database, with its default store)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import update
from sqlalchemy.engine import Engine
from support.buildkit import prompts, write_jsonl

from cli import cli
from ledger.artifacts import ArtifactRef, ArtifactStore, LocalFolderStore, store_for
from ledger.artifacts.tables import artifacts

DAY = 24 * 3600.0


def invoke(db_url: str, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--db", db_url, *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def age_everything(engine: Engine, store: ArtifactStore, seconds: float) -> None:
    """Make every artifact in `store` look stored `seconds` ago."""
    if isinstance(store, LocalFolderStore):
        for ref in store.list():
            then = time.time() - seconds
            os.utime(store.path_of(ref.sha256), (then, then))
        return
    with engine.begin() as connection:
        connection.execute(update(artifacts).values(created_at=artifacts.c.created_at - seconds))


def test_gc_removes_old_unreferenced_artifacts_only(
    engine: Engine, db_url: str, tmp_path: Path
) -> None:
    """An old artifact no job references is listed by --dry-run, then removed; the run's shards
    (referenced) and a fresh orphan (maybe about to be referenced) stay."""
    write_jsonl(tmp_path / "in.jsonl", prompts(4))
    source = str(tmp_path / "in.jsonl")
    invoke(db_url, "submit", source, "--model", "gpt-4o-mini", "--max-requests", "2", "--dry-run")
    store = store_for(engine)
    (tmp_path / "orphan.bin").write_bytes(b"nobody needs me\n")
    orphan = store.put(tmp_path / "orphan.bin")
    age_everything(engine, store, 2 * DAY)
    (tmp_path / "fresh.bin").write_bytes(b"about to be recorded\n")
    fresh = store.put(tmp_path / "fresh.bin")
    shards = {ref.sha256 for ref in store.list()} - {orphan.sha256, fresh.sha256}
    assert len(shards) == 2

    listed = invoke(db_url, "gc", "--dry-run").splitlines()
    assert f"would remove {orphan} (no job references it; stored 48 h ago)" in listed
    assert not any(fresh.sha256 in line or "shard" in line for line in listed)
    assert store.exists(orphan)

    removed = invoke(db_url, "gc").splitlines()
    assert f"removed {orphan} (no job references it; stored 48 h ago)" in removed
    assert {ref.sha256 for ref in store.list()} == shards | {fresh.sha256}
    assert not store.exists(ArtifactRef.parse(str(orphan)))
    assert f"no unreferenced artifacts in {store.url}" in invoke(db_url, "gc")
