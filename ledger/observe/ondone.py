"""`--on-done CMD`: run a shell command once when a run reaches its end (every job normalized),
with `LEDGER_RUN` (its name) and `LEDGER_RUN_STATUS` (`succeeded`, `partial` or `failed`, from
its requests) in the command's environment."""

from __future__ import annotations

import logging
import os
import subprocess
from typing import TYPE_CHECKING

from ledger.console import run_progress
from ledger.query.report import status_report

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from ledger.reconcile.engine import PassReport

log = logging.getLogger("ledger.observe")


class OnDone:
    """Fires for each run that had work left when watching began or since, once it ends."""

    def __init__(self, engine: Engine, run_name: str | None, command: str) -> None:
        self.engine = engine
        self.run_name = run_name
        self.command = command
        self.fired: list[str] = []
        self._open: set[str] = set()
        self.check()

    def on_pass(self, report: PassReport | None = None) -> None:
        self.check()

    def check(self) -> None:
        """Note the runs with work left; run the command for each that has just ended."""
        for run in map(run_progress, status_report(self.engine, self.run_name)):
            if not run.ended:
                self._open.add(run.name)
            elif run.name in self._open:
                self._open.discard(run.name)
                self._fire(run.name, run.outcome)

    def _fire(self, run: str, outcome: str) -> None:
        env = {**os.environ, "LEDGER_RUN": run, "LEDGER_RUN_STATUS": outcome}
        # A hook's failure is its own: reported, never a reason to stop reconciling.
        code = subprocess.run(self.command, shell=True, env=env, check=False).returncode
        self.fired.append(run)
        if code != 0:
            log.warning("--on-done for run %s exited with status %s", run, code)
