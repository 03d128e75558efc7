"""Per-host options: Azure with a Microsoft Entra ID token instead of a key, and Groq's longer
completion windows (24h to 7d), set in ledger.toml, checked per host, seen by the host."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import openai
import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import Engine
from support.drivers import reconcile_until_done
from support.factories import add_built_job
from support.hosts import files_holding

from ledger.config import batch_provider_for, load_config, provider_settings
from ledger.core.models import Job
from ledger.errors import ConfigError
from ledger.reconcile.engine import ReconcileOptions, Reconciler

UNITS = "(hours as 48h, or days as 7d)"
TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.LEAKCANARY-entra-id-token"


def job_state(engine: Engine, job_id: int) -> str:
    with engine.connect() as connection:
        return connection.execute(select(Job.state).where(Job.id == job_id)).scalar_one()


def test_azure_runs_on_an_entra_id_token_when_no_key_is_set(
    engine: Engine, emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """$AZURE_OPENAI_AD_TOKEN is sent as the bearer when $AZURE_OPENAI_API_KEY is unset; the
    token is stored nowhere."""
    monkeypatch.delenv("AZURE_OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("AZURE_OPENAI_AD_TOKEN", TOKEN)
    job_id = add_built_job(engine, tmp_path, "r", ["a", "b"], provider="azure")
    reconcile_until_done(engine, emulator.url + "/azure/openai/v1")
    assert job_state(engine, job_id) == "normalized"
    assert files_holding(tmp_path, TOKEN) == []
    with engine.connect() as connection:
        for table in ("jobs", "job_events", "requests", "runs"):
            assert TOKEN not in repr(connection.execute(text(f"SELECT * FROM {table}")).all())


def test_ledger_toml_can_name_another_token_variable_and_the_key_still_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ad_token_env` names the token's variable; a set key is used before any token, and with
    neither the error names both variables."""
    Path("ledger.toml").write_text('[providers.azure]\nad_token_env = "MY_ENTRA_TOKEN"\n')
    monkeypatch.delenv("AZURE_OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("MY_ENTRA_TOKEN", TOKEN)
    settings = provider_settings(load_config(), "azure")
    assert settings.api_key() == TOKEN
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "az-key")
    assert settings.api_key() == "az-key"
    monkeypatch.delenv("AZURE_OPENAI_API_KEY")
    monkeypatch.delenv("MY_ENTRA_TOKEN")
    with pytest.raises(Exception, match=r"\$AZURE_OPENAI_API_KEY nor \$MY_ENTRA_TOKEN is not set"):
        settings.require_api_key()


def test_groq_batches_are_created_with_the_window_ledger_toml_asks_for(
    engine: Engine, emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`completion_window = "7d"` on groq: the emulator's Groq routes record a 7d batch."""
    monkeypatch.setenv("GROQ_API_KEY", "gsk-test")
    url = emulator.url + "/groq/openai/v1"
    Path("ledger.toml").write_text(
        f'[providers.groq]\nbase_url = "{url}"\ncompletion_window = "7d"\n'
    )
    job_id = add_built_job(engine, tmp_path, "r", ["a"], provider="groq")
    options = ReconcileOptions(poll_min=0.0, poll_max=0.05, jitter=0.0)
    reconciler = Reconciler(engine, options, provider_for=batch_provider_for(load_config()))
    while reconciler.pending_jobs():
        assert reconciler.run_pass().paused is None
    assert job_state(engine, job_id) == "normalized"
    [batch] = openai.OpenAI(base_url=url, api_key="gsk-test").batches.list().data
    assert batch.completion_window == "7d"
    results = Path(tmp_path / "runs" / "r" / "results").glob("*.jsonl")
    assert [json.loads(line)["status"] for p in results for line in p.read_text().splitlines()] == [
        "succeeded"
    ]


@pytest.mark.parametrize(
    ("provider", "window", "problem"),
    [
        ("groq", "8d", f"'8d': groq takes a window from 24h to 7d {UNITS}"),
        ("groq", "12h", f"'12h': groq takes a window from 24h to 7d {UNITS}"),
        ("azure", "48h", f"'48h': azure takes a window from 24h to 24h {UNITS}"),
        ("anthropic", "24h", "provider anthropic takes none"),
    ],
)
def test_a_window_the_host_does_not_take_is_refused_naming_file_and_key(
    tmp_path: Path, provider: str, window: str, problem: str
) -> None:
    """Checked when ledger.toml is read: the file, the provider's key and the allowed range."""
    Path("ledger.toml").write_text(f'[providers.{provider}]\ncompletion_window = "{window}"\n')
    with pytest.raises(ConfigError) as refused:
        load_config()
    assert str(refused.value) == f"ledger.toml: providers.{provider}.completion_window: {problem}"
