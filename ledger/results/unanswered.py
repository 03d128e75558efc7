"""What a request no provider line answered ends as: read from how its job's batch ended.

- The batch failed as a whole (the provider rejected it): every unanswered request is `failed`
  with the batch's error.
- The batch ended cancelled or expired and left no result file at all (cancelled while
  validating, or before it was ever sent): none of its requests ran, so each is `cancelled` or
  `expired`.
- The batch's result files were gone when fetched (expired or archived, past the grace of
  `ledger.reconcile.steps.download`): the request is `unavailable`, with the reason.
- Otherwise the provider should have answered: the request is `missing` (and retryable).

`docs/results.md` gives these rules to users.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from ledger.core.models import JobEvent
from ledger.core.states import PROVIDER_FINAL, State
from ledger.results.schema import CANCELLED, EXPIRED, FAILED, MISSING, UNAVAILABLE

#: The error of a request no provider line answered, in a batch that did not fail as a whole.
MISSING_ERROR: dict[str, str | None] = {
    "code": "missing_result",
    "message": "the provider returned no line for this request in its output or error file",
}

#: The status and error of every request of a batch that ended cancelled or expired with no
#: result file at all: none of its requests ran. When the provider did write files, a request
#: without a line stays `missing`.
NOT_RUN_ERRORS: dict[str, tuple[str, dict[str, str | None]]] = {
    State.CANCELLED.value: (
        CANCELLED,
        {"code": "batch_cancelled", "message": "the batch was cancelled before this request ran"},
    ),
    State.EXPIRED.value: (
        EXPIRED,
        {"code": "batch_expired", "message": "the batch expired before this request ran"},
    ),
}


@dataclass(frozen=True)
class BatchEnd:
    """How a job's batch ended, as far as its unanswered requests are concerned."""

    #: Set when the batch failed as a whole: every unanswered request fails with this error.
    failure: dict[str, str | None] | None
    #: The provider-final state of a batch that left no result file at all (else None).
    ended_without_files: str | None
    #: Why result files were gone when fetched, when some were: kind -> reason.
    gone: dict[str, str] | None = None

    def unanswered(self) -> tuple[str, dict[str, str | None]]:
        """The status and error of a request no line answered."""
        if self.failure is not None:
            return FAILED, self.failure
        if self.gone:
            return UNAVAILABLE, {
                "code": "result_file_unavailable",
                "message": "; ".join(self.gone.values()),
            }
        if self.ended_without_files in NOT_RUN_ERRORS:
            return NOT_RUN_ERRORS[self.ended_without_files]
        return MISSING, MISSING_ERROR


def batch_end(connection: Connection, job: Any) -> BatchEnd:
    """How the batch of `job` (a `jobs` row) ended."""
    # The last event into a provider-final state says how the batch ended (a batch retried after
    # `token_limit_exceeded` failed once, then ended otherwise).
    event = connection.execute(
        select(JobEvent.to_state, JobEvent.detail)
        .where(JobEvent.job_id == job.id, JobEvent.to_state.in_([s.value for s in PROVIDER_FINAL]))
        .order_by(JobEvent.id.desc())
        .limit(1)
    ).first()
    final = event.to_state if event is not None else job.provider_status
    failure = None
    if final == State.FAILED.value:
        failure = batch_error(event.detail if event is not None else None, job.last_error)
    has_files = bool(job.output_path or job.error_path)
    downloaded = connection.execute(
        select(JobEvent.detail)
        .where(JobEvent.job_id == job.id, JobEvent.to_state == State.DOWNLOADED.value)
        .order_by(JobEvent.id.desc())
        .limit(1)
    ).scalar()
    gone = downloaded.get("gone") if isinstance(downloaded, dict) else None
    return BatchEnd(
        failure=failure,
        ended_without_files=None if has_files or gone else final,
        gone=gone if isinstance(gone, dict) and gone else None,
    )


def batch_error(detail: Any, last_error: str | None) -> dict[str, str | None]:
    """The error given to every request of a batch the provider rejected as a whole.

    Read from the failure event's detail (`errors`, as the Batch object's `{data: [{code,
    message, line}]}` or a plain list, or an `error`), else from the job's `last_error`.
    """
    entries: list[dict[str, Any]] = []
    if isinstance(detail, dict):
        errors = detail.get("errors")
        if isinstance(errors, dict):
            errors = errors.get("data")
        if isinstance(errors, list):
            entries = [entry for entry in errors if isinstance(entry, dict)]
        elif isinstance(detail.get("error"), dict):
            entries = [detail["error"]]
        elif isinstance(detail.get("error"), str) and not last_error:
            last_error = detail["error"]
    if entries:
        parts = []
        for entry in entries[:10]:
            where = f"line {entry['line']}: " if entry.get("line") is not None else ""
            parts.append(f"{where}{entry.get('message') or entry.get('code')}")
        code = next((str(e["code"]) for e in entries if e.get("code")), "batch_failed")
        return {"code": code, "message": "; ".join(parts)}
    return {
        "code": "batch_failed",
        "message": last_error or "the provider rejected the batch as a whole",
    }
