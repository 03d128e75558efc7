"""What a person watching `ledger reconcile` and `ledger status` sees: plain lines when the output
is not a terminal, a live rich table that moves while a pass runs, and one line per run."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

from click.testing import CliRunner
from rich.console import Console
from sqlalchemy import update
from sqlalchemy.engine import Engine
from support.factories import add_jobs, add_run

from cli import cli
from ledger.console import LiveDisplay, ProgressDisplay
from ledger.core.db import open_ledger
from ledger.core.models import Job
from ledger.core.states import State
from ledger.reconcile.engine import PassReport


def ledger_with_run(tmp_path: Path) -> tuple[Engine, list[int]]:
    engine = open_ledger(tmp_path / "ledger.db")
    return engine, add_jobs(engine, add_run(engine, "eval-1"), 2)


def set_state(engine: Engine, job_id: int, state: str, **fields: object) -> None:
    with engine.begin() as connection:
        connection.execute(update(Job).where(Job.id == job_id).values(state=state, **fields))


def test_plain_mode_prints_each_transition_then_one_line_per_run(tmp_path: Path) -> None:
    """Not a terminal: every transition, then after a pass that moved something each run's line."""
    engine, [first, second] = ledger_with_run(tmp_path)
    out = io.StringIO()
    display = ProgressDisplay(engine, None, out)
    display.start()
    display.on_pass(PassReport())  # nothing moved: nothing printed
    set_state(engine, first, "in_progress", requests_completed=1)
    display.on_transition(first, State.BUILT, State.IN_PROGRESS)
    display.on_pass(PassReport(claimed=2, transitions=1))
    display.close()
    assert out.getvalue() == (
        f"job {first}: built -> in_progress\n"
        "pass 2: eval-1: requests 1/1, jobs 0/2 (1 built, 1 in_progress), cost $0.0000, eta 0s\n"
    )
    assert second


def test_live_mode_draws_a_bar_per_run_and_moves_during_a_pass(tmp_path: Path) -> None:
    """On a terminal: the run's name, counts and a bar, redrawn from the ledger with no pass end."""
    engine, [first, second] = ledger_with_run(tmp_path)
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=160, color_system="standard")
    display = LiveDisplay(engine, None, console, refresh_per_second=20, min_interval=0.0)
    display.start()
    try:
        time.sleep(0.2)
        drawn = screen.getvalue()
        assert "eval-1" in drawn and "0/2" in drawn and "2 built" in drawn
        assert "━" in drawn  # rich's bar
        # A job moves, as in the middle of a pass: on_pass is never called.
        set_state(engine, first, "normalized")
        deadline = time.monotonic() + 5
        while "1 built, 1 normalized" not in screen.getvalue():
            assert time.monotonic() < deadline, screen.getvalue()[-500:]
            time.sleep(0.05)
        assert "1/2" in screen.getvalue()
    finally:
        display.close()
    assert second


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_status_shows_runs_first_and_a_runs_jobs_on_request(tmp_path: Path) -> None:
    """`status`: a line per run; `status RUN`: that line, then its jobs with model and error."""
    engine, [first, _] = ledger_with_run(tmp_path)
    add_jobs(engine, add_run(engine, "eval-2"), 1)
    set_state(engine, first, "uploaded", last_error="HTTP 503 from the provider")
    db = str(tmp_path / "ledger.db")
    code, out, _ = invoke("--db", db, "status")
    assert code == 0
    assert out.splitlines() == [
        "eval-1: openai gpt-4o-mini; requests 0/1 (1 pending); jobs 0/2 (1 built, 1 uploaded); "
        "cost $0.0000 (est. unknown); last error: HTTP 503 from the provider",
        "eval-2: openai gpt-4o-mini; requests 0/1 (1 pending); jobs 0/1 (1 built); cost $0.0000 "
        "(est. unknown)",
    ]
    code, out, _ = invoke("--db", db, "status", "eval-1")
    lines = out.splitlines()
    assert code == 0 and lines[0].startswith("eval-1:") and "last_error" in lines[2]
    assert lines[1].startswith("  estimated against actual: input tokens 0 est., 0 actual")
    assert len(lines) == 6 and "gpt-4o-mini" in lines[4] and "HTTP 503" in lines[4]
    code, out, _ = invoke("--db", db, "status", "eval-1", "--json")
    assert [job["job_id"] for job in json.loads(out)[0]["jobs"]] == [first, first + 1]


def test_status_of_an_unknown_run_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """`status NOPE`: exit code 2 and one error line."""
    ledger_with_run(tmp_path)
    code, out, err = invoke("--db", str(tmp_path / "ledger.db"), "status", "nope")
    assert (code, out, err) == (2, "", "error: no run named 'nope'\n")


def test_on_done_and_metrics_need_a_loop(tmp_path: Path) -> None:
    """--on-done and --metrics-port on a single pass are refused (exit 2)."""
    code, _, err = invoke("--db", str(tmp_path / "l.db"), "reconcile", "--on-done", "true")
    assert code == 2 and "need --loop or --until-done" in err


def test_cancel_and_results_speak_json_to_scripts(tmp_path: Path) -> None:
    """cancel --json lists each job's outcome; results --json-summary puts a summary on stderr."""
    _, [first, second] = ledger_with_run(tmp_path)
    db = str(tmp_path / "ledger.db")
    code, out, err = invoke("--db", db, "results", "eval-1", "--json-summary")
    assert (code, out) == (0, "")
    assert json.loads(err) == {
        "run": "eval-1",
        "written": 0,
        "jobs_not_normalized": [first, second],
    }
    code, out, _ = invoke("--db", db, "cancel", "eval-1", "--json")
    assert code == 0
    assert [row["job_id"] for row in json.loads(out)] == [first, second]
