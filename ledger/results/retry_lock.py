"""One `ledger retry` of a run at a time: a retry reads which requests are left, cuts their
shards beside the run's and records the jobs; two at once would cut the same shards (under the
same names) and race to record them. The second one is told "busy" in one line instead.

The lock is an exclusive `flock` on `runs/<run>/.retry.lock` where this machine holds the run's
folder (a retry there cuts its shards beside the run's), and the kernel drops the lock when the
process ends, however it ends. A retry runs on any machine (it reads the parents' shards from
the artifact store): across machines, recording the jobs is the guard: the run's shard indexes
are unique, and the loser is told "busy" then.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import Engine

from ledger.core.models import Job, Run
from ledger.errors import InputError

LOCK_FILE = ".retry.lock"


def busy(run_name: str) -> InputError:
    """The one line the second of two concurrent retries of a run ends with."""
    return InputError(
        f"busy: another `ledger retry` of run {run_name!r} is running; "
        "see `ledger status` once it ends"
    )


@contextmanager
def exclusive_retry(engine: Engine, run_name: str) -> Iterator[None]:
    """Hold the run's retry lock; InputError ("busy") at once when another process holds it."""
    folder = _run_folder(engine, run_name)
    if folder is None:  # no such run, or its folder is not here: the retry itself says so
        yield
        return
    descriptor = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise busy(run_name) from None
        yield
    finally:
        os.close(descriptor)  # closing drops the lock


def _run_folder(engine: Engine, run_name: str) -> Path | None:
    with engine.connect() as connection:
        shard = connection.execute(
            select(Job.input_path)
            .join(Run, Run.id == Job.run_id)
            .where(Run.name == run_name)
            .order_by(Job.id)
            .limit(1)
        ).scalar()
    if shard is None:
        return None
    folder = Path(shard).parent.parent
    return folder if folder.is_dir() else None
