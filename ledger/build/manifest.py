"""A run's manifest.json: the run and its jobs as the ledger records them, written into the run
directory with the shard files, so the directory explains itself (and says which ledger left it).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy.engine import Engine

from ledger.build.shards import Shard
from ledger.build.streaming import SHARD_DIR, Built

if TYPE_CHECKING:
    from ledger.build.run import BuildOptions

MANIFEST = "manifest.json"


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
    }


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
