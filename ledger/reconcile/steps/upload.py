"""built -> uploaded: the shard, verified against its recorded sha256 (`shard_source`), goes to
the provider under a file name carrying the job's token."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.engine import Row

from adapters.base import RemoteFile
from ledger.core.crashpoints import crash_point
from ledger.core.states import State
from ledger.core.store import Lease, update_leased
from ledger.reconcile.adopt import adopt_or_act
from ledger.reconcile.context import StepContext, StepOutcome
from ledger.reconcile.shard_source import verified_shard

log = logging.getLogger("ledger.reconcile")


def upload(context: StepContext, lease: Lease, job: Row[Any]) -> StepOutcome:
    """built -> uploaded: upload the shard under a name carrying the job's token."""
    provider = context.provider(job)
    # The shard is sent only as recorded: verified against its sha256 (or rebuilt), else the
    # job waits with the reason (an ArtifactError, kept in last_error by the engine).
    with verified_shard(context.engine, job) as shard:

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
            act=lambda token: provider.upload_input(shard.path, filename=upload_name(job, token)),
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
        **({"input_ref": shard.new_ref} if shard.new_ref else {}),
    )
    crash_point("after_upload_recorded")
    return StepOutcome.CONTINUE


def upload_name(job: Row[Any], token: str) -> str:
    """The file name an upload carries: the job, its shard's digest, and the submit token."""
    return f"ledger-job{job.id}-{job.input_sha256[:16]}-{token}.jsonl"
