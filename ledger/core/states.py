"""Job states and the one table of transitions that says which changes are legal.

Every writer (the reconciler, `ledger cancel`, the fake store in tests) asks `check_transition`
before touching a row, and the guarded update in `ledger.core.store.advance` is the only way a row's
state changes.
"""

from __future__ import annotations

from enum import StrEnum

from ledger.errors import StorageError


class State(StrEnum):
    """Where one provider batch (a job) stands."""

    #: The shard's input file is written locally and the job is recorded; nothing was sent.
    BUILT = "built"
    #: The input file is uploaded to the provider (`input_file_id` is known); no batch yet.
    UPLOADED = "uploaded"
    #: The provider accepted the batch (`batch_id` is known) and is validating it.
    SUBMITTED = "submitted"
    #: The provider is running the requests (or writing their results).
    IN_PROGRESS = "in_progress"
    #: The batch finished; output and/or error files are waiting to be downloaded.
    COMPLETED = "completed"
    #: The provider rejected the batch as a whole (validation, or a refused upload/create).
    FAILED = "failed"
    #: The 24 h window passed; the requests that finished have results, the rest do not.
    EXPIRED = "expired"
    #: The batch (or the job, before it reached the provider) was cancelled.
    CANCELLED = "cancelled"
    #: Output and error files are on local disk, complete and verified.
    DOWNLOADED = "downloaded"
    #: Every input request has exactly one normalized result line and a `requests` row.
    NORMALIZED = "normalized"


#: The one table of legal transitions: state -> states it may move to.
TRANSITIONS: dict[State, frozenset[State]] = {
    # built/uploaded -> failed: the provider refused the upload or the create itself (400).
    State.BUILT: frozenset({State.UPLOADED, State.FAILED, State.CANCELLED}),
    State.UPLOADED: frozenset({State.SUBMITTED, State.FAILED, State.CANCELLED}),
    State.SUBMITTED: frozenset(
        {State.IN_PROGRESS, State.COMPLETED, State.FAILED, State.EXPIRED, State.CANCELLED}
    ),
    State.IN_PROGRESS: frozenset({State.COMPLETED, State.FAILED, State.EXPIRED, State.CANCELLED}),
    # A retryable failure (the provider's enqueued-token limit) goes back to `uploaded` to be
    # created again with a new submit token; any other failure is recorded per request.
    State.FAILED: frozenset({State.UPLOADED, State.DOWNLOADED}),
    State.COMPLETED: frozenset({State.DOWNLOADED}),
    State.EXPIRED: frozenset({State.DOWNLOADED}),
    State.CANCELLED: frozenset({State.DOWNLOADED}),
    State.DOWNLOADED: frozenset({State.NORMALIZED}),
    State.NORMALIZED: frozenset(),
}

#: States the provider reports as final for a batch.
PROVIDER_FINAL: frozenset[State] = frozenset(
    {State.COMPLETED, State.FAILED, State.EXPIRED, State.CANCELLED}
)

#: States in which the provider holds a live batch for the job.
IN_FLIGHT: frozenset[State] = frozenset({State.SUBMITTED, State.IN_PROGRESS})

#: States with no outgoing transition the reconciler takes on its own.
TERMINAL: frozenset[State] = frozenset({State.NORMALIZED})


class IllegalTransition(StorageError, ValueError):
    """A state change the transition table does not allow."""


def is_allowed(from_state: State | str, to_state: State | str) -> bool:
    """Whether the table allows moving from `from_state` to `to_state`."""
    return State(to_state) in TRANSITIONS[State(from_state)]


def check_transition(from_state: State | str, to_state: State | str) -> None:
    """Raise `IllegalTransition` unless the table allows the change."""
    if not is_allowed(from_state, to_state):
        allowed = ", ".join(sorted(TRANSITIONS[State(from_state)])) or "nothing"
        raise IllegalTransition(
            f"illegal transition {from_state} -> {to_state} (from {from_state}: {allowed})"
        )
