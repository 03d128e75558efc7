"""`ledger prices [MODEL]`: the model table's batch prices and limits with source and date, the
ledger's models that have no price after it, and --json."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result
from support.buildkit import prompts, submit, write_jsonl

from cli import cli


def prices(*args: str) -> Result:
    return CliRunner().invoke(cli, ["prices", *args], catch_exceptions=False)


def test_one_models_row_with_its_source_and_date() -> None:
    """gpt-4o-mini: batch rates, context, max output, checked date and source."""
    result = prices("gpt-4o-mini")
    assert result.exit_code == 0, result.output
    header, _, row, *_ = result.stdout.splitlines()
    assert header.split() == [
        "model", "provider", "in", "cached", "out", "context", "max", "out", "checked", "source",
    ]  # fmt: skip
    expected = ["gpt-4o-mini", "openai", "$0.075", "$0.0375", "$0.3", "128,000", "16,384"]
    assert row.split()[:7] == expected
    assert "https://" in row


def test_a_dated_snapshot_is_listed_by_its_models_row() -> None:
    """A snapshot without a row of its own shows its model's row."""
    result = prices("gpt-4.1-2025-04-14")
    assert result.stdout.splitlines()[2].split()[0] == "gpt-4.1"


def test_the_whole_table_is_listed_by_default() -> None:
    """No MODEL: every row (the Claude and GPT families among them)."""
    models = [line.split()[0] for line in prices().stdout.splitlines()[2:] if line.strip()]
    assert {"gpt-4o-mini", "gpt-5", "claude-sonnet-4-5", "claude-opus-4-7"} <= set(models)


def test_json_gives_every_field() -> None:
    """--json: rows with prices, limits, sources and dates; and the unpriced models."""
    result = prices("claude-sonnet-4-5", "--json")
    listing = json.loads(result.stdout)
    [row] = listing["models"]
    assert row["model"] == "claude-sonnet-4-5" and row["provider"] == "anthropic"
    assert row["input"] == 1.5 and row["cache_write_1h"] == 3.0
    assert row["context_window"] == 200_000 and row["sources"] and row["checked"]
    assert listing["unpriced"] == []


def test_the_ledgers_unpriced_models_follow_the_table() -> None:
    """A model a run was built for that has no price is named after the table, with a note."""
    write_jsonl("in.jsonl", prompts(1))
    assert submit("in.jsonl", "--model", "acme-1").exit_code == 0
    result = prices()
    assert result.stdout.splitlines()[-1] == (
        'no price: acme-1: its cost shows as unknown; add a [models."acme-1"] row with input and '
        "output to ledger.toml, or a --prices file"
    )
    assert json.loads(prices("--json").stdout)["unpriced"] == ["acme-1"]


def test_ledger_toml_rows_are_listed() -> None:
    """A [models."NAME"] row of ledger.toml is a row of the listing (and so priced)."""
    Path("ledger.toml").write_text('[models."acme-1"]\ninput = 1\noutput = 4\n')
    [row] = json.loads(prices("acme-1", "--json").stdout)["models"]
    assert (row["input"], row["output"], row["overridden_by"]) == (1.0, 4.0, ["ledger.toml"])


def test_an_unknown_model_is_said_so() -> None:
    """MODEL not in the table: no row, and the note that it has no price."""
    result = prices("acme-9")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0] == "no such model in the table"
    assert result.stdout.splitlines()[-1].startswith("no price: acme-9:")
