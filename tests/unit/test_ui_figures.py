"""The dashboard's figures for a run: progress parts, pace, ETA; durations as people say them."""

from __future__ import annotations

from typing import Any

import pytest

from ledger.ui.app import duration
from ledger.ui.queries import RunSummary


def summary(**fields: Any) -> RunSummary:
    """A run of 100 requests created at t=1000 and looked at at t=1600, with `fields` set."""
    settings: dict[str, Any] = {"total": 100, "created_at": 1000.0, "now": 1600.0, **fields}
    return RunSummary(1, "r", "openai", "/v1/responses", "gpt-4o-mini", **settings)


def test_progress_counts_results_and_what_the_provider_already_finished() -> None:
    """Recorded outcomes, then requests done at the provider but not downloaded, then pending:
    the parts add up to the run."""
    run = summary(
        job_states={"normalized": 1, "in_progress": 1},
        statuses={"succeeded": 30, "failed": 10},
        at_provider=20,
        started_at=1000.0,
    )
    assert run.done == 60 and run.pending == 40 and run.live
    parts = run.segments()
    assert [(name, count) for name, count, _ in parts] == [
        ("succeeded", 30),
        ("failed", 10),
        ("provider", 20),
        ("pending", 40),
    ]
    assert sum(percent for _, _, percent in parts) == pytest.approx(100.0)


def test_pace_and_eta_follow_the_requests_done_since_the_first_batch_was_sent() -> None:
    """60 done in 10 minutes is 6 a minute; 40 left at that pace is about 6.7 minutes."""
    run = summary(
        job_states={"in_progress": 1}, statuses={"succeeded": 60}, started_at=1000.0, now=1600.0
    )
    assert run.per_minute == pytest.approx(6.0)
    assert run.eta_seconds == pytest.approx(400.0)


def test_a_finished_run_has_no_eta_and_its_pace_stops_at_its_last_change() -> None:
    """Once every job is normalized, the clock stops at the last change, not at now."""
    run = summary(
        job_states={"normalized": 2},
        statuses={"succeeded": 100},
        started_at=1000.0,
        last_change_at=1100.0,
        now=9000.0,
    )
    assert not run.live and run.eta_seconds is None
    assert run.elapsed == pytest.approx(100.0) and run.per_minute == pytest.approx(60.0)


def test_a_run_nothing_has_finished_in_has_no_pace() -> None:
    """No request done yet: no pace and no ETA (rather than a division by zero)."""
    run = summary(job_states={"submitted": 1}, started_at=1000.0)
    assert run.per_minute is None and run.eta_seconds is None
    assert run.segments() == [("pending", 100, 100.0)]


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0.0123, "0.012 s"),
        (4.25, "4.2 s"),
        (42.4, "42 s"),
        (184, "3 min 4 s"),
        (3600, "1 h"),
        (7500, "2 h 5 min"),
        (97200, "1 d 3 h"),
        (None, ""),
    ],
)
def test_durations_read_the_way_people_say_them(seconds: float | None, shown: str) -> None:
    """Short ones with decimals, longer ones in the two largest units."""
    assert duration(seconds) == shown


def test_a_normalized_job_without_a_price_makes_the_cost_unknown_not_lower() -> None:
    """Like `ledger status`: the cost of a run with an unpriced normalized job is unknown."""
    assert summary(priced_usd=1.5).cost == 1.5
    assert summary(priced_usd=1.5, unpriced_jobs=1).cost is None
