"""completed|failed|expired|cancelled -> downloaded: whichever result files the batch left are
fetched and verified (ZIP archives included) beside the run's shards.

A result file the provider answers 404 for (OpenAI deletes them `output_expires_after` after
the batch, 30 days by default; Anthropic archives results after 29 days) is counted like a
batch's 404 (`not_found_count`, `first_not_found_at`): one 404 proves nothing. Once the streak
reaches `not_found_answers` answers over `not_found_window` seconds the file is declared gone,
the job goes on without it, and each request it held ends `unavailable` with the reason
(`ledger.results.unanswered`), which `ledger retry` resends.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Row

from adapters.base import NotFound, TransientError
from ledger.core.crashpoints import crash_point
from ledger.core.db import read_db_now
from ledger.core.states import State
from ledger.core.store import Lease, update_leased
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
    gone: dict[str, str] = {}
    for kind, file_id in (("output", job.output_file_id), ("error", job.error_file_id)):
        if not file_id:
            continue
        provider = context.provider(job)
        final = directory / f"shard-{job.shard_index:04d}.{kind}.jsonl"
        raw = directory / f".{final.name}.download"
        try:
            provider.download_file(file_id, raw)
        except NotFound as error:
            gone[kind] = f"{kind} file {file_id} is gone at the provider: {error}"
            continue
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
    if gone and not _gone_for_good(context, lease, job, gone):
        return StepOutcome.DONE
    crash_point("after_download")
    detail: dict[str, Any] = {"lines": lines}
    fields: dict[str, Any] = dict(paths)
    if gone:
        detail["gone"] = gone
        fields.update(not_found_count=None, first_not_found_at=None)
    if refused:
        detail["refused"] = refused
    if refused or gone:
        fields["last_error"] = "; ".join([*refused.values(), *gone.values()])
    context.advance(lease, state, State.DOWNLOADED, detail=detail, **fields)
    crash_point("after_download_recorded")
    return StepOutcome.CONTINUE


def _gone_for_good(context: StepContext, lease: Lease, job: Row[Any], gone: dict[str, str]) -> bool:
    """Count one more 404 of the job's result files; True once the streak is long enough to
    declare them gone (else the job is checked again later, nothing else changed)."""
    options = context.options
    with context.engine.begin() as connection:
        now = read_db_now(connection)
        count = (job.not_found_count or 0) + 1
        first = job.first_not_found_at or now
        update_leased(connection, lease, not_found_count=count, first_not_found_at=first)
    if count >= options.not_found_answers and now - first >= options.not_found_window:
        return True
    message = f"{'; '.join(gone.values())} ({count} in a row over {now - first:.0f} s)"
    retry = context.next_interval(job)
    context.record_problem(lease, message, context.jittered(retry), poll_interval=retry)
    return False


def run_directory(job: Row[Any]) -> Path:
    """The run's folder: shards live in runs/<run>/batch_inputs/; downloads sit beside them."""
    return Path(job.input_path).parent.parent
