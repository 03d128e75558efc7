"""Mistral's batch words in the ledger's: a job's `status` to a state, and an SDK `BatchJob` to
the `BatchSnapshot` the reconciler reads.

Sources: `mistralai/client/models/batchjobstatus.py` and `batchjob.py` (mistralai 3.7.0, the
installed SDK); the project's provider facts (/work/shared/provider-facts.md).
"""

from __future__ import annotations

from mistralai.client.models import BatchJob

from adapters.base import BatchError, BatchSnapshot, unknown_status
from adapters.http_guard import require_batch
from ledger.core.states import State

#: Mistral status -> ledger state. `CANCELLATION_REQUESTED` is a running job that was asked to
#: stop; `TIMEOUT_EXCEEDED` is a job whose `timeout_hours` passed: the ledger's `expired`.
STATUS_TO_STATE: dict[str, State] = {
    "QUEUED": State.SUBMITTED,
    "RUNNING": State.IN_PROGRESS,
    "CANCELLATION_REQUESTED": State.IN_PROGRESS,
    "SUCCESS": State.COMPLETED,
    "FAILED": State.FAILED,
    "TIMEOUT_EXCEEDED": State.EXPIRED,
    "CANCELLED": State.CANCELLED,
}

#: The statuses a job never leaves.
FINAL_STATUSES = frozenset({"SUCCESS", "FAILED", "TIMEOUT_EXCEEDED", "CANCELLED"})


def ledger_state(status: str) -> State:
    """The ledger state of a Mistral batch job's status; an unknown word is still running."""
    state = STATUS_TO_STATE.get(status)
    return state if state is not None else unknown_status("mistral", status)


def snapshot(job: BatchJob) -> BatchSnapshot:
    """The ledger's view of an SDK `BatchJob` (one input file per job: the ledger's shard)."""
    require_batch(job, BatchJob)
    word = str(job.status)
    errors = tuple(
        BatchError(code=None, message=e.message + (f" (x{e.count})" if (e.count or 1) > 1 else ""))
        for e in job.errors
    )
    metadata = job.metadata if isinstance(job.metadata, dict) else {}
    return BatchSnapshot(
        id=job.id,
        state=ledger_state(word),
        provider_status=word,
        input_file_id=job.input_files[0] if job.input_files else None,
        created_at=job.created_at,
        output_file_id=_optional(job.output_file),
        error_file_id=_optional(job.error_file),
        requests_total=job.total_requests,
        requests_completed=job.succeeded_requests,
        requests_failed=job.failed_requests,
        errors=errors,
        metadata={str(k): str(v) for k, v in metadata.items()},
    )


def _optional(value: object) -> str | None:
    # The SDK leaves an absent field as its UNSET sentinel rather than None.
    return value if isinstance(value, str) and value else None
