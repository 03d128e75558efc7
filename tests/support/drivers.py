"""Two ways tests drive the reconciler: in this process until nothing is left to do, or as a
real `ledger reconcile` process (which a test can tell to die at a crash point)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from ledger.reconcile.engine import ReconcileOptions, Reconciler

#: The `ledger` console script of the environment running the tests.
LEDGER = str(Path(sys.executable).parent / "ledger")


def reconcile_until_done(
    engine: Engine, base_url: str, seconds: float = 60, **options: Any
) -> None:
    """Reconcile passes, polling fast, until no job has a step left; fail after `seconds`."""
    settings = {"poll_min": 0.0, "poll_max": 0.05, "jitter": 0.0, "base_url": base_url}
    reconciler = Reconciler(engine, ReconcileOptions(**{**settings, **options}))
    deadline = time.monotonic() + seconds
    while reconciler.pending_jobs():
        assert time.monotonic() < deadline, "jobs did not finish in time"
        report = reconciler.run_pass()
        assert report.paused is None, report.paused
        time.sleep(0.01)


def reconcile_process(
    db: Path,
    base_url: str,
    *extra: str,
    env: dict[str, str],
    crash_at: str | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """`ledger reconcile` polling fast in a subprocess, with `env` added (keys), optionally
    told to die at `crash_at` (see ledger.core.crashpoints)."""
    environment = {**os.environ, **env}
    environment.pop("LEDGER_CRASH_AT", None)
    if crash_at:
        environment["LEDGER_CRASH_AT"] = crash_at
    command = [
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
        base_url,
        *extra,
    ]
    return subprocess.run(command, env=environment, capture_output=True, text=True, timeout=timeout)
