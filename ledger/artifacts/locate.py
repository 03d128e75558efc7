"""Which store: `open_store` reads the `artifact_store` setting, `resolve` opens the store a
recorded ref names.

    artifact_store = "local"        <ledger dir>/artifacts (the default for a SQLite ledger)
    artifact_store = "database"     the ledger database itself (the default for PostgreSQL)
    artifact_store = "file:///mnt/shared/ledger-artifacts"   a folder, e.g. on a shared mount
    artifact_store = "s3://bucket/prefix"                     any fsspec URL (the extra)
"""

from __future__ import annotations

import os
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

from sqlalchemy.engine import Engine

from ledger.artifacts.base import (
    CHUNK_BYTES,
    READ_BUFFER_BYTES,
    ArtifactRef,
    ArtifactStore,
    root_of,
)
from ledger.artifacts.database import DatabaseStore
from ledger.artifacts.errors import ArtifactUnreachable
from ledger.artifacts.fsspec_store import FsspecStore
from ledger.artifacts.local import LocalFolderStore, path_from_file_url
from ledger.core.db import sqlite_path
from ledger.errors import ConfigError

#: The folder, beside the ledger, that the "local" store keeps its artifacts in.
LOCAL_FOLDER = "artifacts"

#: The environment variable naming the store when `--artifact-store` is not given.
STORE_ENV = "LEDGER_ARTIFACT_STORE"

#: The `artifact_store` setting chosen for an open ledger (`choose_store`), by engine.
_CHOSEN: weakref.WeakKeyDictionary[Engine, str] = weakref.WeakKeyDictionary()


def choose_store(engine: Engine, setting: str | None) -> None:
    """Say which store new artifacts of the ledger `engine` opens go to (None: the default).
    Checked now, so a bad setting is a ConfigError before anything is built or sent."""
    open_store(setting or os.environ.get(STORE_ENV), engine=engine)
    if setting:
        _CHOSEN[engine] = setting
    else:
        _CHOSEN.pop(engine, None)


def store_for(engine: Engine) -> ArtifactStore:
    """The store new artifacts of this ledger go to: the one chosen for `engine`, else
    `$LEDGER_ARTIFACT_STORE`, else the default for its database (`default_store_setting`)."""
    return open_store(_CHOSEN.get(engine) or os.environ.get(STORE_ENV), engine=engine)


def open_ref(text: str, engine: Engine) -> BinaryIO:
    """A verified stream of the artifact a recorded ref names (see `ArtifactStore.open`)."""
    store, ref = resolve(text, engine=engine)
    return store.open(ref)


def copy_ref(text: str, engine: Engine, path: str | os.PathLike[str]) -> None:
    """Write the artifact a recorded ref names to `path`, which appears only once verified."""
    store, ref = resolve(text, engine=engine)
    store.copy_to(ref, path)


def default_store_setting(engine: Engine) -> str:
    """ "local" for a SQLite ledger (one machine), "database" for any other (many machines)."""
    return "local" if engine.dialect.name == "sqlite" else "database"


def open_store(
    setting: str | None, *, engine: Engine, ledger_dir: Path | None = None
) -> ArtifactStore:
    """The store an `artifact_store` setting names; None or "" means the default for `engine`.

    `ledger_dir` is the folder the "local" store lives in (as `artifacts/`); it defaults to the
    SQLite database's folder.
    """
    chosen = (setting or "").strip() or default_store_setting(engine)
    if chosen == "database":
        return DatabaseStore(engine)
    if chosen == "local":
        folder = ledger_dir or _database_folder(engine)
        if folder is None:
            raise ConfigError(
                'artifact_store = "local" needs a folder: on PostgreSQL use "database" or a URL'
            )
        return LocalFolderStore(folder / LOCAL_FOLDER)
    if chosen.startswith("file:"):
        try:
            return LocalFolderStore(path_from_file_url(chosen))
        except ValueError as error:
            raise ConfigError(f"artifact_store: {error} (use file:///absolute/path)") from None
    if "://" in chosen:
        return FsspecStore(chosen)
    raise ConfigError(
        f'artifact_store must be "local", "database" or a URL such as s3://bucket/prefix, '
        f"not {chosen!r}"
    )


def resolve(text: str, *, engine: Engine | None = None) -> tuple[ArtifactStore, ArtifactRef]:
    """The store holding the artifact a recorded ref string names, and the ref itself.

    A `db:` ref needs `engine` (the ledger it was recorded in); a `file://` ref is read where
    it points (a folder this machine must see at the same path); any other URL through fsspec.
    """
    ref = ArtifactRef.parse(text)
    if ref.kind == "database":
        if engine is None:
            raise ArtifactUnreachable(f"{ref.label} is in a database and none was given")
        return DatabaseStore(engine), ref
    if ref.kind == "local":
        try:
            return LocalFolderStore(path_from_file_url(root_of(ref))), ref
        except ValueError as error:
            raise ArtifactUnreachable(f"{ref.label}: {error}") from None
    return FsspecStore(root_of(ref)), ref


def _database_folder(engine: Engine) -> Path | None:
    path = sqlite_path(engine.url.render_as_string(hide_password=False))
    return path.parent if path is not None else None


@dataclass(frozen=True)
class RecordedFile:
    """A file a job recorded: an artifact ref (read from its store, verified), or for a job
    recorded before artifacts, a local path (read as it is)."""

    #: How messages name it: the local path, else the artifact's label.
    name: str
    ref: str | None
    path: Path | None
    engine: Engine | None = None

    @classmethod
    def of(cls, ref: str | None, path: str | None, engine: Engine) -> RecordedFile | None:
        """The file a (ref, path) pair of columns names, None when neither is set."""
        if ref:
            label = ArtifactRef.parse(ref).label
            return cls(name=path or label, ref=ref, path=None, engine=engine)
        if path:
            return cls(name=path, ref=None, path=Path(path))
        return None

    def open(self) -> BinaryIO:
        """Its bytes. From a ref they raise ArtifactCorrupt before the last block unless whole,
        so act on what was read only once the stream ended."""
        if self.ref is not None:
            return open_ref(self.ref, cast(Engine, self.engine))
        assert self.path is not None
        # The buffer a stored file is read through: with the default 8 KiB, reading 200 MB of
        # 4 KB lines (normalizing a job) took three times the CPU (0.12 s against 0.04 s).
        return self.path.open("rb", buffering=READ_BUFFER_BYTES)

    def check_whole(self) -> None:
        """Read a stored file through once: ArtifactCorrupt or ArtifactUnreachable unless it is
        whole and intact (a local path is not checked)."""
        if self.ref is None:
            return
        with self.open() as stream:
            while stream.read(CHUNK_BYTES):
                pass
