"""Which store: `open_store` reads the `artifact_store` setting, `resolve` opens the store a
recorded ref names.

    artifact_store = "local"        <ledger dir>/artifacts (the default for a SQLite ledger)
    artifact_store = "database"     the ledger database itself (the default for PostgreSQL)
    artifact_store = "file:///mnt/shared/ledger-artifacts"   a folder, e.g. on a shared mount
    artifact_store = "s3://bucket/prefix"                     any fsspec URL (the extra)
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Engine

from ledger.artifacts.base import ArtifactRef, ArtifactStore, root_of
from ledger.artifacts.database import DatabaseStore
from ledger.artifacts.errors import ArtifactUnreachable
from ledger.artifacts.fsspec_store import FsspecStore
from ledger.artifacts.local import LocalFolderStore, path_from_file_url
from ledger.core.db import sqlite_path
from ledger.errors import ConfigError

#: The folder, beside the ledger, that the "local" store keeps its artifacts in.
LOCAL_FOLDER = "artifacts"


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
