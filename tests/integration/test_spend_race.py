"""Reconcilers in separate processes racing to create batches against one ledger (four on
PostgreSQL, two on SQLite) never pass a money cap or an enqueued-token limit together: the
emulator counts the batches created, and the ledger's reservations add up under the cap."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from support.factories import add_built_job

from ledger.core.models import Job, JobEvent

WORKER = textwrap.dedent(
    """
    import sys, time
    from ledger.config import load_config
    from ledger.core.db import open_ledger
    from ledger.core.states import State
    from ledger.reconcile.engine import ReconcileOptions, Reconciler
    from ledger.spend import BudgetSource
    url, base_url, config, start_at = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    options = ReconcileOptions(
        base_url=base_url, poll_min=1.0, poll_max=1.0, jitter=0, concurrency=2, claim_limit=3,
        states=(State.BUILT, State.UPLOADED), budget=BudgetSource(load_config(config)),
    )
    reconciler = Reconciler(open_ledger(url), options)
    while time.time() < start_at:  # line the workers up so their creates overlap
        time.sleep(0.001)
    engine = reconciler.engine
    untried = "SELECT count(*) FROM jobs WHERE state = 'built' OR "
    untried += "(state = 'uploaded' AND waiting_for IS NULL)"
    deadline = time.time() + 60
    while time.time() < deadline:  # until every job was sent or held
        reconciler.run_pass()
        with engine.connect() as connection:
            if not connection.exec_driver_sql(untried).scalar():
                break
        time.sleep(0.01)
    """
)

#: Each test job estimates 20 input tokens and as many output tokens: $0.20 at these prices.
PRICED = """
[models."gpt-4o-mini"]
input = 5000.0
output = 5000.0
"""


def race(engine: Engine, db_url: str, emulator: Any, tmp_path: Path, budget: str) -> list[Any]:
    """Twelve built jobs, then reconcilers in processes (4 on PostgreSQL, 2 on SQLite) that
    upload and create for a few seconds under `budget`; the jobs' rows afterwards."""
    config = tmp_path / "ledger.toml"
    config.write_text(PRICED + "\n[budget]\n" + budget, encoding="utf-8")
    for n in range(1, 13):
        add_built_job(engine, tmp_path, "r", [f"s{n}-a", f"s{n}-b"], shard_index=n)
    processes = 4 if engine.dialect.name == "postgresql" else 2
    start_at = time.time() + 2.0
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, db_url, emulator.base_url, str(config), str(start_at)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    for worker in workers:
        _, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err

    with engine.connect() as connection:
        # Every process took jobs to the create step (each upload is recorded by its process).
        uploaders = connection.execute(
            select(JobEvent.actor).distinct().where(JobEvent.to_state == "uploaded")
        ).all()
        assert len(uploaders) == processes, "the processes did not overlap"
        return list(connection.execute(select(Job.__table__).order_by(Job.id)))


@pytest.mark.timeout(120)
def test_racing_reconcilers_never_pass_a_daily_cap(
    engine: Engine, db_url: str, emulator: Any, api_key: str, tmp_path: Path
) -> None:
    """$1.10 a day at $0.20 a job: exactly five batches are created, whoever creates them."""
    rows = race(engine, db_url, emulator, tmp_path, "daily_usd = 1.10\n")
    assert emulator.stats()["batches"]["created"] == 5
    sent = [row for row in rows if row.batch_id is not None]
    assert len(sent) == 5
    assert sum(row.est_cost_usd for row in sent) <= 1.10
    waiting = [row.waiting_for for row in rows if row.batch_id is None]
    assert len(waiting) == 7 and all("daily budget" in (why or "") for why in waiting)


@pytest.mark.timeout(120)
def test_racing_reconcilers_share_one_enqueued_token_queue(
    engine: Engine, db_url: str, emulator: Any, api_key: str, tmp_path: Path
) -> None:
    """A queue of 50 tokens per (provider, account, model) at 20 tokens a job: two batches in
    flight at most, across every process."""
    rows = race(engine, db_url, emulator, tmp_path, 'enqueued_tokens = { "gpt-4o-mini" = 50 }\n')
    assert emulator.stats()["batches"]["created"] == 2
    in_queue = [row for row in rows if row.batch_id is not None]
    assert sum(row.est_input_tokens for row in in_queue) <= 50
    waiting = [row.waiting_for for row in rows if row.batch_id is None]
    assert len(waiting) == 10 and all("enqueued-token limit" in (why or "") for why in waiting)
