"""`ledger submit --provider`: checked against the adapter registry, recorded on the run and
every job, taken from [defaults] provider, and part of a run's identity."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.buildkit import prompts, query, shard_lines, submit, write_jsonl

from adapters import REGISTRY
from adapters.fake import FakeProvider
from ledger.build.run import BuildOptions, build_run
from ledger.core.db import open_ledger
from ledger.errors import InputError


def providers_recorded() -> tuple[list[str], list[str]]:
    """The provider of every run and of every job."""
    runs = [row["provider"] for row in query("select provider from runs order by id")]
    jobs = [row["provider"] for row in query("select provider from jobs order by id")]
    return runs, jobs


@pytest.fixture
def second_provider(monkeypatch: pytest.MonkeyPatch) -> str:
    """A second batch adapter in the registry, as the Anthropic one will be."""
    monkeypatch.setitem(REGISTRY, "second", lambda base_url, api_key: FakeProvider())
    return "second"


def test_openai_is_the_default_provider(tmp_path: Path) -> None:
    """Without --provider the run and its jobs are for openai, and the plan says so."""
    write_jsonl("in.jsonl", prompts(3))
    result = submit("in.jsonl", "--model", "gpt-4o-mini", "--max-requests", "2", "--dry-run")
    assert result.exit_code == 0, result.output
    assert providers_recorded() == (["openai"], ["openai", "openai"])
    assert result.stdout.splitlines()[1].startswith("  openai /v1/responses")


def test_the_provider_is_recorded_on_the_run_its_jobs_and_the_manifest(
    tmp_path: Path, second_provider: str
) -> None:
    """--provider NAME (a registered adapter) is what the run, each job and manifest.json say;
    the shards stay OpenAI-format lines."""
    write_jsonl("in.jsonl", prompts(3))
    result = submit(
        "in.jsonl", "--model", "m", "--provider", second_provider, "--max-requests", "2"
    )
    assert result.exit_code == 0, result.output
    assert providers_recorded() == ([second_provider], [second_provider] * 2)
    manifest = json.loads((tmp_path / "runs" / "in" / "manifest.json").read_text())
    assert manifest["run"]["provider"] == second_provider
    assert shard_lines("in")[0][0]["url"] == "/v1/responses"
    assert f"  {second_provider} /v1/responses" in result.stdout


def test_anthropic_is_recorded_once_its_adapter_is_registered(tmp_path: Path) -> None:
    """--provider anthropic builds OpenAI-format shards for jobs recorded as anthropic."""
    if "anthropic" not in REGISTRY:
        pytest.skip("the Anthropic batch adapter is not registered yet (adapters.REGISTRY)")
    write_jsonl("in.jsonl", prompts(2))
    result = submit("in.jsonl", "--model", "claude-haiku-4-5", "--provider", "anthropic")
    assert result.exit_code == 0, result.output
    assert providers_recorded() == (["anthropic"], ["anthropic"])


def test_an_unknown_provider_is_refused_with_exit_2(tmp_path: Path) -> None:
    """A name the registry does not know: one line naming the known ones, nothing recorded."""
    write_jsonl("in.jsonl", prompts(2))
    result = submit("in.jsonl", "--model", "gpt-4o-mini", "--provider", "nope")
    assert result.exit_code == 2
    known = ", ".join(sorted(REGISTRY))
    assert result.stderr == f"error: provider 'nope' has no batch adapter (known: {known})\n"
    assert not (tmp_path / "runs").exists()
    assert not (tmp_path / "ledger.db").exists()


def test_the_library_checks_the_provider_too(tmp_path: Path) -> None:
    """build_run refuses an unregistered provider before reading anything."""
    engine = open_ledger(tmp_path / "ledger.db")
    with pytest.raises(InputError, match=r"--provider: unknown provider 'nope' \(known: "):
        build_run(engine, tmp_path / "missing.jsonl", BuildOptions(provider="nope"))


def test_defaults_provider_in_the_config_file_is_used(tmp_path: Path, second_provider: str) -> None:
    """[defaults] provider applies when --provider is not given."""
    Path("ledger.toml").write_text(f'[defaults]\nprovider = "{second_provider}"\n')
    write_jsonl("in.jsonl", prompts(1))
    assert submit("in.jsonl", "--model", "m", "--dry-run").exit_code == 0
    assert providers_recorded() == ([second_provider], [second_provider])


def test_a_provider_configured_without_batch_is_refused(tmp_path: Path) -> None:
    """[providers.openai] batch = false: submit refuses to build jobs for it."""
    Path("ledger.toml").write_text("[providers.openai]\nbatch = false\n")
    write_jsonl("in.jsonl", prompts(1))
    result = submit("in.jsonl", "--model", "gpt-4o-mini")
    assert result.exit_code == 2
    assert result.stderr == "error: provider 'openai' is configured with batch = false\n"


def test_resubmitting_a_run_for_another_provider_is_refused(
    tmp_path: Path, second_provider: str
) -> None:
    """Same input, same name, another provider: refused; the same provider: a no-op."""
    write_jsonl("in.jsonl", prompts(1))
    assert submit("in.jsonl", "--model", "m").exit_code == 0
    assert submit("in.jsonl", "--model", "m").exit_code == 0
    result = submit("in.jsonl", "--model", "m", "--provider", second_provider)
    assert result.exit_code == 2
    assert "already exists for provider 'openai', not 'second'" in result.stderr
    assert providers_recorded() == (["openai"], ["openai"])
