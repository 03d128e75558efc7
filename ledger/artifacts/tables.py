"""The tables of the database artifact store (created by migration 0002_artifacts).

They sit in a MetaData of their own, so `ledger.core.models.Base` stays the ledger's job tables;
the migration test compares the migrated database with both.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Double,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
)

metadata = MetaData()

#: One row per artifact, written in the same transaction as all its chunks, so a reader that
#: finds the row finds every chunk.
artifacts = Table(
    "artifacts",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("created_at", Double, nullable=False),
)

#: The bytes, `CHUNK_BYTES` (1 MiB) a row, numbered from 0; streamed in and out one row at a time.
artifact_chunks = Table(
    "artifact_chunks",
    metadata,
    Column("sha256", String(64), ForeignKey("artifacts.sha256"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("data", LargeBinary, nullable=False),
)
