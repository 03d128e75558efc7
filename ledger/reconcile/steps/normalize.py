"""downloaded -> normalized: one result line and one requests row per input request (the work is
ledger.results.normalize's; this step only drives it under the job's lease)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Row

from ledger.core.crashpoints import crash_point
from ledger.core.states import State
from ledger.core.store import Lease
from ledger.reconcile.context import StepContext, StepOutcome


def normalize(context: StepContext, lease: Lease, job: Row[Any]) -> StepOutcome:
    """downloaded -> normalized: one result line and one requests row per input request."""
    from ledger.results.normalize import normalize_job

    normalize_job(
        context.engine, lease, job.id, before_record=lambda: crash_point("after_normalize")
    )
    context.count(lease.job_id, State.DOWNLOADED, State.NORMALIZED)
    context.release(lease)
    return StepOutcome.DONE
