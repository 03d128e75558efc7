"""What `ledger reconcile` shows while it works: a live line on a terminal, plain lines
otherwise (logs, CI), both from the same counts."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import TextIO

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from ledger.core.models import Job, Run
from ledger.core.states import State
from ledger.reconcile.engine import PassReport


def state_counts(engine: Engine, run_name: str | None = None) -> dict[str, int]:
    """Jobs per state, in lifecycle order, only the states that have jobs."""
    query = select(Job.state, func.count()).group_by(Job.state)
    if run_name is not None:
        query = query.join(Run, Run.id == Job.run_id).where(Run.name == run_name)
    with engine.connect() as connection:
        counts = {state: n for state, n in connection.execute(query).all()}
    return {s.value: counts[s.value] for s in State if counts.get(s.value)}


class ProgressDisplay:
    """Prints transitions and pass summaries; redraws one line in place on a terminal."""

    def __init__(self, engine: Engine, run_name: str | None, stream: TextIO | None = None):
        self.engine = engine
        self.run_name = run_name
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty()
        self._lock = threading.Lock()
        self._passes = 0

    def on_transition(self, job_id: int, from_state: State, to_state: State) -> None:
        if not self.live:
            self._write(f"job {job_id}: {from_state} -> {to_state}\n")

    def on_pass(self, report: PassReport) -> None:
        self._passes += 1
        counts = state_counts(self.engine, self.run_name)
        summary = ", ".join(f"{n} {s}" for s, n in counts.items()) or "no jobs"
        if self.live:
            self._write(f"\r\x1b[2Kpass {self._passes}: {summary}")
        elif report.transitions or report.errors:
            self._write(f"pass {self._passes}: {summary}\n")

    def close(self) -> None:
        if self.live:
            self._write("\n")

    def _write(self, text: str) -> None:
        with self._lock:
            self.stream.write(text)
            self.stream.flush()


def install_stop_signals(stop: Callable[[], None]) -> None:
    """SIGINT and SIGTERM finish the current step, release leases and stop the loop."""
    import signal

    def handler(signum: int, _frame: object) -> None:
        stop()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
