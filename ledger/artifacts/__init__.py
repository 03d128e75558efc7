"""Artifacts: shard inputs and downloaded result files in a content-addressed store that every
reconciler reaches, verified against their sha256 and size on every read.

    base.py           ArtifactRef, the ArtifactStore Protocol, the verifying reader
    errors.py         ArtifactError > ArtifactCorrupt, ArtifactUnreachable
    local.py          a folder: <ledger dir>/artifacts/ab/<sha256> (default for SQLite)
    database.py       chunked rows in the ledger database (default for PostgreSQL)
    tables.py         those rows' tables (migration 0002_artifacts)
    fsspec_store.py   any fsspec URL (s3://, gs://, file:// on a shared mount): an extra
    locate.py         open_store(setting), store_for(engine), resolve/open_ref(recorded ref)

It stands on `ledger.core` (durable files, the database clock) and `ledger.errors` only.
"""

from __future__ import annotations

from ledger.artifacts.base import CHUNK_BYTES, ArtifactRef, ArtifactStore, Source
from ledger.artifacts.database import DatabaseStore
from ledger.artifacts.errors import ArtifactCorrupt, ArtifactError, ArtifactUnreachable
from ledger.artifacts.fsspec_store import FsspecStore
from ledger.artifacts.local import LocalFolderStore
from ledger.artifacts.locate import (
    STORE_ENV,
    RecordedFile,
    choose_store,
    copy_ref,
    default_store_setting,
    open_ref,
    open_store,
    resolve,
    store_for,
)

__all__ = [
    "CHUNK_BYTES",
    "STORE_ENV",
    "ArtifactCorrupt",
    "ArtifactError",
    "ArtifactRef",
    "ArtifactStore",
    "ArtifactUnreachable",
    "DatabaseStore",
    "FsspecStore",
    "LocalFolderStore",
    "RecordedFile",
    "Source",
    "choose_store",
    "copy_ref",
    "default_store_setting",
    "open_ref",
    "open_store",
    "resolve",
    "store_for",
]
