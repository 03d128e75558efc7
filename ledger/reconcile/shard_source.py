"""The shard a job sends, verified before it goes: read from the artifact store (checked against
the recorded sha256 and size), or, for a job recorded before artifacts or cut by a retry, from
its file on this machine, checked the same way and then stored.

When neither gives the recorded bytes, the shard is built again from the run's recorded input
and options (`ledger.build.artifacts.rebuilt_shard`) and used only if its sha256 is the recorded
one; otherwise the job waits with both reasons (an ArtifactError, kept in `last_error`). A shard
is never sent unless its bytes are the ones recorded at submit.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from ledger.artifacts import ArtifactError, copy_ref, store_for

log = logging.getLogger("ledger.reconcile")


@dataclass(frozen=True)
class VerifiedShard:
    """A local file holding exactly the job's recorded shard."""

    path: Path
    #: The artifact ref to record on the job when it changed (stored or rebuilt now), else None.
    new_ref: str | None


@contextmanager
def verified_shard(engine: Engine, job: Any) -> Iterator[VerifiedShard]:
    """The job's shard as a verified local file (removed afterwards unless it is the job's own
    file); ArtifactError with the reason when the recorded bytes cannot be had."""
    with ExitStack() as stack:
        scratch = Path(tempfile.mkdtemp(prefix="ledger-shard-"))
        stack.callback(shutil.rmtree, scratch, True)
        copy = scratch / "shard.jsonl"
        stored, problem = _stored(engine, job, copy)
        if problem is None:
            shard = VerifiedShard(copy, None if stored == job.input_ref else stored)
        else:
            try:
                rebuilt = stack.enter_context(_rebuilt(engine, job))
            except ArtifactError as error:
                raise ArtifactError(f"{problem}; {error}") from None
            log.warning("job %s: %s; rebuilt it from the run's input", job.id, problem)
            shard = VerifiedShard(rebuilt, str(store_for(engine).put(rebuilt)))
        yield shard


def _stored(engine: Engine, job: Any, copy: Path) -> tuple[str | None, str | None]:
    """The job's shard ref and None once `copy` holds the recorded bytes, verified; else
    (None, why not). A job without a ref (recorded before artifacts, or a retry's) has its local
    file stored now, so that the rest of its life can happen on any machine."""
    ref = job.input_ref
    if not ref:
        problem = check_input_file(Path(job.input_path), job.input_sha256, job.input_bytes)
        if problem is not None:
            return None, problem
        stored = store_for(engine).put(Path(job.input_path))
        if stored.sha256 != job.input_sha256:
            return None, f"input shard {job.input_path} changed since it was built"
        ref = str(stored)
    try:
        copy_ref(ref, engine, copy)
    except ArtifactError as error:
        return None, f"job {job.id}'s shard: {error}"
    return ref, None


@contextmanager
def _rebuilt(engine: Engine, job: Any) -> Iterator[Path]:
    from ledger.build.artifacts import rebuilt_shard

    with rebuilt_shard(engine, job) as path:
        yield path


def check_input_file(path: Path, expected_sha256: str, expected_bytes: int) -> str | None:
    """Why the shard on disk is not the one that was built, or None when it is."""
    if not path.exists():
        return f"input shard {path} is missing"
    digest = sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    if path.stat().st_size != expected_bytes or digest.hexdigest() != expected_sha256:
        return f"input shard {path} changed since it was built (sha256 mismatch)"
    return None
