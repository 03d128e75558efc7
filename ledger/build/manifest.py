"""A run's manifest.json: the run and its jobs as the ledger records them, written into the run
directory with the shard files, so the directory explains itself (and says which ledger left it).

Each job's provider ids (`batch_id`, `output_file_id`, `error_file_id`) are filled in as they
become known (`record_provider_ids`, called by the create, poll and cancel steps), so a pipeline
reading the manifest sees them without querying the database. Each rewrite reads them from the
ledger under a lock on the manifest and replaces the file atomically, so concurrent
reconcilers never interleave and the last write holds the latest ids.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import select
from sqlalchemy.engine import Engine

from ledger.build.shards import Shard
from ledger.build.streaming import SHARD_DIR, Built
from ledger.core.models import Job

if TYPE_CHECKING:
    from ledger.build.run import BuildOptions

MANIFEST = "manifest.json"
#: The provider's ids of a job, filled in as they become known.
PROVIDER_IDS = ("batch_id", "output_file_id", "error_file_id")

log = logging.getLogger("ledger.build")


def manifest_bytes(
    engine: Engine,
    run_id: int,
    name: str,
    source_path: Path,
    options: BuildOptions,
    built: Built,
    job_ids: Mapping[int, int],
    run_dir: Path,
) -> bytes:
    """manifest.json: the run and its jobs as the ledger records them."""
    shard_dir = run_dir / SHARD_DIR
    return orjson.dumps(
        {
            "ledger": ledger_url(engine),
            "run": {
                "id": run_id,
                "name": name,
                "provider": options.provider,
                "endpoint": built.endpoint,
                "model": built.model,
                "input_path": str(source_path.resolve()),
                "input_sha256": built.input_sha256,
                "request_count": sum(s.requests for s in built.shards),
                "skipped": built.skipped,
            },
            "options": options.recorded(),
            "jobs": [
                manifest_job(job_ids[shard.index], shard, shard_dir / shard.path.name)
                for shard in built.shards
            ],
        },
        option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS,
    )


def manifest_job(job_id: int, shard: Shard, path: Path) -> dict[str, Any]:
    """One job's entry in a run's manifest.json."""
    return {
        "job_id": job_id,
        "shard_index": shard.index,
        "provider": shard.provider or None,
        "model": shard.model,
        "path": str(path),
        "sha256": shard.sha256,
        "bytes": shard.bytes,
        "requests": shard.requests,
        "est_input_tokens": shard.est_input_tokens,
        "max_output_tokens": shard.max_output_tokens,
        **dict.fromkeys(PROVIDER_IDS),
    }


def record_provider_ids(engine: Engine, run_id: int, run_dir: Path) -> None:
    """Rewrite the run's manifest.json with every job's provider ids as the ledger holds them
    now. A run directory without a manifest (or one that cannot be written) is left as it is:
    the ledger stays the record, and the next rewrite catches up."""
    path = run_dir / MANIFEST
    if not path.exists():
        return
    try:
        with manifest_lock(path):
            with engine.connect() as connection:
                ids = {
                    row.id: row
                    for row in connection.execute(
                        select(Job.id, *(getattr(Job, name) for name in PROVIDER_IDS)).where(
                            Job.run_id == run_id
                        )
                    )
                }
            manifest = orjson.loads(path.read_bytes())
            for entry in manifest.get("jobs", []):
                row = ids.get(entry.get("job_id"))
                if row is not None:
                    entry.update({name: getattr(row, name) for name in PROVIDER_IDS})
            replace_manifest(path, manifest)
    except (OSError, orjson.JSONDecodeError) as error:
        log.warning("%s: provider ids not written: %s", path, error)


def record_job_provider_ids(engine: Engine, job: Any) -> None:
    """`record_provider_ids` for the run of `job` (a `jobs` row), whose shard sits in
    `runs/<run>/batch_inputs/`."""
    record_provider_ids(engine, job.run_id, Path(job.input_path).parent.parent)


@contextlib.contextmanager
def manifest_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock beside `path` (threads and processes alike) while it is
    rewritten."""
    with open(path.with_name(f".{path.name}.lock"), "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def replace_manifest(path: Path, manifest: dict[str, Any]) -> None:
    """Write `manifest` to a temporary file of its own beside `path`, fsync it, rename it over
    `path`: a reader sees the old file or the new one, never a part."""
    data = orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    handle, partial = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


def written_by_ledger(engine: Engine, run_dir: Path) -> bool:
    """Whether `run_dir` holds a manifest written by the ledger at `engine`."""
    try:
        manifest = orjson.loads((run_dir / MANIFEST).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return False
    return manifest.get("ledger") == ledger_url(engine)


def ledger_url(engine: Engine) -> str:
    """The ledger's URL as a manifest names it (without a password)."""
    return engine.url.render_as_string(hide_password=True)
