"""The OpenAI-compatible batch hosts as profiles: registered by name, their limits cut shards,
their lines rewritten at upload, and another host declared in ledger.toml without code."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.openai.profiles import AZURE, GROQ, TOGETHER, XAI
from adapters.registry import REGISTRY, batch_limits, get_provider, provider_names
from ledger.build.shard_limits import ShardLimits, within_provider_limits
from ledger.config import batch_provider, parse_config, provider_settings
from ledger.errors import ConfigError

LINE = json.dumps(
    {"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "m"}}
).encode()


@pytest.fixture
def forget_acme() -> Iterator[None]:
    yield
    if "acme" in REGISTRY:
        del REGISTRY["acme"]


def test_each_host_is_a_provider_name() -> None:
    """azure, groq, together and xai are registered beside openai and anthropic."""
    assert {"azure", "groq", "together", "xai"} <= set(provider_names())


def test_the_build_cuts_shards_to_the_hosts_limits() -> None:
    """Together holds 100 MB a batch; the others keep the build's own (OpenAI's) limits."""
    assert batch_limits("together") == (50_000, 100_000_000)
    assert within_provider_limits(ShardLimits(), "together").max_bytes == 100_000_000
    assert within_provider_limits(ShardLimits(), "azure") == ShardLimits()
    assert within_provider_limits(ShardLimits(max_bytes=1000), "together").max_bytes == 1000


def test_lines_are_rewritten_into_the_hosts_envelope() -> None:
    """Together drops method and url; Azure names the endpoint without /v1; others keep it."""
    assert set(json.loads(TOGETHER.upload_line(LINE))) == {"custom_id", "body"}
    assert json.loads(AZURE.upload_line(LINE))["url"] == "/chat/completions"
    assert not GROQ.rewrites_lines and not XAI.rewrites_lines
    assert AZURE.endpoint_path("/v1/responses") == "/responses"


def test_azure_is_found_through_its_endpoint_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """$AZURE_OPENAI_ENDPOINT gives the v1 surface; without it the error names the variable."""
    monkeypatch.delenv("AZURE_OPENAI_ENDPOINT", raising=False)
    with pytest.raises(ConfigError, match="AZURE_OPENAI_ENDPOINT"):
        get_provider("azure", api_key="k")
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://res.openai.azure.com/")
    assert get_provider("azure", api_key="k").base_url == "https://res.openai.azure.com/openai/v1/"


def test_a_hosts_key_comes_from_its_own_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """groq's settings read $GROQ_API_KEY, never $OPENAI_API_KEY."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    monkeypatch.delenv("GROQ_API_KEY", raising=False)
    settings = provider_settings(parse_config({}, Path("ledger.toml")), "groq")
    assert settings.api_key_env == "GROQ_API_KEY"
    assert settings.base_url == "https://api.groq.com/openai/v1"
    with pytest.raises(Exception, match="GROQ_API_KEY"):
        batch_provider(settings)


def test_another_host_is_declared_in_ledger_toml(
    monkeypatch: pytest.MonkeyPatch, forget_acme: None
) -> None:
    """base_url, key variable, envelope and limits make a provider, with no code."""
    monkeypatch.setenv("ACME_KEY", "acme-secret")
    document = {
        "providers": {
            "acme": {
                "base_url": "http://127.0.0.1:1/v1",
                "api_key_env": "ACME_KEY",
                "envelope": "body",
                "upload_purpose": "batch-api",
                "max_requests_per_batch": 1000,
            }
        }
    }
    config = parse_config(document, Path("ledger.toml"))
    assert batch_limits("acme") == (1000, 200_000_000)
    provider = batch_provider(provider_settings(config, "acme"))
    assert provider.name == "acme" and provider.base_url == "http://127.0.0.1:1/v1"
    assert set(json.loads(provider.profile.upload_line(LINE))) == {"custom_id", "body"}  # type: ignore[attr-defined]


def test_a_batch_true_section_alone_declares_an_openai_shaped_host(forget_acme: None) -> None:
    """`batch = true` and a base URL on a new name: OpenAI's lines and limits."""
    parse_config(
        {"providers": {"acme": {"base_url": "http://h/v1", "batch": True}}}, Path("ledger.toml")
    )
    assert batch_limits("acme") == (50_000, 200_000_000)


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        ({"envelope": "xml", "base_url": "http://h"}, "envelope"),
        ({"max_bytes_per_batch": 0, "base_url": "http://h"}, "max_bytes_per_batch"),
        ({"envelope": "body"}, "base_url"),
    ],
)
def test_a_host_that_cannot_be_is_refused_naming_the_key(
    section: dict[str, object], problem: str
) -> None:
    """A bad envelope, limit or a missing URL: ConfigError naming the file and the key."""
    with pytest.raises(ConfigError, match=rf"ledger.toml: providers.acme.{problem}"):
        parse_config({"providers": {"acme": section}}, Path("ledger.toml"))


def test_a_built_in_host_cannot_be_redeclared() -> None:
    """together's profile is fixed: a config file cannot reroute its requests and key."""
    with pytest.raises(ConfigError, match="together is built in"):
        parse_config({"providers": {"together": {"envelope": "openai"}}}, Path("ledger.toml"))
