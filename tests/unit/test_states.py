"""The transition table, enforced where jobs are stored: every (state, state) pair is tried."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from support.factories import add_jobs, add_run

from ledger.core import states as states_module
from ledger.core.models import Job, JobEvent
from ledger.core.states import TRANSITIONS, IllegalTransition, State, check_transition, is_allowed
from ledger.core.store import advance, claim

# The lifecycle as the issue specifies it, written out independently of ledger.core.states.
EXPECTED_EDGES = {
    ("built", "uploaded"),
    ("built", "failed"),
    ("built", "cancelled"),
    ("uploaded", "submitted"),
    ("uploaded", "failed"),
    ("uploaded", "cancelled"),
    ("submitted", "in_progress"),
    ("submitted", "completed"),
    ("submitted", "failed"),
    ("submitted", "expired"),
    ("submitted", "cancelled"),
    ("in_progress", "completed"),
    ("in_progress", "failed"),
    ("in_progress", "expired"),
    ("in_progress", "cancelled"),
    ("failed", "uploaded"),
    ("failed", "downloaded"),
    ("completed", "downloaded"),
    ("expired", "downloaded"),
    ("cancelled", "downloaded"),
    ("downloaded", "normalized"),
}

ALL_PAIRS = list(itertools.product(list(State), repeat=2))


def test_every_state_is_in_the_table_and_documented() -> None:
    """Each state has a row in the table and a `#:` comment just above its definition."""
    assert set(TRANSITIONS) == set(State)
    lines = [line.strip() for line in Path(states_module.__file__).read_text().splitlines()]
    for state in State:
        definition = lines.index(f'{state.name} = "{state.value}"')
        assert lines[definition - 1].startswith("#: "), state


def test_table_matches_the_specified_lifecycle() -> None:
    """The table holds exactly the specified edges."""
    table_edges = {(a.value, b.value) for a, targets in TRANSITIONS.items() for b in targets}
    assert table_edges == EXPECTED_EDGES


@pytest.mark.parametrize(("from_state", "to_state"), ALL_PAIRS, ids=lambda s: s.value)
def test_check_transition_for_every_pair(from_state: State, to_state: State) -> None:
    """`check_transition` allows a pair exactly when the table lists it."""
    expected = (from_state.value, to_state.value) in EXPECTED_EDGES
    assert is_allowed(from_state, to_state) is expected
    if expected:
        check_transition(from_state, to_state)
    else:
        with pytest.raises(IllegalTransition, match=f"{from_state} -> {to_state}"):
            check_transition(from_state, to_state)


def test_advance_obeys_the_table_for_every_pair_in_the_database(engine: Engine) -> None:
    """For each of the 100 pairs, a guarded advance succeeds exactly when the table allows it."""
    run_id = add_run(engine)
    job_ids = add_jobs(engine, run_id, len(ALL_PAIRS))
    with engine.begin() as connection:
        for job_id, (from_state, _) in zip(job_ids, ALL_PAIRS, strict=True):
            connection.execute(update(Job).where(Job.id == job_id).values(state=from_state.value))
        leases = claim(connection, "tester", states=list(State), limit=len(job_ids))
    assert [lease.job_id for lease in leases] == job_ids
    for lease, (from_state, to_state) in zip(leases, ALL_PAIRS, strict=True):
        allowed = (from_state.value, to_state.value) in EXPECTED_EDGES
        with engine.begin() as connection:
            if allowed:
                advance(connection, lease, from_state, to_state, detail={"pair": "x"})
            else:
                with pytest.raises(IllegalTransition):
                    advance(connection, lease, from_state, to_state)
        with engine.connect() as connection:
            state = connection.execute(select(Job.state).where(Job.id == lease.job_id)).scalar()
            moves = connection.execute(
                select(JobEvent.from_state, JobEvent.to_state).where(
                    JobEvent.job_id == lease.job_id, JobEvent.from_state.is_not(None)
                )
            ).all()
        assert state == (to_state if allowed else from_state).value
        assert moves == ([(from_state.value, to_state.value)] if allowed else [])
