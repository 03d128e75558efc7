"""The budget from the command line: `submit --dry-run` prints the run's estimate against each
budget that applies, `--max-cost` records the run's cap, `ledger budget set/show` record and list
caps, and a bad `[budget]` in ledger.toml is refused in one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from click.testing import CliRunner

from cli import cli

ROWS = '{"id": "a", "prompt": "hello there"}\n{"id": "b", "prompt": "hi"}\n'


def ledger(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args))


def test_a_dry_run_prints_its_estimate_against_each_budget(tmp_path: Path) -> None:
    """Each cap that applies (daily and provider from ledger.toml, the run's --max-cost) gets a
    line: what is left, and whether the run's estimate fits or by how much it is over."""
    Path("in.jsonl").write_text(ROWS, encoding="utf-8")
    Path("ledger.toml").write_text(
        "[budget]\ndaily_usd = 0.00001\nprovider_daily_usd = { openai = 5 }\n", encoding="utf-8"
    )
    args = ["submit", "in.jsonl", "--model", "gpt-4o-mini", "--max-output-tokens", "100"]
    result = ledger(*args, "--dry-run", "--max-cost", "2")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("budget ")]
    assert lines == [
        "budget daily: $0.00001, $0.00001 left; this run's estimate $0.000061: over by "
        "$0.000051: batches beyond it will wait",
        "budget provider:openai: $5.00, $5.00 left; this run's estimate $0.000061: fits, "
        "$5.00 would be left",
        "budget run:in: $2.00, $2.00 left; this run's estimate $0.000061: fits, $2.00 would "
        "be left",
    ]
    shown = ledger("budget", "show")
    assert "  run:in: $2.00 (ledger); $0.00 spent, $0.00 in flight, $2.00 left" in shown.output
    assert "  daily: $0.00001 (ledger.toml)" in shown.output


def test_budget_set_records_a_cap_over_the_file_and_none_removes_it(tmp_path: Path) -> None:
    """`ledger budget set daily 3` wins over ledger.toml's daily_usd; `none` gives it back."""
    Path("ledger.toml").write_text("[budget]\ndaily_usd = 1\n", encoding="utf-8")
    assert ledger("budget", "set", "daily", "3").output == "budget daily: $3.00\n"
    assert "daily: $3.00 (ledger)" in ledger("budget", "show").output
    assert ledger("budget", "set", "daily", "none").exit_code == 0
    assert "daily: $1.00 (ledger.toml)" in ledger("budget", "show").output


def test_bad_budgets_are_refused_in_one_line(tmp_path: Path) -> None:
    """A negative cap, an unknown key, a scope that is none, an amount that is none: exit 2."""
    Path("ledger.toml").write_text("[budget]\ndaily_usd = -1\n", encoding="utf-8")
    result = ledger("budget", "show")
    assert (result.exit_code, result.output) == (
        2,
        "error: ledger.toml: budget.daily_usd: must be at least 0\n",
    )
    Path("ledger.toml").write_text("[budget]\ndayly = 1\n", encoding="utf-8")
    assert "unknown key 'budget.dayly'" in ledger("budget", "show").output
    Path("ledger.toml").write_text('[budget]\nenqueued_tokens = { "m" = 1.5 }\n', encoding="utf-8")
    assert "budget.enqueued_tokens.m: expected an integer" in ledger("budget", "show").output
    Path("ledger.toml").unlink()
    result = ledger("budget", "set", "weekly", "3")
    assert result.exit_code == 2
    assert "'weekly' is no budget scope: daily, provider:NAME or run:NAME" in result.output
    assert ledger("budget", "set", "daily", "lots").exit_code == 2
