"""Mistral as a built-in provider: registered by name, its key from its own variable, its
endpoints and limits enforced when a run is built, its URL handed to the SDK without `/v1`."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.chat_types import CHAT, EMBEDDINGS
from adapters.mistral.batch import server_url
from adapters.mistral.lines import MAX_BYTES, MAX_REQUESTS
from adapters.registry import BUILT_INS, batch_limits, get_provider, request_rules
from ledger.build.run import BuildOptions
from ledger.build.shard_limits import ShardLimits, within_provider_limits
from ledger.config import batch_provider, builtin_settings, parse_config, provider_settings
from ledger.errors import InputError, MissingAPIKey


def test_mistral_is_built_in_with_its_own_key_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Its key comes from $MISTRAL_API_KEY; OPENAI_API_KEY is never a fallback."""
    assert "mistral" in BUILT_INS
    monkeypatch.delenv("MISTRAL_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-for-mistral")
    with pytest.raises(MissingAPIKey, match="MISTRAL_API_KEY"):
        get_provider("mistral")
    monkeypatch.setenv("MISTRAL_API_KEY", "m-key")
    assert get_provider("mistral", "https://api.mistral.ai/v1").name == "mistral"


def test_the_built_in_settings_point_at_mistrals_v1_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """https://api.mistral.ai/v1 unless $MISTRAL_BASE_URL says otherwise; batch enabled."""
    monkeypatch.delenv("MISTRAL_BASE_URL", raising=False)
    settings = builtin_settings("mistral")
    assert settings is not None and settings.batch and settings.api_key_env == "MISTRAL_API_KEY"
    assert settings.base_url == "https://api.mistral.ai/v1"
    assert server_url(settings.base_url) == "https://api.mistral.ai"


def test_a_ledger_toml_can_name_another_key_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """`api_key_env` in [providers.mistral] is where the batch adapter's key comes from."""
    config = parse_config(
        {"providers": {"mistral": {"api_key_env": "TEAM_MISTRAL_KEY"}}}, Path("ledger.toml")
    )
    settings = provider_settings(config, "mistral")
    monkeypatch.delenv("MISTRAL_API_KEY", raising=False)
    monkeypatch.delenv("TEAM_MISTRAL_KEY", raising=False)
    with pytest.raises(MissingAPIKey, match="TEAM_MISTRAL_KEY"):
        batch_provider(settings)
    monkeypatch.setenv("TEAM_MISTRAL_KEY", "team-key")
    adapter = batch_provider(settings)
    assert adapter.name == "mistral" and adapter.base_url == "https://api.mistral.ai/v1"


def test_the_build_cuts_shards_to_mistrals_limits_and_endpoints() -> None:
    """1M requests and 512 MB a job; chat (the default) and embeddings, never responses."""
    assert batch_limits("mistral") == (MAX_REQUESTS, MAX_BYTES)
    assert within_provider_limits(ShardLimits(max_bytes=1000), "mistral").max_bytes == 1000
    assert request_rules("mistral").endpoints == (CHAT, EMBEDDINGS)
    assert BuildOptions(provider="mistral").default_endpoint() == CHAT
    with pytest.raises(InputError, match="provider mistral takes"):
        BuildOptions(provider="mistral", endpoint="responses").check()
