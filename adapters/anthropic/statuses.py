"""Anthropic's batch words in the ledger's: `processing_status` and request counts to a state,
and an SDK `MessageBatch` to the `BatchSnapshot` the reconciler reads."""

from __future__ import annotations

from datetime import datetime

from anthropic.types.messages import MessageBatch, MessageBatchRequestCounts

from adapters.base import BatchSnapshot, unknown_status
from adapters.http_guard import require_batch
from ledger.core.states import State

#: The synthetic output file of an ended batch is this prefix and the batch id.
RESULTS_ID_PREFIX = "results:"


def ledger_state(processing_status: str, counts: MessageBatchRequestCounts) -> State:
    """The ledger state of a Message Batch.

    `in_progress` and `canceling` are running batches. An `ended` batch is `cancelled` when any
    request was canceled, else `expired` when any expired (the 24 h window passed), else
    `completed` (per-request errors included). A status this adapter does not know yet is
    treated as running, so the job keeps being polled rather than being misfiled.
    """
    if processing_status in ("in_progress", "canceling"):
        return State.IN_PROGRESS
    if processing_status != "ended":
        return unknown_status("anthropic", processing_status)
    if counts.canceled:
        return State.CANCELLED
    if counts.expired:
        return State.EXPIRED
    return State.COMPLETED


def snapshot(batch: MessageBatch, *, input_file_id: str | None = None) -> BatchSnapshot:
    """The ledger's view of an SDK `MessageBatch`."""
    require_batch(batch, MessageBatch)
    counts = batch.request_counts
    ended = batch.processing_status == "ended"
    return BatchSnapshot(
        id=batch.id,
        state=ledger_state(batch.processing_status, counts),
        provider_status=batch.processing_status,
        input_file_id=input_file_id,
        created_at=epoch(batch.created_at),
        output_file_id=f"{RESULTS_ID_PREFIX}{batch.id}" if ended else None,
        requests_total=total_requests(counts),
        requests_completed=counts.succeeded,
        requests_failed=counts.errored,
    )


def total_requests(counts: MessageBatchRequestCounts) -> int:
    return counts.processing + counts.succeeded + counts.errored + counts.canceled + counts.expired


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())
