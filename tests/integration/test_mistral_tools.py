"""`ledger demo --provider mistral` and `ledger doctor`'s Mistral checks, offline against the
emulator: the demo's whole lifecycle on Mistral's routes, and doctor's chat, embeddings and batch
checks passing with the key and failing, scrubbed, without the right one."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import cli
from ledger import Ledger
from ledger.config import LedgerConfig
from ledger.emulator import Emulator, EmulatorConfig
from ledger.query.doctor import check_provider

KEY = "mistral-LEAKCANARY-doctor-0123456789"


def test_demo_runs_on_mistral(tmp_path: Path) -> None:
    """--provider mistral: Mistral's routes, one job and one upload per shard, all succeeded."""
    result = CliRunner().invoke(
        cli, ["demo", "--dir", str(tmp_path / "d"), "--provider", "mistral"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "Mistral Batch API emulator" in result.output
    assert "requests: 24 succeeded" in result.output
    assert "The emulator created 4 batches and 4 input files" in result.output
    with Ledger.open(tmp_path / "d" / "ledger.db") as ledger:
        [run] = ledger.status("demo")
    assert run["provider"] == "mistral"


@pytest.mark.parametrize("right_key", [True, False])
def test_doctor_checks_mistral_chat_embeddings_and_batch(
    monkeypatch: pytest.MonkeyPatch, right_key: bool
) -> None:
    """Chat, embeddings and the batch list pass with the key; each fails, scrubbed, without it."""
    with Emulator(EmulatorConfig(api_key=KEY if right_key else "another-key")).start() as emu:
        monkeypatch.setenv("MISTRAL_API_KEY", KEY)
        monkeypatch.setenv("MISTRAL_BASE_URL", emu.url + "/mistral/v1")
        results = check_provider(LedgerConfig(), "mistral")
    assert [r.name for r in results] == ["mistral chat", "mistral embeddings", "mistral batch"]
    assert all(r.ok is right_key for r in results), [r.line() for r in results]
    assert all(KEY not in r.line() for r in results)
