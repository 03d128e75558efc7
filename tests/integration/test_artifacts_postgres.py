"""The database artifact store on each configured database (SQLite always, PostgreSQL when
LEDGER_TEST_POSTGRES_URL is set): chunked rows streamed in and out, verified, and shared by
every process and machine that reaches the database."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from support.artifacts import (
    MIB,
    cut_short,
    flip_a_byte,
    peak_python_memory,
    random_file,
    read_all_blocks,
)

from ledger.artifacts import (
    ArtifactCorrupt,
    ArtifactUnreachable,
    DatabaseStore,
    default_store_setting,
    open_store,
    resolve,
)
from ledger.artifacts.tables import artifact_chunks, artifacts
from ledger.core.db import open_ledger

PUTTER = textwrap.dedent(
    """
    import sys, time
    from ledger.artifacts import DatabaseStore
    from ledger.core.db import open_ledger
    url, path, start_at = sys.argv[1], sys.argv[2], float(sys.argv[3])
    store = DatabaseStore(open_ledger(url))
    while time.time() < start_at:  # line the processes up so their puts overlap
        time.sleep(0.001)
    print(store.put(path))
    """
)


def rows(engine: Engine) -> tuple[int, int]:
    """How many artifact rows and chunk rows the database holds."""
    with engine.connect() as connection:
        return (
            connection.execute(select(func.count()).select_from(artifacts)).scalar_one(),
            connection.execute(select(func.count()).select_from(artifact_chunks)).scalar_one(),
        )


def test_20_mb_round_trip_in_chunks_and_bounded_memory(engine: Engine, tmp_path: Path) -> None:
    """20 MB go in as 20 rows of 1 MiB and come back verified, with a Python peak under 5 MB for
    the put, a full read and copy_to."""
    store = DatabaseStore(engine)
    source = random_file(tmp_path / "shard-0001.jsonl", 20 * MIB)
    with source.open("rb") as stream:
        peak_put = peak_python_memory(lambda: store.put(stream))
    ref = store.put(source)
    assert rows(engine) == (1, 20)
    peak_read = peak_python_memory(lambda: read_all_blocks(store, ref))
    peak_copy = peak_python_memory(lambda: store.copy_to(ref, tmp_path / "copy.jsonl"))
    assert (tmp_path / "copy.jsonl").read_bytes() == source.read_bytes()
    assert max(peak_put, peak_read, peak_copy) < 5 * MIB, (peak_put, peak_read, peak_copy)


def test_a_damaged_chunk_is_corrupt(engine: Engine, tmp_path: Path) -> None:
    """A byte changed in one chunk row raises ArtifactCorrupt; copy_to writes no file."""
    store = DatabaseStore(engine)
    ref = store.put(random_file(tmp_path / "source", 3 * MIB + 5))
    flip_a_byte(store, ref, 2 * MIB + 1)
    with pytest.raises(ArtifactCorrupt, match="sha256 differs"):
        store.copy_to(ref, tmp_path / "copy")
    assert list(tmp_path.glob("*copy*")) == []


def test_a_missing_chunk_is_corrupt(engine: Engine, tmp_path: Path) -> None:
    """A chunk row gone while the artifact row remains: the artifact ends short."""
    store = DatabaseStore(engine)
    ref = store.put(random_file(tmp_path / "source", 3 * MIB + 5))
    cut_short(store, ref)
    with pytest.raises(ArtifactCorrupt, match="ends after"):
        read_all_blocks(store, ref)


def test_an_artifact_deleted_while_read_is_unreachable(engine: Engine, tmp_path: Path) -> None:
    """Deleted between two chunks (by `ledger gc` on another machine, say): the reader is told
    it is gone, not handed a short file."""
    store = DatabaseStore(engine)
    ref = store.put(random_file(tmp_path / "source", 3 * MIB))
    with store.open(ref) as stream:
        assert len(stream.read(MIB)) == MIB
        store.delete(ref)
        with pytest.raises(ArtifactUnreachable, match="deleted while it was read"):
            stream.read()
    assert rows(engine) == (0, 0)


def test_two_processes_putting_the_same_bytes_store_them_once(
    engine: Engine, db_url: str, tmp_path: Path
) -> None:
    """Two processes put the same 20 MB at the same instant: both get the same ref, the
    database holds one artifact row and one set of chunks (the second put waits on the first's
    key and writes nothing), and the bytes read back whole."""
    source = random_file(tmp_path / "shard.jsonl", 20 * MIB)
    start_at = time.time() + 1.5
    putters = [
        subprocess.Popen(
            [sys.executable, "-c", PUTTER, db_url, str(source), str(start_at)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    refs = []
    for putter in putters:
        out, err = putter.communicate(timeout=120)
        assert putter.returncode == 0, err
        refs.append(out.strip())
    assert refs[0] == refs[1]
    assert rows(engine) == (1, 20)
    store, ref = resolve(refs[0], engine=engine)
    store.copy_to(ref, tmp_path / "copy.jsonl")
    assert (tmp_path / "copy.jsonl").read_bytes() == source.read_bytes()


def test_another_connection_reads_what_one_put(db_url: str, tmp_path: Path) -> None:
    """A ref recorded through one engine is listed and read through another: what a reconciler
    on a second machine sees with the same database URL."""
    first = open_ledger(db_url)
    ref = DatabaseStore(first).put(random_file(tmp_path / "source", MIB + 1))
    first.dispose()
    second = open_ledger(db_url)
    store, parsed = resolve(str(ref), engine=second)
    assert list(store.list()) == [parsed]
    assert read_all_blocks(store, parsed) == MIB + 1
    second.dispose()


def test_the_default_store_follows_the_database(engine: Engine) -> None:
    """No setting: a folder beside a SQLite ledger, the database itself for PostgreSQL."""
    expected = {"sqlite": "local", "postgresql": "database"}[engine.dialect.name]
    assert default_store_setting(engine) == expected
    assert open_store(None, engine=engine).url == (
        "database" if expected == "database" else open_store("local", engine=engine).url
    )
