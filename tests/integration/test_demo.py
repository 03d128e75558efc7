"""`ledger demo` runs the whole lifecycle offline and leaves a ledger to explore."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import cli
from ledger import Ledger


def test_demo_runs_offline_and_ends_with_every_row_succeeded(tmp_path: Path) -> None:
    """Three batches, one expired part way and retried: 24 results, all succeeded."""
    result = CliRunner().invoke(cli, ["demo", "--dir", str(tmp_path / "d")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "requests: 24 succeeded" in result.output
    assert "The emulator created 4 batches and 4 input files" in result.output
    with Ledger.open(tmp_path / "d" / "ledger.db") as ledger:
        results = list(ledger.results("demo"))
    assert len(results) == 24 and {r.status for r in results} == {"succeeded"}


def test_demo_runs_the_same_lifecycle_on_anthropic_message_batches(tmp_path: Path) -> None:
    """--provider anthropic: the same lifecycle through the Message Batches API."""
    result = CliRunner().invoke(
        cli,
        ["demo", "--dir", str(tmp_path / "d"), "--provider", "anthropic"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "requests: 24 succeeded" in result.output
    assert "expired" in result.output.split("4. ledger retry")[0]
    assert "The emulator created 4 message batches" in result.output


@pytest.mark.parametrize("provider", ["azure", "groq", "together", "xai"])
def test_demo_runs_on_each_compatible_host(tmp_path: Path, provider: str) -> None:
    """--provider NAME: the host's routes and quirks; Azure runs its late batch on instead."""
    result = CliRunner().invoke(
        cli,
        ["demo", "--dir", str(tmp_path / "d"), "--provider", provider],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "requests: 24 succeeded" in result.output
    batches = 3 if provider == "azure" else 4
    assert f"The emulator created {batches} batches and {batches} input files" in result.output
    with Ledger.open(tmp_path / "d" / "ledger.db") as ledger:
        [run] = ledger.status("demo")
    assert run["provider"] == provider


def test_demo_runs_on_gemini_batch_mode(tmp_path: Path) -> None:
    """--provider gemini: the same lifecycle through the google-genai SDK; one batch per job,
    its small requests sent inline (no file uploaded), the expired job's requests retried."""
    result = CliRunner().invoke(
        cli, ["demo", "--dir", str(tmp_path / "d"), "--provider", "gemini"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "requests: 24 succeeded" in result.output
    assert "expired" in result.output.split("4. ledger retry")[0]
    assert "The emulator created 4 batches (one per job) and 0 uploaded request files" in (
        result.output
    )
