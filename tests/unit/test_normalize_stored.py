"""Normalizing reads a job's shard and result files from the artifact store, verified: the local
copies are not needed, and a damaged stored shard is refused as damaged, never used."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from support.artifacts import flip_a_byte
from support.batchfiles import downloaded_job, input_line, ok_line, response_body

from ledger.artifacts import ArtifactCorrupt, LocalFolderStore, choose_store, resolve, store_for
from ledger.core.models import Job, Request
from ledger.results.normalize import normalize_job


def store_shard(engine: Engine, job_id: int) -> Path:
    """Put the job's shard into the ledger's store, record its ref; the local shard's path."""
    with engine.connect() as connection:
        path = Path(connection.execute(select(Job.input_path).where(Job.id == job_id)).scalar_one())
    ref = store_for(engine).put(path)
    with engine.begin() as connection:
        connection.execute(update(Job).where(Job.id == job_id).values(input_ref=str(ref)))
    return path


def test_normalizing_reads_the_stored_shard_not_the_local_copy(
    engine: Engine, tmp_path: Path
) -> None:
    """The local shard deleted: the job normalizes from the stored one, every request answered."""
    ids = [f"r{n}" for n in range(5)]
    job = downloaded_job(
        engine,
        tmp_path,
        [input_line(i) for i in ids],
        output=[ok_line(i, response_body()) for i in ids],
    )
    store_shard(engine, job.job_id).unlink()
    summary = normalize_job(engine, job.lease, job.job_id)
    assert summary.counts["succeeded"] == 5
    with engine.connect() as connection:
        assert set(connection.execute(select(Request.status)).scalars()) == {"succeeded"}


def test_a_damaged_stored_shard_over_a_mib_is_refused_as_damaged(
    engine: Engine, tmp_path: Path
) -> None:
    """Its first line made unreadable (size unchanged) in a shard of several blocks: normalizing
    stops with ArtifactCorrupt, not with that line's parse error, and records nothing."""
    padding = "x" * 500
    inputs = [input_line(f"r{n}", input=padding, model="gpt-4o-mini") for n in range(3000)]
    job = downloaded_job(engine, tmp_path, inputs, output=[])
    store_shard(engine, job.job_id)
    with engine.connect() as connection:
        text = connection.execute(select(Job.input_ref).where(Job.id == job.job_id)).scalar_one()
    store, ref = resolve(str(text), engine=engine)
    assert ref.size > 1 << 20
    flip_a_byte(store, ref, 0)
    with pytest.raises(ArtifactCorrupt, match="is damaged"):
        normalize_job(engine, job.lease, job.job_id)
    with engine.connect() as connection:
        state = connection.execute(select(Job.state).where(Job.id == job.job_id)).scalar_one()
        assert state == "downloaded"
        assert set(connection.execute(select(Request.status)).scalars()) == {"pending"}


@pytest.mark.parametrize("store_kind", ["local", "database"])
def test_the_results_are_stored_and_kept_locally_with_the_same_bytes(
    engine: Engine, tmp_path: Path, store_kind: str
) -> None:
    """Whatever the store, the local copy holds the stored bytes; a folder store on the same
    filesystem writes them once: the local copy is the stored file under a second name."""
    setting = (tmp_path / "artifacts").as_uri() if store_kind == "local" else "database"
    choose_store(engine, setting)
    try:
        ids = [f"r{n}" for n in range(5)]
        job = downloaded_job(
            engine,
            tmp_path,
            [input_line(i) for i in ids],
            output=[ok_line(i, response_body()) for i in ids],
        )
        summary = normalize_job(engine, job.lease, job.job_id)
    finally:
        choose_store(engine, None)
    store, ref = resolve(summary.results_ref, engine=engine)
    with store.open(ref) as stored:
        assert summary.results_path.read_bytes() == stored.read()
    linked = isinstance(store, LocalFolderStore) and store.path_of(ref.sha256).samefile(
        summary.results_path
    )
    assert linked is (store_kind == "local")
    if linked:  # read-only, so a write in place into one name cannot damage the other
        assert summary.results_path.stat().st_mode & 0o777 == 0o400
    assert [p.name for p in summary.results_path.parent.iterdir()] == ["shard-0001.jsonl"]
