"""Real processes claiming the same due jobs at once: each job is claimed exactly once."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from support.factories import add_jobs, add_run

from ledger.core.models import JobEvent

WORKER = textwrap.dedent(
    """
    import json, sys, time
    from ledger.core.db import open_ledger
    from ledger.core.states import State
    from ledger.core.owner import process_owner
    from ledger.core.store import advance, claim
    url, start_at = sys.argv[1], float(sys.argv[2])
    engine = open_ledger(url)
    owner = process_owner()
    while time.time() < start_at:  # line the workers up so their claims overlap
        time.sleep(0.001)
    claimed = []
    while True:
        with engine.begin() as connection:
            leases = claim(connection, owner, states=[State.BUILT], limit=3)
        if not leases:
            break
        for lease in leases:
            time.sleep(0.005)  # the provider call a reconciler makes between claim and advance
            with engine.begin() as connection:
                advance(connection, lease, State.BUILT, State.UPLOADED)
            claimed.append(lease.job_id)
    print(json.dumps(claimed))
    """
)


def test_concurrent_claims_take_each_job_once(engine: Engine, db_url: str) -> None:
    """Four processes race over 120 due jobs; every job is claimed and advanced exactly once."""
    job_ids = add_jobs(engine, add_run(engine), 120)
    start_at = time.time() + 2.0
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, db_url, str(start_at)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    claimed: list[list[int]] = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        claimed.append(json.loads(out))
    everything = [job_id for ids in claimed for job_id in ids]
    assert sorted(everything) == job_ids
    assert sum(1 for ids in claimed if ids) >= 2, "the workers did not overlap"
    with engine.connect() as connection:
        moves = connection.execute(
            select(func.count()).select_from(JobEvent).where(JobEvent.to_state == "uploaded")
        ).scalar_one()
    assert moves == len(job_ids)
