"""ledger.toml alone is enough: the Python API and `ledger submit`/`retry` send to the base URL
of [providers.openai] and follow [defaults], with nothing passed in code or on the line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from support.buildkit import prompts, query, write_jsonl

from cli import cli
from ledger import Ledger

#: Where batches would go if the file's base URL were ignored: a closed loopback port.
NOWHERE = "http://127.0.0.1:9/v1"


@pytest.fixture
def configured(emulator: Any, api_key: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """./ledger.toml pointing the openai provider at the emulator, with fast polling."""
    monkeypatch.setenv("OPENAI_BASE_URL", NOWHERE)
    Path("ledger.toml").write_text(
        '[defaults]\nmodel = "gpt-4o-mini"\nmax_requests = 2\npoll_min = 0\npoll_max = 0.05\n'
        f'interval = 0.01\n\n[providers.openai]\nbase_url = "{emulator.base_url}"\n',
        encoding="utf-8",
    )
    return emulator


def test_the_python_api_runs_a_batch_from_the_file_alone(configured: Any) -> None:
    """Ledger.open() with no arguments: submit and reconcile take model, shard size, polling and
    the provider's base URL from ledger.toml, and every request succeeds."""
    write_jsonl("rows.jsonl", prompts(5))
    with Ledger.open() as ledger:
        plan = ledger.submit("rows.jsonl", run="cfg")
        ledger.reconcile(run="cfg", until_done=True, timeout=60, jitter=0.0)
        results = list(ledger.results("cfg"))
    assert len(plan.jobs) == 3
    assert [r.status for r in results] == ["succeeded"] * 5
    jobs = query("select model, base_url, state from jobs")
    assert (
        jobs
        == [{"model": "gpt-4o-mini", "base_url": configured.base_url, "state": "normalized"}] * 3
    )
    assert configured.stats()["batches"]["created"] == 3


def test_ledger_submit_sends_to_the_configured_base_url(configured: Any) -> None:
    """`ledger submit` without --base-url creates its batches at [providers.openai] base_url."""
    write_jsonl("rows.jsonl", prompts(3))
    result = CliRunner().invoke(cli, ["submit", "rows.jsonl"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    jobs = query("select base_url, state from jobs")
    assert jobs == [{"base_url": configured.base_url, "state": "submitted"}] * 2
    assert configured.stats()["batches"]["created"] == 2
