"""Artifacts in the ledger database itself: the default for a PostgreSQL ledger, so every machine
that reaches the database reaches every artifact, and needs nothing else.

The bytes are rows of 1 MiB (`artifact_chunks`) under one row per artifact (`artifacts`). A put
hashes its source first (a stream is spooled to a local temporary file for that), then writes the
artifact row and all its chunks in one transaction, one chunk per statement: a crash leaves the
whole artifact or nothing. The artifact row is a guarded insert (ON CONFLICT DO NOTHING), so two
machines putting the same bytes at once store them once: the second waits on the first's key
and then writes nothing. A read fetches one chunk per short statement, so no transaction stays
open while the reader is slow (uploading the shard to a provider, say).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, BinaryIO

from sqlalchemy import delete, func, select
from sqlalchemy.engine import Connection, Engine

from ledger.artifacts.base import (
    ArtifactRef,
    Source,
    copy_hashing,
    copy_verified,
    reading,
    verified_stream,
)
from ledger.artifacts.errors import ArtifactCorrupt, ArtifactUnreachable
from ledger.artifacts.tables import artifact_chunks, artifacts
from ledger.core.db import db_now


class DatabaseStore:
    """Artifacts as chunked rows in the ledger database."""

    kind = "database"
    url = "database"

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def put(self, source: Source) -> ArtifactRef:
        with _hashed(source) as (staged, sha256, size), self.engine.begin() as connection:
            if _insert_artifact_row(connection, sha256, size):
                _insert_chunks(connection, staged, sha256, size)
        return ArtifactRef.in_database(sha256, size)

    def open(self, ref: ArtifactRef) -> BinaryIO:
        recorded = self._recorded_size(ref.sha256)
        if recorded is None:
            raise ArtifactUnreachable(f"{ref.label} is not in the database")
        if recorded != ref.size:
            raise ArtifactCorrupt(
                f"{ref.label} is damaged: the database records {recorded} bytes, not {ref.size}"
            )
        return verified_stream(ref, self._chunks(ref))

    def copy_to(self, ref: ArtifactRef, path: str | os.PathLike[str]) -> None:
        copy_verified(self.open(ref), path)

    def exists(self, ref: ArtifactRef) -> bool:
        return self._recorded_size(ref.sha256) is not None

    def delete(self, ref: ArtifactRef) -> None:
        with self.engine.begin() as connection:
            for table in (artifact_chunks, artifacts):  # the chunks first: they refer to the row
                connection.execute(delete(table).where(table.c.sha256 == ref.sha256))

    def list(self) -> Iterator[ArtifactRef]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(artifacts.c.sha256, artifacts.c.size).order_by(artifacts.c.sha256)
            ).all()
        for sha256, size in rows:
            yield ArtifactRef.in_database(sha256, size)

    def chunk_count(self, ref: ArtifactRef) -> int:
        """How many chunk rows hold the artifact."""
        with self.engine.connect() as connection:
            return connection.execute(
                select(func.count())
                .select_from(artifact_chunks)
                .where(artifact_chunks.c.sha256 == ref.sha256)
            ).scalar_one()

    def _recorded_size(self, sha256: str) -> int | None:
        with self.engine.connect() as connection:
            return connection.execute(
                select(artifacts.c.size).where(artifacts.c.sha256 == sha256)
            ).scalar_one_or_none()

    def _chunks(self, ref: ArtifactRef) -> Generator[bytes, None, None]:
        """The chunks in order, each fetched in a statement of its own; stops at the first
        missing one (the reader then reports the artifact short, or gone if it was deleted)."""
        read = 0
        seq = 0
        while True:
            with self.engine.connect() as connection:
                data = connection.execute(
                    select(artifact_chunks.c.data).where(
                        artifact_chunks.c.sha256 == ref.sha256, artifact_chunks.c.seq == seq
                    )
                ).scalar_one_or_none()
            if data is None:
                if read < ref.size and self._recorded_size(ref.sha256) is None:
                    raise ArtifactUnreachable(f"{ref.label} was deleted while it was read")
                return
            read += len(data)
            seq += 1
            yield bytes(data)
            del data  # not kept alive (a MiB) while the next chunk is fetched


@contextmanager
def _hashed(source: Source) -> Iterator[tuple[IO[bytes], str, int]]:
    """`source` as a rewound file we may read again, with its sha256 and size. A path is read
    twice (hashed, then stored); a stream is first spooled to a local temporary file."""
    if isinstance(source, str | os.PathLike):
        with open(Path(source), "rb") as handle:
            sha256, size = copy_hashing(handle, lambda _block: None)
            handle.seek(0)
            yield handle, sha256, size
        return
    with tempfile.TemporaryFile() as spool:
        with reading(source) as stream:
            sha256, size = copy_hashing(stream, spool.write)
        spool.seek(0)
        yield spool, sha256, size


def _insert_artifact_row(connection: Connection, sha256: str, size: int) -> bool:
    """Insert the artifact's row unless another put already did; True when this one did."""
    dialect = connection.dialect.name
    # Each dialect's insert is imported here, where its connection has loaded it already:
    # importing SQLAlchemy's PostgreSQL dialect at the top cost every command ~20 ms.
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        statement = postgresql_insert(artifacts).on_conflict_do_nothing(index_elements=["sha256"])
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        statement = sqlite_insert(artifacts).on_conflict_do_nothing(index_elements=["sha256"])
    else:
        raise NotImplementedError(f"the database artifact store does not support {dialect}")
    # RETURNING says whether this statement inserted the row; rowcount does not on every driver
    # (psycopg reports -1 for this statement).
    values = statement.values(sha256=sha256, size=size, created_at=db_now())
    return connection.execute(values.returning(artifacts.c.sha256)).first() is not None


def _insert_chunks(connection: Connection, staged: IO[bytes], sha256: str, size: int) -> None:
    """Write the chunks one statement each, checking the bytes are still those hashed (a path
    edited in between would otherwise be stored under a sha256 it does not have)."""
    seq = 0

    def insert(block: bytes) -> None:
        nonlocal seq
        connection.execute(artifact_chunks.insert(), {"sha256": sha256, "seq": seq, "data": block})
        seq += 1

    stored_sha256, stored_size = copy_hashing(staged, insert)
    if (stored_sha256, stored_size) != (sha256, size):
        # Raising here rolls the whole transaction back: no artifact row, no chunk.
        raise ArtifactCorrupt(f"the source changed while it was stored as artifact {sha256}")
