"""Where a run's files live: the workdir holding `runs/<run>/`, the staging directory a build
writes into beside it, and moving a finished build into place.

A build never writes into `runs/<run>/` itself: it fills a staging directory and renames it into
place just before the ledger commits, so a run directory is either whole or absent. A build killed
outright (`kill -9`, a power cut) leaves its staging directory behind; the staging directory names
its build's process (OWNER_FILE), and `stale_staging_dirs` finds those whose process is provably
gone, or which nobody touched for STALE_AFTER_SECONDS. The next submit of the same run removes
them, and `ledger gc` removes all of them.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine

from ledger.build.manifest import written_by_ledger
from ledger.core.db import sqlite_path
from ledger.core.durable import fsync_directory
from ledger.core.owner import owner_is_dead_local_process, process_owner
from ledger.errors import InputError

#: Staging directories are `<workdir>/.ledger-build-<run>-<8 random characters>`.
STAGING_PREFIX = ".ledger-build-"
_STAGING_NAME = re.compile(re.escape(STAGING_PREFIX) + r"(?P<run>.+)-[a-z0-9_]{8}")

#: The file in a staging directory naming the process that builds in it (a lease-owner string).
OWNER_FILE = ".owner"

#: A staging directory whose builder cannot be proved dead (another host, PID namespace or
#: boot) is removed only after this long untouched: no build takes a day between two writes.
STALE_AFTER_SECONDS = 24 * 3600.0


@dataclass(frozen=True)
class StagingLeftover:
    """A staging directory no build will finish."""

    path: Path
    #: The run it was building.
    run: str
    #: Why it is known to be abandoned.
    reason: str


def resolve_workdir(engine: Engine, override: Path | None) -> Path:
    """Where `runs/` lives: as given, beside a SQLite ledger file, or the current directory."""
    if override is not None:
        workdir = Path(override).expanduser().resolve()
    else:
        workdir = default_workdir(engine.url.render_as_string(hide_password=True))
    try:
        workdir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"--workdir: cannot create {workdir} ({error.strerror})") from None
    return workdir


def default_workdir(url: str) -> Path:
    """Where `runs/` lives when not told: beside a SQLite ledger, else the current directory."""
    database = sqlite_path(url)
    return database.parent if database is not None else Path.cwd().resolve()


def make_staging_dir(workdir: Path, name: str) -> Path:
    """A fresh staging directory for building run `name`."""
    # Staged beside runs/, so a failed build leaves not even an empty runs/ directory behind.
    try:
        staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{name}-", dir=workdir))
        (staging / OWNER_FILE).write_text(process_owner(), encoding="ascii")
    except OSError as error:
        raise InputError(f"--workdir: cannot write in {workdir} ({error.strerror})") from None
    return staging


def stale_staging_dirs(workdir: Path, run: str | None = None) -> list[StagingLeftover]:
    """The staging directories in `workdir` (of run `run` only, when given) that no build will
    finish: their build's process is provably dead, or nobody wrote in them for
    STALE_AFTER_SECONDS. A live build's directory, or one that cannot be judged, is left be."""
    found: list[StagingLeftover] = []
    for path in sorted(workdir.glob(f"{STAGING_PREFIX}*")):
        matched = _STAGING_NAME.fullmatch(path.name)
        if matched is None or path.is_symlink() or not path.is_dir():
            continue
        if run is not None and matched["run"] != run:
            continue
        reason = _abandoned(path)
        if reason is not None:
            found.append(StagingLeftover(path, matched["run"], reason))
    return found


def _abandoned(staging: Path) -> str | None:
    try:
        owner = (staging / OWNER_FILE).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        owner = ""  # killed before it was written, or not ours to read: judged by age alone
    if owner and owner_is_dead_local_process(owner):
        return "its build process is gone"
    try:
        touched = max(entry.stat().st_mtime for entry in (staging, *staging.iterdir()))
    except OSError:
        return None  # removed meanwhile
    if time.time() - touched > STALE_AFTER_SECONDS:
        return f"untouched for over {STALE_AFTER_SECONDS / 3600:.0f} h"
    return None


def remove_staging_dirs(leftovers: list[StagingLeftover]) -> None:
    """Remove the given staging directories (one already gone is fine)."""
    for leftover in leftovers:
        shutil.rmtree(leftover.path, ignore_errors=True)


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
    (staging / OWNER_FILE).unlink(missing_ok=True)  # it names the builder, not the run
    staging.rename(run_dir)
    fsync_directory(run_dir.parent)
