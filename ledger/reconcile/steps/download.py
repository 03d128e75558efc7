"""completed|failed|expired|cancelled -> downloaded: whichever result files the batch left are
fetched, verified (ZIP archives included) and put into the artifact store; a copy stays in the
run's `downloads/` folder on the machine that holds the run.

A result file the provider answers 404 for (OpenAI deletes them `output_expires_after` after
the batch, 30 days by default; Anthropic archives results after 29 days) is counted like a
batch's 404 (`not_found_count`, `first_not_found_at`): one 404 proves nothing. Once the streak
reaches `not_found_answers` answers over `not_found_window` seconds the file is declared gone,
the job goes on without it, and each request it held ends `unavailable` with the reason
(`ledger.results.unanswered`), which `ledger retry` resends.
"""

from __future__ import annotations

import errno
import logging
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Row

from adapters.base import NotFound, TransientError
from ledger.artifacts import ArtifactUnreachable, store_for
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
    fields: dict[str, Any] = dict.fromkeys(("output_path", "error_path", "output_ref", "error_ref"))
    lines: dict[str, int] = {}
    refused: dict[str, str] = {}
    gone: dict[str, str] = {}
    with download_folder(job) as (directory, keep):
        for kind, file_id in (("output", job.output_file_id), ("error", job.error_file_id)):
            if not file_id:
                continue
            provider = context.provider(job)
            final = directory / f"shard-{job.shard_index:04d}.{kind}.jsonl"
            raw = directory / f".{final.name}.download"
            try:
                with removed_on_full_disk(raw, final, f"the {kind} file of job {job.id}"):
                    provider.download_file(file_id, raw)
                    lines[kind] = finish_download(raw, final)
            except NotFound as error:
                gone[kind] = f"{kind} file {file_id} is gone at the provider: {error}"
                continue
            except CorruptDownload as error:
                raise TransientError(f"{kind} file {file_id}: {error}") from None
            except UnsafeArchive as error:
                # Refused for good: no retry will make it safe. The job goes on without that
                # file, so its requests end `missing` (retryable) with the reason on record.
                log.error("job %s: %s file %s refused: %s", job.id, kind, file_id, error)
                refused[kind] = f"{kind} file {file_id} refused: {error}"
                continue
            # Into the artifact store, so that any machine can normalize it and read it back.
            fields[f"{kind}_ref"] = str(store_for(context.engine).put(final))
            if keep:
                fields[f"{kind}_path"] = str(final)
    if gone and not _gone_for_good(context, lease, job, gone):
        return StepOutcome.DONE
    crash_point("after_download")
    detail: dict[str, Any] = {"lines": lines}
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


@contextmanager
def download_folder(job: Row[Any]) -> Iterator[tuple[Path, bool]]:
    """Where the files are fetched to, and whether they stay there: the run's `downloads/`
    folder on the machine that holds the run (a copy for people to look at), else a scratch
    folder removed afterwards (the store holds them)."""
    run_dir = run_directory(job)
    if run_dir.is_dir():
        directory = run_dir / "downloads"
        directory.mkdir(exist_ok=True)
        yield directory, True
        return
    scratch = Path(tempfile.mkdtemp(prefix="ledger-download-"))
    try:
        yield scratch, False
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@contextmanager
def removed_on_full_disk(raw: Path, final: Path, what: str) -> Iterator[None]:
    """Turn a full disk (ENOSPC, EDQUOT) while fetching `what` into one line (the job waits
    with it), after removing the partial files, so they do not keep the disk full."""
    try:
        yield
    except OSError as error:
        if error.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        for partial in (raw, final.with_name(final.name + ".part")):
            partial.unlink(missing_ok=True)
        raise ArtifactUnreachable(
            f"no space left on the device for {what} in {raw.parent} "
            "(the partial file is removed; the job waits)"
        ) from None
