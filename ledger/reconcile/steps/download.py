"""completed|failed|expired|cancelled -> downloaded: whichever result files the batch left are
fetched and verified (ZIP archives included) beside the run's shards."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Row

from adapters.base import TransientError
from ledger.core.crashpoints import crash_point
from ledger.core.states import State
from ledger.core.store import Lease
from ledger.reconcile.context import StepContext, StepOutcome
from ledger.reconcile.downloads import CorruptDownload, UnsafeArchive, finish_download

log = logging.getLogger("ledger.reconcile")


def download(context: StepContext, lease: Lease, job: Row[Any]) -> StepOutcome:
    """completed|failed|expired|cancelled -> downloaded: fetch whichever files exist."""
    state = State(job.state)
    directory = run_directory(job) / "downloads"
    directory.mkdir(parents=True, exist_ok=True)
    paths: dict[str, str | None] = {"output_path": None, "error_path": None}
    lines: dict[str, int] = {}
    refused: dict[str, str] = {}
    for kind, file_id in (("output", job.output_file_id), ("error", job.error_file_id)):
        if not file_id:
            continue
        provider = context.provider(job)
        final = directory / f"shard-{job.shard_index:04d}.{kind}.jsonl"
        raw = directory / f".{final.name}.download"
        provider.download_file(file_id, raw)
        try:
            lines[kind] = finish_download(raw, final)
        except CorruptDownload as error:
            raise TransientError(f"{kind} file {file_id}: {error}") from None
        except UnsafeArchive as error:
            # Refused for good: no retry will make it safe. The job goes on without that
            # file, so its requests end `missing` (retryable) with the reason on record.
            log.error("job %s: %s file %s refused: %s", job.id, kind, file_id, error)
            refused[kind] = f"{kind} file {file_id} refused: {error}"
            continue
        paths[f"{kind}_path"] = str(final)
    crash_point("after_download")
    detail: dict[str, Any] = {"lines": lines}
    fields: dict[str, Any] = dict(paths)
    if refused:
        detail["refused"] = refused
        fields["last_error"] = "; ".join(refused.values())
    context.advance(lease, state, State.DOWNLOADED, detail=detail, **fields)
    crash_point("after_download_recorded")
    return StepOutcome.CONTINUE


def run_directory(job: Row[Any]) -> Path:
    """The run's folder: shards live in runs/<run>/batch_inputs/; downloads sit beside them."""
    return Path(job.input_path).parent.parent
