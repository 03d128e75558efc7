"""A batch status word the adapter does not know yet is recorded, with one warning, and the job
keeps being polled: never an exception on every poll."""

from __future__ import annotations

import logging

import pytest
from anthropic.types.messages import MessageBatchRequestCounts
from openai.types import Batch

from adapters.anthropic.batch import ledger_state
from adapters.openai.batch import snapshot
from ledger.core.states import State


def _batch(status: str) -> Batch:
    return Batch.model_construct(
        id="batch_1",
        object="batch",
        endpoint="/v1/chat/completions",
        completion_window="24h",
        created_at=1_700_000_000,
        input_file_id="file_1",
        status=status,
    )


def test_an_unknown_openai_status_is_in_progress_and_recorded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """`paused` (say) reads as in_progress, its word kept as the provider status, warned once."""
    with caplog.at_level(logging.WARNING, logger="ledger.adapters"):
        first = snapshot(_batch("paused_for_maintenance"))
        again = snapshot(_batch("paused_for_maintenance"))
    assert first.state == again.state == State.IN_PROGRESS
    assert first.provider_status == "paused_for_maintenance"
    warnings = [
        r.getMessage() for r in caplog.records if "paused_for_maintenance" in r.getMessage()
    ]
    assert len(warnings) == 1 and "unknown batch status" in warnings[0]


def test_known_openai_statuses_still_map_as_before() -> None:
    """The documented words keep their states (validating is submitted, finalizing running)."""
    assert snapshot(_batch("validating")).state == State.SUBMITTED
    assert snapshot(_batch("finalizing")).state == State.IN_PROGRESS
    assert snapshot(_batch("completed")).state == State.COMPLETED


def test_an_unknown_anthropic_status_is_in_progress_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A processing_status other than in_progress, canceling or ended is running, warned once."""
    counts = MessageBatchRequestCounts(canceled=0, errored=0, expired=0, processing=1, succeeded=0)
    with caplog.at_level(logging.WARNING, logger="ledger.adapters"):
        assert ledger_state("archiving_soon", counts) == State.IN_PROGRESS
        assert ledger_state("archiving_soon", counts) == State.IN_PROGRESS
        assert ledger_state("canceling", counts) == State.IN_PROGRESS
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1 and "archiving_soon" in messages[0]
