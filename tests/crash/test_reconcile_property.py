"""Property: whatever the provider answers, whatever fails and wherever the reconciler dies,
each job gets one batch per submit token, only legal transitions are recorded, and every job
ends normalized."""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from support.factories import add_built_job

from adapters.base import OutcomeUnknown, TransientError
from adapters.fake import OUTCOMES, FakeProvider
from ledger.core.crashpoints import CRASH_POINTS, set_crash_hook
from ledger.core.db import open_ledger
from ledger.core.models import Job, JobEvent
from ledger.core.states import State, is_allowed
from ledger.reconcile.engine import ReconcileOptions, Reconciler

# The side-effecting calls come twice: their lost replies are where duplicates are born.
METHODS = (
    "upload_input",
    "upload_input",
    "create_batch",
    "create_batch",
    "find_uploads",
    "find_batches",
    "get_batch",
    "download_file",
)


class SimulatedCrash(BaseException):
    """Stands for SIGKILL: escapes every handler, leaves leases and half-done work behind."""


fault = st.tuples(
    st.sampled_from(METHODS), st.sampled_from(["transient", "unknown"]), st.booleans()
)
step = st.one_of(
    st.tuples(st.just("fault"), fault),
    st.tuples(st.just("crash"), st.sampled_from(CRASH_POINTS)),
    st.tuples(st.just("pass"), st.none()),
)


def check_invariants(engine: Engine, provider: FakeProvider) -> None:
    per_token = Counter(
        (b.metadata["ledger_job"], b.metadata["ledger_token"]) for b in provider.batches.values()
    )
    assert all(n == 1 for n in per_token.values()), f"duplicate batch: {per_token}"
    with engine.connect() as connection:
        events = connection.execute(select(JobEvent.from_state, JobEvent.to_state)).all()
    for from_state, to_state in events:
        if from_state is None:
            assert to_state == "built"
        else:
            assert is_allowed(from_state, to_state), (from_state, to_state)


def restart(engine: Engine, provider: FakeProvider, generation: int) -> Reconciler:
    """A new reconciler process: the old one's leases have lapsed."""
    with engine.begin() as connection:
        connection.execute(update(Job).values(lease_expires_at=0.0))
    return Reconciler(
        engine,
        ReconcileOptions(poll_min=0, poll_max=0, jitter=0, concurrency=1),
        provider_for=lambda _n, _u: provider,
        owner=f"test-reconciler-{generation}",
    )


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    outcomes=st.lists(st.sampled_from(OUTCOMES), min_size=1, max_size=3),
    steps=st.lists(step, max_size=12),
)
def test_reconciler_invariants_hold_under_faults_and_crashes(
    outcomes: list[str], steps: list[tuple[str, object]]
) -> None:
    """Random outcomes, faults and crashes: one batch per token, legal moves, all normalized."""
    with tempfile.TemporaryDirectory() as directory:
        workdir = Path(directory)
        engine = open_ledger(workdir / "ledger.db")
        provider = FakeProvider(default_polls=1)
        for outcome in outcomes:
            provider.plan(outcome, polls=1)
        job_ids = [
            add_built_job(engine, workdir, "r", [f"j{i}-a", f"j{i}-b"], shard_index=i)
            for i in range(1, len(outcomes) + 1)
        ]
        generation = 0
        reconciler = restart(engine, provider, generation)
        try:
            for kind, argument in steps:
                if kind == "fault":
                    method, flavour, after = argument  # type: ignore[misc]
                    error = OutcomeUnknown if flavour == "unknown" else TransientError
                    provider.fail_next(method, lambda e=error: e("injected"), after_effect=after)
                    continue
                if kind == "crash":

                    def crash_at(point: str, target: object = argument) -> None:
                        if point == target:
                            raise SimulatedCrash(point)

                    set_crash_hook(crash_at)
                try:
                    reconciler.run_pass()
                except SimulatedCrash:
                    generation += 1
                    reconciler = restart(engine, provider, generation)
                finally:
                    set_crash_hook(None)
                check_invariants(engine, provider)
            for _ in range(40):
                reconciler.run_pass()
                check_invariants(engine, provider)
                if reconciler.pending_jobs() == 0:
                    break
            with engine.connect() as connection:
                states = connection.execute(select(Job.state).where(Job.id.in_(job_ids))).all()
            assert {s for (s,) in states} == {State.NORMALIZED.value}
        finally:
            set_crash_hook(None)
            engine.dispose()
