"""built -> uploaded: the shard goes to the provider under a file name carrying the job's token."""

from __future__ import annotations

import logging
from hashlib import sha256
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Row

from adapters.base import RemoteFile
from ledger.core.crashpoints import crash_point
from ledger.core.states import State
from ledger.core.store import Lease, update_leased
from ledger.reconcile.adopt import adopt_or_act
from ledger.reconcile.context import StepContext, StepOutcome

log = logging.getLogger("ledger.reconcile")


def upload(context: StepContext, lease: Lease, job: Row[Any]) -> StepOutcome:
    """built -> uploaded: upload the shard under a name carrying the job's token."""
    provider = context.provider(job)
    path = Path(job.input_path)
    problem = check_input_file(path, job.input_sha256, job.input_bytes)
    if problem:
        context.fail(lease, State.BUILT, problem)
        return StepOutcome.CONTINUE

    def record_intent(token: str) -> None:
        with context.engine.begin() as connection:
            update_leased(connection, lease, submit_token=token)

    def discard(duplicate: RemoteFile) -> None:
        log.warning("job %s: deleting duplicate upload %s", job.id, duplicate.id)
        provider.delete_file(duplicate.id)

    # An upload with a recorded token may have reached the provider before a crash.
    uploaded = adopt_or_act(
        job.submit_token,
        record_intent=record_intent,
        find=lambda token: provider.find_uploads(upload_name(job, token)),
        discard=discard,
        act=lambda token: provider.upload_input(path, filename=upload_name(job, token)),
        before_act="before_upload",
    )
    crash_point("after_upload")
    context.advance(
        lease,
        State.BUILT,
        State.UPLOADED,
        detail={
            "input_file_id": uploaded.remote.id,
            "bytes": uploaded.remote.bytes,
            "adopted": uploaded.adopted,
        },
        input_file_id=uploaded.remote.id,
        # The provider's clock, read from its own answer: it bounds later adoption searches.
        input_file_created_at=uploaded.remote.created_at or None,
        submit_token=None,
        base_url=provider.base_url,
        last_error=None,
    )
    crash_point("after_upload_recorded")
    return StepOutcome.CONTINUE


def upload_name(job: Row[Any], token: str) -> str:
    """The file name an upload carries: the job, its shard's digest, and the submit token."""
    return f"ledger-job{job.id}-{job.input_sha256[:16]}-{token}.jsonl"


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
