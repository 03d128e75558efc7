"""One chain of `ledger reconcile` processes, each killed (`kill -9` by the crash points) at the
next step boundary, then one that runs to the end: every crash point is hit in one shared setup
with 11 process starts instead of 20 (a process start, the SDK imports mostly, is the cost).

Each process is asserted killed, so each point was reached: at the start of process k no job is
past point k-1 (the first job to reach a point kills its process), so some job reaches point k.
After every restart the jobs' tags must show no second upload or batch (`check`), which is
stronger than looking only at the end."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from ledger.core.crashpoints import CRASH_POINTS
from support.drivers import reconcile_process

KILLED = 137


def crash_chain(
    db: Path,
    base_url: str,
    env: dict[str, str],
    *,
    points: Sequence[str] = CRASH_POINTS,
    check: Callable[[], None] = lambda: None,
    between: Callable[[str], None] = lambda point: None,
) -> list[subprocess.CompletedProcess[str]]:
    """Kill a reconciler at each of `points` in turn (calling `between(point)` after each
    and `check()` after every process), then run one to the end; every process's output."""
    runs = []
    for point in points:
        killed = reconcile_process(db, base_url, "-v", "--until-done", env=env, crash_at=point)
        assert killed.returncode == KILLED, f"{point} was not reached: {killed.stderr}"
        runs.append(killed)
        check()
        between(point)
    last = reconcile_process(db, base_url, "-v", "--until-done", env=env)
    assert last.returncode == 0, last.stderr
    runs.append(last)
    check()
    return runs
