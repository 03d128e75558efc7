"""The progress of `ledger reconcile`: on a terminal a live `rich` table of the runs being worked
(bars of requests and jobs, state counts, cost, ETA) redrawn while a pass runs; otherwise plain
lines, one per run after each pass that changed something. Both read the same figures.

`rich` is imported only when the live table starts, so `ledger` starts without it.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from ledger.console.status import RunProgress, cost, counts, run_progress

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from ledger.core.states import State
    from ledger.reconcile.engine import PassReport

#: Job states in lifecycle order, for the state counts (ledger.core.states.State).
STATE_ORDER = (
    "built",
    "uploaded",
    "submitted",
    "in_progress",
    "completed",
    "failed",
    "expired",
    "cancelled",
    "downloaded",
    "normalized",
)


def state_counts(engine: Engine, run_name: str | None = None) -> dict[str, int]:
    """Jobs per state, in lifecycle order, only the states that have jobs."""
    from sqlalchemy import func, select

    from ledger.core.models import Job, Run

    query = select(Job.state, func.count()).group_by(Job.state)
    if run_name is not None:
        query = query.join(Run, Run.id == Job.run_id).where(Run.name == run_name)
    with engine.connect() as connection:
        found = {state: n for state, n in connection.execute(query).all()}
    return {s: found[s] for s in STATE_ORDER if found.get(s)}


class RunWatch:
    """The runs a reconciler works on, as it sees them: those with a job left to step, and those
    that had one since watching began (so a run that just ended still shows, complete). Reads
    the ledger at most every `min_interval` seconds, however often it is asked."""

    def __init__(
        self,
        engine: Engine,
        run_name: str | None,
        *,
        min_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.run_name = run_name
        self.min_interval = min_interval
        self.clock = clock
        self._lock = threading.Lock()
        self._read_at: float | None = None
        self._runs: list[RunProgress] = []
        self._watched: set[str] = set()
        #: Per run, the first (time, requests done) seen: the ETA's starting point.
        self._first: dict[str, tuple[float, int]] = {}

    def runs(self, *, fresh: bool = False) -> list[RunProgress]:
        """The watched runs, read again when `fresh` or older than `min_interval`."""
        from ledger.query.report import status_report

        with self._lock:
            now = self.clock()
            if fresh or self._read_at is None or now - self._read_at >= self.min_interval:
                report = [run_progress(run) for run in status_report(self.engine, self.run_name)]
                self._watched.update(run.name for run in report if not run.ended)
                self._runs = [run for run in report if run.name in self._watched]
                for run in self._runs:
                    self._first.setdefault(run.name, (now, run.done))
                self._read_at = now
            return list(self._runs)

    def eta(self, run: RunProgress) -> float | None:
        """Seconds left at the pace seen since watching began; None before any progress."""
        if run.ended:
            return 0.0
        since, done_then = self._first.get(run.name, (0.0, run.done))
        if run.done <= done_then or self._read_at is None:
            return None
        rate = (run.done - done_then) / max(self._read_at - since, 1e-9)
        return (run.requests - run.done) / rate


def duration(seconds: float | None) -> str:
    """`45s`, `12m`, `3h05m`; `?` when not known yet."""
    if seconds is None:
        return "?"
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


def plain_line(run: RunProgress, eta: float | None) -> str:
    """One run's progress as a plain line."""
    line = (
        f"{run.name}: requests {run.done}/{run.requests}, jobs {run.jobs_done}/{run.jobs} "
        f"({counts(run.job_states, STATE_ORDER)}), cost {cost(run.cost_usd)}"
    )
    return line if eta is None else f"{line}, eta {duration(eta)}"


class ProgressDisplay:
    """Plain lines: each transition, then after a pass that changed something one line per run."""

    def __init__(
        self, engine: Engine, run_name: str | None, stream: TextIO | None = None, **watch: Any
    ) -> None:
        self.stream = stream or sys.stdout
        self.watch = RunWatch(engine, run_name, **watch)
        self._lock = threading.Lock()
        self._passes = 0

    def start(self) -> None:
        """Note the runs with work left, so each shows from the first pass."""
        self.watch.runs(fresh=True)

    def on_transition(self, job_id: int, from_state: State, to_state: State) -> None:
        self._write(f"job {job_id}: {from_state} -> {to_state}\n")

    def on_pass(self, report: PassReport) -> None:
        self._passes += 1
        if not (report.transitions or report.errors):
            return
        for run in self.watch.runs(fresh=True):
            self._write(f"pass {self._passes}: {plain_line(run, self.watch.eta(run))}\n")

    def close(self) -> None:
        """Nothing to tidy: every line is already written."""

    def _write(self, text: str) -> None:
        with self._lock:
            self.stream.write(text)
            self.stream.flush()


class LiveDisplay:
    """A table of the watched runs redrawn in place, `refresh_per_second` times a second, by
    rich's own thread: it reads the ledger (at most every `min_interval`), so the bars move while
    a pass runs, not only between passes."""

    def __init__(
        self,
        engine: Engine,
        run_name: str | None,
        console: Any = None,
        *,
        refresh_per_second: float = 1.0,
        **watch: Any,
    ) -> None:
        self.watch = RunWatch(engine, run_name, **watch)
        self.console = console
        self.refresh_per_second = refresh_per_second
        self._passes = 0
        self._transitions = 0
        self._live: Any = None

    def start(self) -> None:
        from rich.live import Live

        self.watch.runs(fresh=True)
        self._live = Live(
            get_renderable=self.render,
            console=self.console,
            refresh_per_second=self.refresh_per_second,
        )
        self._live.start()

    def on_transition(self, job_id: int, from_state: State, to_state: State) -> None:
        # Counted only: the table shows where the jobs are; one line each would scroll it away.
        self._transitions += 1

    def on_pass(self, report: PassReport) -> None:
        self._passes += 1
        self.watch.runs(fresh=True)
        if self._live is not None:
            self._live.refresh()

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def render(self) -> Any:
        """The table as it stands now (rich calls this on each refresh)."""
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        table = Table(
            title=f"ledger reconcile: pass {self._passes + 1}, {self._transitions} transitions",
            title_justify="left",
            box=None,
        )
        for column in ("run", "requests", "", "jobs", "", "states", "cost", "eta"):
            table.add_column(column, no_wrap=column in ("run", "cost", "eta"))
        runs = self.watch.runs()
        for run in runs:
            table.add_row(
                run.name,
                ProgressBar(total=max(run.requests, 1), completed=run.done, width=24),
                f"{run.done}/{run.requests}",
                ProgressBar(total=max(run.jobs, 1), completed=run.jobs_done, width=12),
                f"{run.jobs_done}/{run.jobs}",
                counts(run.job_states, STATE_ORDER),
                cost(run.cost_usd),
                duration(self.watch.eta(run)),
            )
        if not runs:
            table.add_row("no run has work left", "", "", "", "", "", "", "")
        return table


def progress_display(
    engine: Engine, run_name: str | None, stream: TextIO | None = None
) -> ProgressDisplay | LiveDisplay:
    """The live table on a terminal, plain lines otherwise."""
    out = stream or sys.stdout
    if out.isatty():
        return LiveDisplay(engine, run_name)
    return ProgressDisplay(engine, run_name, out)


def install_stop_signals(stop: Callable[[], None]) -> None:
    """SIGINT and SIGTERM finish the current step, release leases and stop the loop."""
    import signal

    def handler(signum: int, _frame: object) -> None:
        stop()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
