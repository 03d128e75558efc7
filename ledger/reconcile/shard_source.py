"""The shard a job sends, verified before it goes: the job's own file on this machine when it
holds the recorded bytes (checked against the recorded sha256 and size), else the copy in the
artifact store (checked the same way as it is read). A job recorded before artifacts, or cut by
a retry, has its file stored then.

A provider whose upload kept the input as a file on the machine that made it (Anthropic's request
set: `adapters.base.LocalInputs`) has it made again here from the verified shard, for the time a
step needs it (`local_input`), when that file is not on this machine.

When neither gives the recorded bytes, the shard is built again from the run's recorded input
and options (`ledger.build.artifacts.rebuilt_shard`) and used only if its sha256 is the recorded
one; otherwise the job waits with both reasons (an ArtifactError, kept in `last_error`). A shard
is never sent unless its bytes are the ones recorded at submit.
"""

from __future__ import annotations

import contextlib
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

from adapters.base import BatchProvider, LocalInputs
from ledger.artifacts import CHUNK_BYTES, ArtifactError, copy_ref, open_ref, resolve, store_for

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
    file); ArtifactError with the reason when the recorded bytes cannot be had.

    The stored copy is checked first: a damaged or lost one is replaced (from the job's own file
    when intact, else from a rebuild), so that what is normalized later is what was sent. The
    job's own file on this machine is sent when intact (an adapter may keep files beside it, as
    Anthropic's request set); else the stored copy."""
    with ExitStack() as stack:
        scratch = Path(tempfile.mkdtemp(prefix="ledger-shard-"))
        stack.callback(shutil.rmtree, scratch, True)
        local = Path(job.input_path)
        local_problem = check_input_file(local, job.input_sha256, job.input_bytes)
        stored_problem = _stored_problem(engine, job)
        if stored_problem is None:
            if local_problem is None:
                yield VerifiedShard(local, None)
                return
            copy_ref(job.input_ref, engine, scratch / "shard.jsonl")
            yield VerifiedShard(scratch / "shard.jsonl", None)
            return
        if local_problem is None:
            yield VerifiedShard(local, _store_again(engine, job, local))
            return
        problem = stored_problem if job.input_ref else local_problem
        try:
            rebuilt = stack.enter_context(_rebuilt(engine, job))
        except ArtifactError as error:
            raise ArtifactError(f"{problem}; {error}") from None
        log.warning("job %s: %s; rebuilt it from the run's input", job.id, problem)
        yield VerifiedShard(rebuilt, _store_again(engine, job, rebuilt))


@contextmanager
def local_input(engine: Engine, provider: BatchProvider, job: Any) -> Iterator[str | None]:
    """While the block runs, the uploaded input `job.input_file_id` names can be read here: for a
    provider that keeps it as a local file (`LocalInputs`) absent on this machine (the upload
    ran on another), it is made again from the job's shard, verified like the upload's
    (`verified_shard`). Yields the shard's new artifact ref when it had to be stored again (to
    record on the job), else None."""
    if (
        not isinstance(provider, LocalInputs)
        or not job.input_file_id
        or provider.has_local_input(job.input_file_id)
    ):
        yield None
        return
    with (
        verified_shard(engine, job) as shard,
        provider.local_input_from(job.input_file_id, shard.path),
    ):
        log.info("job %s: its input %s is made again from its shard", job.id, job.input_file_id)
        yield shard.new_ref


class LocalInputOnDemand:
    """`local_input`, entered the first time `need()` is called and left with the block: a
    create held back by the spend checks (or adopting a batch it found) never reads the shard
    for nothing."""

    def __init__(self, engine: Engine, provider: BatchProvider, job: Any) -> None:
        self._engine, self._provider, self._job = engine, provider, job
        self._stack = ExitStack()
        self._entered = False
        #: The shard's new artifact ref when `local_input` stored it again, else None.
        self.new_ref: str | None = None

    def need(self) -> None:
        """Make sure the job's uploaded input can be read here until the block ends."""
        if not self._entered:
            self._entered = True
            self.new_ref = self._stack.enter_context(
                local_input(self._engine, self._provider, self._job)
            )

    def __enter__(self) -> LocalInputOnDemand:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stack.close()


def _stored_problem(engine: Engine, job: Any) -> str | None:
    """Why the job's stored shard is not the recorded one (or there is none), or None."""
    if not job.input_ref:
        return "no stored copy"
    try:
        with open_ref(job.input_ref, engine) as stream:
            while stream.read(CHUNK_BYTES):
                pass
    except ArtifactError as error:
        return f"job {job.id}'s shard: {error}"
    return None


def _store_again(engine: Engine, job: Any, path: Path) -> str | None:
    """Store `path` (holding the recorded bytes) in place of a lost or damaged copy; the new ref
    when it differs from the recorded one (a job without one, or another store now), else None.
    ArtifactError when the bytes stored are not the recorded ones."""
    store = store_for(engine)
    if job.input_ref:
        with contextlib.suppress(ArtifactError):
            damaged_store, damaged = resolve(job.input_ref, engine=engine)
            damaged_store.delete(damaged)  # a put of the same bytes would keep a bad copy
    stored = store.put(path)
    if stored.sha256 != job.input_sha256 or stored.size != job.input_bytes:
        raise ArtifactError(f"input shard {path} changed while it was stored")
    return None if str(stored) == job.input_ref else str(stored)


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
