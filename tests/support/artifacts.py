"""Helpers for the artifact-store tests: random files, damaging a stored copy behind the store's
back, measuring peak Python memory."""

from __future__ import annotations

import os
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select, update

from ledger.artifacts import ArtifactRef, ArtifactStore, DatabaseStore, FsspecStore
from ledger.artifacts.local import LocalFolderStore
from ledger.artifacts.tables import artifact_chunks

MIB = 1 << 20


def random_file(path: Path, size: int) -> Path:
    """A file of `size` random bytes, written a MiB at a time."""
    with path.open("wb") as out:
        left = size
        while left:
            block = os.urandom(min(left, MIB))
            out.write(block)
            left -= len(block)
    return path


def peak_python_memory(step: Callable[[], object]) -> int:
    """The peak of Python allocations while `step` runs, in bytes."""
    tracemalloc.start()
    try:
        step()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def read_all_blocks(store: ArtifactStore, ref: ArtifactRef) -> int:
    """Read an artifact to its end a MiB at a time, keeping nothing; the bytes read."""
    total = 0
    with store.open(ref) as stream:
        while block := stream.read(MIB):
            total += len(block)
    return total


def flip_a_byte(store: ArtifactStore, ref: ArtifactRef, offset: int) -> None:
    """Change the byte at `offset` of the stored copy, the way a bad disk or a hand edit would."""
    if isinstance(store, DatabaseStore):
        seq, at = divmod(offset, MIB)
        where = (artifact_chunks.c.sha256 == ref.sha256) & (artifact_chunks.c.seq == seq)
        with store.engine.begin() as connection:
            chunk = connection.execute(select(artifact_chunks.c.data).where(where)).scalar_one()
            data = bytearray(chunk)
            data[at] ^= 0xFF
            connection.execute(update(artifact_chunks).where(where).values(data=bytes(data)))
        return
    data = bytearray(_stored_bytes(store, ref))
    data[offset] ^= 0xFF
    _overwrite(store, ref, bytes(data))


def cut_short(store: ArtifactStore, ref: ArtifactRef) -> None:
    """Drop the end of the stored copy: the last chunk row, or the file's last byte."""
    if isinstance(store, DatabaseStore):
        last = (ref.size - 1) // MIB
        with store.engine.begin() as connection:
            connection.execute(
                artifact_chunks.delete().where(
                    (artifact_chunks.c.sha256 == ref.sha256) & (artifact_chunks.c.seq == last)
                )
            )
        return
    _overwrite(store, ref, _stored_bytes(store, ref)[:-1])


def _stored_bytes(store: ArtifactStore, ref: ArtifactRef) -> bytes:
    if isinstance(store, LocalFolderStore):
        return store.path_of(ref.sha256).read_bytes()
    assert isinstance(store, FsspecStore)
    return store.fs.cat_file(store.path_of(ref.sha256))


def _overwrite(store: ArtifactStore, ref: ArtifactRef, data: bytes) -> None:
    if isinstance(store, LocalFolderStore):
        store.path_of(ref.sha256).write_bytes(data)
        return
    assert isinstance(store, FsspecStore)
    store.fs.pipe_file(store.path_of(ref.sha256), data)
