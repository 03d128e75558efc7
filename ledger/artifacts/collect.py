"""`ledger gc` for artifacts: those in a store that no job references any more.

An artifact is put before the job that needs it records its ref (a build stores its shards,
then records the run; a download stores the file, then moves the job), so a fresh unreferenced
artifact may be about to be referenced: only those older than `min_age` seconds are litter
(a day by default, like a build's staging folder). One whose age cannot be told is kept.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import select, union
from sqlalchemy.engine import Engine

from ledger.artifacts.base import ArtifactRef, ArtifactStore
from ledger.artifacts.database import DatabaseStore
from ledger.artifacts.fsspec_store import FsspecStore
from ledger.artifacts.local import LocalFolderStore
from ledger.artifacts.tables import artifacts
from ledger.core.db import read_db_now
from ledger.core.models import Job

#: Seconds an unreferenced artifact is left alone after it was stored.
MIN_AGE_SECONDS = 24 * 3600.0

_REF_COLUMNS = (Job.input_ref, Job.output_ref, Job.error_ref, Job.results_ref)


@dataclass(frozen=True)
class Unreferenced:
    """An artifact no job references, old enough to remove."""

    ref: ArtifactRef
    #: Seconds since it was stored.
    age: float


def referenced_sha256s(engine: Engine) -> set[str]:
    """The sha256 of every artifact some job records a ref to (in any store)."""
    query = union(*(select(column).where(column.is_not(None)) for column in _REF_COLUMNS))
    with engine.connect() as connection:
        texts = connection.execute(query).scalars()
        return {ArtifactRef.parse(text).sha256 for text in texts if text}


def unreferenced_artifacts(
    engine: Engine, store: ArtifactStore, *, min_age: float = MIN_AGE_SECONDS
) -> list[Unreferenced]:
    """The artifacts in `store` that no job of the ledger references, stored over `min_age`
    seconds ago."""
    referenced = referenced_sha256s(engine)
    return [
        Unreferenced(ref, age)
        for ref, age in _with_ages(engine, store)
        if ref.sha256 not in referenced and age is not None and age >= min_age
    ]


def remove_artifacts(store: ArtifactStore, found: list[Unreferenced]) -> None:
    """Delete the given artifacts (one already gone is fine)."""
    for item in found:
        store.delete(item.ref)


def _with_ages(engine: Engine, store: ArtifactStore) -> Iterator[tuple[ArtifactRef, float | None]]:
    if isinstance(store, DatabaseStore):
        with store.engine.connect() as connection:
            now = read_db_now(connection)
            rows = connection.execute(select(artifacts.c.sha256, artifacts.c.created_at)).all()
        stored_at = {sha256: created_at for sha256, created_at in rows}
        for ref in store.list():
            when = stored_at.get(ref.sha256)
            yield ref, None if when is None else now - float(when)
        return
    now = time.time()
    for ref in store.list():
        yield ref, _file_age(store, ref, now)


def _file_age(store: ArtifactStore, ref: ArtifactRef, now: float) -> float | None:
    try:
        if isinstance(store, LocalFolderStore):
            return now - store.path_of(ref.sha256).stat().st_mtime
        if isinstance(store, FsspecStore):
            return now - store.fs.modified(store.path_of(ref.sha256)).timestamp()
    except (OSError, NotImplementedError, AttributeError, ValueError):
        return None
    return None
