"""A dry run stays dry: its jobs are recorded held, no reconcile pass takes them, `status` shows
them as held, and cancel still can. (Sending them is tests/integration/test_dry_run_send.py.)"""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result
from support.buildkit import prompts, query, submit, write_jsonl

from cli import cli
from ledger.core.db import open_ledger
from ledger.core.owner import process_owner
from ledger.core.states import State
from ledger.core.store import claim


def ledger(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def dry_run(rows: int = 3, max_requests: int = 2) -> None:
    write_jsonl("in.jsonl", prompts(rows))
    result = submit("in.jsonl", "--model", "gpt-4o-mini", "--max-requests", str(max_requests))
    assert result.exit_code == 0, result.output
    assert "held; nothing sent (`ledger send in` sends them)" in result.stdout


def test_a_dry_runs_jobs_are_recorded_held() -> None:
    """Every job of a dry run is held, with the reason."""
    dry_run()
    assert (
        query("SELECT state, held_reason FROM jobs")
        == [{"state": "built", "held_reason": "dry run"}] * 2
    )


def test_claim_skips_held_jobs() -> None:
    """No reconciler can lease a held job, due or not."""
    dry_run()
    engine = open_ledger("ledger.db")
    with engine.begin() as connection:
        leases = claim(connection, process_owner(), states=list(State), limit=10, due_only=False)
    assert leases == []


def test_a_reconcile_pass_leaves_a_dry_run_alone() -> None:
    """`ledger reconcile` sends nothing of a dry run (there is no provider to reach here)."""
    dry_run()
    result = ledger("reconcile")
    assert result.exit_code == 0, result.output
    assert (
        query("SELECT state, attempt, submit_token FROM jobs")
        == [{"state": "built", "attempt": 0, "submit_token": None}] * 2
    )


def test_status_shows_held_jobs() -> None:
    """`ledger status` says how many jobs are held and how to send them; --json too."""
    dry_run()
    result = ledger("status")
    assert "  held: 2 job(s) of a dry run, sent by `ledger send in`" in result.stdout
    result = ledger("status", "--json")
    assert '"held": 2' in result.stdout and '"held": "dry run"' in result.stdout


def test_a_held_job_can_be_cancelled() -> None:
    """Cancel takes held jobs too: a dry run can be dropped without ever being sent."""
    dry_run(rows=1)
    result = ledger("cancel", "in")
    assert result.exit_code == 0, result.output
    assert query("SELECT state FROM jobs") == [{"state": "cancelled"}]


def test_send_of_an_unknown_run_is_exit_2() -> None:
    """`ledger send nope`: one line, exit 2."""
    dry_run(rows=1)
    result = ledger("send", "nope")
    assert result.exit_code == 2
    assert result.stderr == "error: no run named 'nope'\n"


def test_status_of_an_unknown_run_is_exit_2(tmp_path: Path) -> None:
    """`ledger status --run nope`: one line, exit 2."""
    dry_run(rows=1)
    result = ledger("status", "--run", "nope")
    assert result.exit_code == 2
    assert result.stderr == "error: no run named 'nope'\n"
