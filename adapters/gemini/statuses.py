"""Gemini's batch words in the ledger's: `JOB_STATE_*` to a state, and an SDK `BatchJob` to the
`BatchSnapshot` the reconciler reads. A batch not finished in 48 h ends `JOB_STATE_EXPIRED`.

The wire says `BATCH_STATE_*`; the SDK (google-genai 3.6, `_transformers.t_job_state`) renames
them `JOB_STATE_*`, and both spellings are read here. A Gemini Developer API batch is a
long-running operation whose `metadata` carries `displayName`, `state`, `createTime`, `model`
and, once it has any, `output.responsesFile` (the result file's name): `BatchJob.dest.file_name`.
"""

from __future__ import annotations

from datetime import datetime

from google.genai import types

from adapters.base import BatchError, BatchSnapshot, unknown_status
from adapters.http_guard import require_batch
from ledger.core.states import State

#: JOB_STATE_* (and the wire's BATCH_STATE_*) -> the ledger state. Source: google-genai 3.6.1
#: `types.JobState` and `_transformers.t_job_state`; the Batch Mode guide lists the same six.
STATES: dict[str, State] = {
    "JOB_STATE_PENDING": State.SUBMITTED,
    "JOB_STATE_QUEUED": State.SUBMITTED,
    "JOB_STATE_RUNNING": State.IN_PROGRESS,
    "JOB_STATE_SUCCEEDED": State.COMPLETED,
    "JOB_STATE_PARTIALLY_SUCCEEDED": State.COMPLETED,
    "JOB_STATE_FAILED": State.FAILED,
    "JOB_STATE_CANCELLING": State.IN_PROGRESS,
    "JOB_STATE_PAUSED": State.IN_PROGRESS,
    "JOB_STATE_UPDATING": State.IN_PROGRESS,
    "JOB_STATE_CANCELLED": State.CANCELLED,
    "JOB_STATE_EXPIRED": State.EXPIRED,
}
#: States after which the batch's results (if any) are final.
FINAL = frozenset(
    {
        "JOB_STATE_SUCCEEDED",
        "JOB_STATE_PARTIALLY_SUCCEEDED",
        "JOB_STATE_FAILED",
        "JOB_STATE_CANCELLED",
        "JOB_STATE_EXPIRED",
    }
)


def state_word(batch: types.BatchJob) -> str:
    """The batch's JOB_STATE_* word (a BATCH_STATE_* one renamed; "" when it has none)."""
    state = batch.state
    word = state.value if isinstance(state, types.JobState) else str(state or "")
    return word.replace("BATCH_STATE_", "JOB_STATE_", 1)


def ledger_state(word: str) -> State:
    """The ledger state of a JOB_STATE_* word; an unknown word counts as running."""
    state = STATES.get(word)
    return state if state is not None else unknown_status("gemini", word)


def snapshot(batch: types.BatchJob, *, input_file_id: str | None = None) -> BatchSnapshot:
    """The ledger's view of an SDK `BatchJob`. Its result file is offered as the output file
    once the batch is final; Gemini writes successes and per-request errors into one file."""
    require_batch(batch, types.BatchJob)
    word = state_word(batch)
    dest = batch.dest
    output = dest.file_name if dest is not None and word in FINAL else None
    if output is None and word in FINAL and dest is not None and dest.inlined_responses is not None:
        output = f"inline:{batch.name}"  # answers held by the batch (adapters.gemini.inline)
    errors: tuple[BatchError, ...] = ()
    if batch.error is not None:
        errors = (BatchError(str(batch.error.code or "error"), batch.error.message),)
    elif word == "JOB_STATE_FAILED":
        errors = (BatchError("batch_failed", "Gemini reported the batch failed"),)
    return BatchSnapshot(
        id=batch.name or "",
        state=ledger_state(word),
        provider_status=word,
        input_file_id=input_file_id,
        created_at=epoch(batch.create_time),
        output_file_id=output,
        metadata={"display_name": batch.display_name} if batch.display_name else {},
        errors=errors,
    )


def epoch(moment: datetime | None) -> int:
    return int(moment.timestamp()) if moment is not None else 0
