"""Reconcilers in separate PID namespaces on one host (containers with the host's network, or
Kubernetes `hostNetwork`) share a host name but not their pids: neither may judge the other's live
lease dead and re-send a create that is still in flight."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from support.drivers import LEDGER
from support.factories import add_built_job

from ledger.core.db import open_ledger
from ledger.core.models import Job


def own_pid_namespace(*command: str) -> list[str]:
    """`command` as PID 1 of a new PID namespace, with its own /proc."""
    return ["unshare", "--pid", "--fork", "--mount-proc", *command]


def pid_namespaces_available() -> str | None:
    """Why this machine cannot make PID namespaces, or None when it can."""
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not installed"
    probe = subprocess.run(own_pid_namespace("true"), capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot create a PID namespace here ({probe.stderr.strip() or 'not root'})"
    return None


def test_a_live_lease_in_another_pid_namespace_is_not_taken_over(
    tmp_path: Path, emulator: Any
) -> None:
    """Creates slowed to 3 s: a second reconciler in another PID namespace leaves the first one's
    in-flight creates alone; exactly one batch per job at the provider."""
    reason = pid_namespaces_available()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the PID namespace test: {reason}")
        pytest.skip(reason)
    db = tmp_path / "ledger.db"
    engine = open_ledger(db)
    job_ids = [
        add_built_job(engine, tmp_path, "ns", [f"n{s}-{i}" for i in range(2)], shard_index=s)
        for s in range(1, 5)
    ]
    emulator.configure(faults=[{"kind": "latency", "route": "create_batch", "seconds": 3.0}])
    env = {**os.environ, "OPENAI_API_KEY": "sk-test-pidns"}
    env.pop("LEDGER_CRASH_AT", None)
    reconcile = [
        LEDGER,
        "--db",
        str(db),
        "reconcile",
        "--poll-min",
        "0",
        "--poll-max",
        "0.05",
        "--interval",
        "0.05",
        "--base-url",
        emulator.base_url,
    ]
    first = subprocess.Popen(
        own_pid_namespace(*reconcile, "--until-done"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Wait until every job's create is in flight: intent recorded, no batch id yet.
        deadline = time.monotonic() + 20
        while True:
            with engine.connect() as connection:
                in_flight = connection.execute(
                    select(func.count())
                    .select_from(Job)
                    .where(Job.submit_token.is_not(None), Job.batch_id.is_(None))
                ).scalar_one()
            if in_flight == len(job_ids):
                break
            assert time.monotonic() < deadline, "the first reconciler never started its creates"
            assert first.poll() is None, first.communicate()
            time.sleep(0.05)
        second = subprocess.run(
            own_pid_namespace(*reconcile), env=env, capture_output=True, text=True, timeout=60
        )
        assert second.returncode == 0, second.stderr
        _, err = first.communicate(timeout=90)
        assert first.returncode == 0, err
    finally:
        if first.poll() is None:
            first.kill()
    stats = emulator.stats()
    assert stats["batches"]["by_metadata"]["ledger_job"] == {str(j): 1 for j in job_ids}
    with engine.connect() as connection:
        states = set(connection.execute(select(Job.state)).scalars())
    assert states == {"normalized"}
