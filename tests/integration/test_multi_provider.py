"""One run, several providers: `--model` given several times (or a `model` column naming
`provider:model`) sends the same prompts to each model, one job per provider and model, each
driven by its own provider's adapter over HTTP, and one results file with a result per
(row, model) that names its model and provider."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from support.buildkit import query, shard_lines, submit, write_jsonl
from support.hosts import files_holding

from cli import cli

KEYS = {
    "OPENAI_API_KEY": "sk-openai-LEAKCANARY-0123456789",
    "ANTHROPIC_API_KEY": "sk-ant-LEAKCANARY-0123456789",
    "GROQ_API_KEY": "gsk-groq-LEAKCANARY-0123456789",
}
MODELS = ("gpt-4o-mini", "anthropic:claude-haiku-4-5", "groq:llama-3.1-8b-instant")
ROWS = [{"id": f"q{i}", "prompt": f"say {i}"} for i in range(1, 4)]


@pytest.fixture
def providers(tmp_path: Path, emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Each provider's key in its own variable, each one's emulator routes in ledger.toml."""
    for name, value in KEYS.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "ledger.toml").write_text(
        f'[providers.openai]\nbase_url = "{emulator.base_url}"\n'
        f'[providers.anthropic]\nbase_url = "{emulator.url}"\n'
        f'[providers.groq]\nbase_url = "{emulator.url}/groq/openai/v1"\n',
        encoding="utf-8",
    )
    return emulator


def ledger(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def reconcile() -> Result:
    """`ledger reconcile --until-done`, polling fast."""
    fast = ("--poll-min", "0", "--poll-max", "0.05", "--interval", "0")
    return ledger("reconcile", "--until-done", *fast)


def model_args(*models: str) -> list[str]:
    return [part for model in models for part in ("--model", model)]


def test_a_run_over_three_providers_reaches_normalized_with_a_result_per_row_and_model(
    tmp_path: Path, providers: Any
) -> None:
    """openai + anthropic + groq in one run: one job each, each sent to its own provider, and
    `ledger results` holds one result per (row, model) in input order, naming both."""
    write_jsonl("eval.jsonl", ROWS)
    built = submit("eval.jsonl", *model_args(*MODELS), "--max-output-tokens", "50", send=True)
    assert built.exit_code == 0, built.output
    done = reconcile()
    assert done.exit_code == 0, done.output
    jobs = query("select provider, model, state from jobs order by shard_index")
    assert [(j["provider"], j["model"], j["state"]) for j in jobs] == [
        ("openai", "gpt-4o-mini", "normalized"),
        ("anthropic", "claude-haiku-4-5", "normalized"),
        ("groq", "llama-3.1-8b-instant", "normalized"),
    ]
    stats = providers.stats()
    assert stats["batches"]["by_host"] == {"openai": 1, "groq": 1}
    assert stats["message_batches"]["created"] == 1
    out = ledger("results", "eval")
    results = [json.loads(line) for line in out.stdout.splitlines()]
    assert [(r["custom_id"], r["provider"]) for r in results] == [
        (f"q{i}-m{m}", provider)
        for i in range(1, 4)
        for m, provider in enumerate(("openai", "anthropic", "groq"), 1)
    ]
    assert [r["line_number"] for r in results] == [1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert all(r["status"] == "succeeded" for r in results)
    assert {r["model"].split("-2")[0] for r in results[:3]} >= {"claude-haiku-4-5"}
    table = list(csv.DictReader(io.StringIO(ledger("results", "eval", "--format", "csv").stdout)))
    assert [(row["provider"], row["line_number"]) for row in table[:3]] == [
        ("openai", "1"),
        ("anthropic", "1"),
        ("groq", "1"),
    ]
    for value in KEYS.values():
        assert files_holding(tmp_path, value) == []


def test_a_model_column_names_each_rows_provider(tmp_path: Path, providers: Any) -> None:
    """A row's `provider:model` sends that row there; a bare model goes to --provider."""
    rows = [
        {"id": "a", "prompt": "x", "model": "anthropic:claude-haiku-4-5"},
        {"id": "b", "prompt": "y", "model": "gpt-4o-mini"},
        {"id": "c", "prompt": "z", "model": "groq:llama-3.1-8b-instant"},
    ]
    write_jsonl("mixed.jsonl", rows)
    built = submit("mixed.jsonl", "--endpoint", "chat", "--max-output-tokens", "20", send=True)
    assert built.exit_code == 0, built.output
    assert reconcile().exit_code == 0
    results = [json.loads(line) for line in ledger("results", "mixed").stdout.splitlines()]
    assert [(r["custom_id"], r["provider"], r["status"]) for r in results] == [
        ("a", "anthropic", "succeeded"),
        ("b", "openai", "succeeded"),
        ("c", "groq", "succeeded"),
    ]
    # The shard of each job holds the bare model name: the provider prefix is ours.
    models = sorted(line["body"]["model"] for shard in shard_lines("mixed") for line in shard)
    assert models == ["claude-haiku-4-5", "gpt-4o-mini", "llama-3.1-8b-instant"]


def test_a_bad_provider_model_in_a_row_is_refused_naming_file_line_and_field(
    tmp_path: Path,
) -> None:
    """A provider with no model, or a misspelt provider before a known model: exit 2, nothing
    recorded."""
    write_jsonl("bad.jsonl", [{"id": "a", "prompt": "x", "model": "gpt-4o-mini"}])
    with open("bad.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"id": "b", "prompt": "y", "model": "anthropic:"}) + "\n")
    result = submit("bad.jsonl", "--endpoint", "chat")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: bad.jsonl:2: field \"model\": 'anthropic:' names provider anthropic but no model"
    )
    write_jsonl("typo.jsonl", [{"id": "a", "prompt": "x", "model": "antropic:claude-haiku-4-5"}])
    typo = submit("typo.jsonl", "--endpoint", "chat")
    assert typo.exit_code == 2
    assert "typo.jsonl:1: field \"model\": unknown provider 'antropic'" in typo.stderr
    assert query("select count(*) as n from runs") == [{"n": 0}]


def test_a_bad_model_option_is_refused_before_anything_is_read(tmp_path: Path) -> None:
    """`--model groq:` and the same target twice are option errors, exit 2."""
    write_jsonl("in.jsonl", ROWS)
    empty = submit("in.jsonl", "--model", "gpt-4o-mini", "--model", "groq:")
    assert empty.exit_code == 2 and "--model: 'groq:' names provider groq" in empty.stderr
    twice = submit("in.jsonl", "--model", "openai:gpt-4o-mini", "--model", "gpt-4o-mini")
    assert twice.exit_code == 2 and "openai:gpt-4o-mini given twice" in twice.stderr


def test_base_url_is_refused_for_a_run_over_several_providers(tmp_path: Path) -> None:
    """One URL cannot serve two providers: each names its base_url in ledger.toml."""
    write_jsonl("in.jsonl", ROWS)
    args = ("in.jsonl", *model_args(*MODELS[:2]), "--base-url", "http://127.0.0.1:9/v1")
    result = submit(*args, "--max-output-tokens", "5", send=True)
    assert result.exit_code == 2 and "--base-url: this run goes to 2 providers" in result.stderr


def test_retry_sends_each_request_again_to_its_own_provider(tmp_path: Path, providers: Any) -> None:
    """Cancelled part way on OpenAI and Groq, then `ledger retry`: each retry job goes to its
    parent's provider and every (row, model) ends succeeded once."""
    write_jsonl("eval.jsonl", [{"id": f"q{i}", "prompt": f"say {i}"} for i in range(1, 7)])
    providers.configure(scenario="cancel")
    models = model_args("gpt-4o-mini", "groq:llama-3.1-8b-instant")
    assert submit("eval.jsonl", *models, send=True).exit_code == 0
    assert reconcile().exit_code == 0
    first = [json.loads(line) for line in ledger("results", "eval").stdout.splitlines()]
    cancelled = sum(r["status"] == "cancelled" for r in first)
    assert 0 < cancelled < 12
    providers.configure(scenario="normal")
    retried = ledger("retry", "eval", "--poll-min", "0")
    assert retried.exit_code == 0, retried.output
    assert reconcile().exit_code == 0
    results = [json.loads(line) for line in ledger("results", "eval").stdout.splitlines()]
    assert len(results) == 12 and {r["status"] for r in results} == {"succeeded"}
    assert {(r["custom_id"][-2:], r["provider"]) for r in results} == {
        ("m1", "openai"),
        ("m2", "groq"),
    }
    pairs = query(
        "select child.provider as child, parent.provider as parent from jobs child "
        "join jobs parent on parent.id = child.parent_job_id"
    )
    assert pairs and all(p["child"] == p["parent"] for p in pairs)
