"""Where a run's files live: the workdir holding `runs/<run>/`, the staging directory a build
writes into beside it, and moving a finished build into place.

A build never writes into `runs/<run>/` itself: it fills a staging directory and renames it into
place just before the ledger commits, so a run directory is either whole or absent.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from sqlalchemy.engine import Engine

from ledger.build.manifest import written_by_ledger
from ledger.core.db import sqlite_path
from ledger.core.durable import fsync_directory
from ledger.errors import InputError


def resolve_workdir(engine: Engine, override: Path | None) -> Path:
    """Where `runs/` lives: as given, beside a SQLite ledger file, or the current directory."""
    if override is not None:
        workdir = Path(override).expanduser().resolve()
    else:
        database = sqlite_path(engine.url.render_as_string(hide_password=True))
        workdir = database.parent if database is not None else Path.cwd().resolve()
    try:
        workdir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"--workdir: cannot create {workdir} ({error.strerror})") from None
    return workdir


def make_staging_dir(workdir: Path, name: str) -> Path:
    """A fresh staging directory for building run `name`."""
    # Staged beside runs/, so a failed build leaves not even an empty runs/ directory behind.
    try:
        return Path(tempfile.mkdtemp(prefix=f".ledger-build-{name}-", dir=workdir))
    except OSError as error:
        raise InputError(f"--workdir: cannot write in {workdir} ({error.strerror})") from None


def move_into_place(engine: Engine, staging: Path, run_dir: Path) -> None:
    """Rename the staging directory to the run directory, replacing only our own leftovers."""
    if not run_dir.parent.exists():
        run_dir.parent.mkdir(parents=True)
        fsync_directory(run_dir.parent.parent)
    if run_dir.exists():
        # The ledger has no such run (checked in this transaction), so a directory here is the
        # leftover of a submit that died between this rename and its commit, or someone else's.
        if not written_by_ledger(engine, run_dir):
            raise InputError(
                f"{run_dir} exists but the ledger has no run {run_dir.name!r}: "
                "move it away or choose another --run"
            )
        shutil.rmtree(run_dir)
    staging.rename(run_dir)
    fsync_directory(run_dir.parent)
