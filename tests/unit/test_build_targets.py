"""Building a run over several models: `--model` repeated fans every row out, one shard per
provider and model, custom_ids kept unique; `provider:model` is read wherever a model is named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.buildkit import query, shard_lines, submit, write_jsonl

from ledger.build.bodies import RowProblem
from ledger.build.targets import Target, TargetParser, fanned_custom_id

PROVIDERS = ("openai", "anthropic", "groq")


def parser() -> TargetParser:
    return TargetParser("openai", PROVIDERS, lambda model: model == "claude-haiku-4-5")


def test_a_known_provider_before_the_first_colon_names_the_provider() -> None:
    """`anthropic:claude-haiku-4-5` is Anthropic's model; a bare name is --provider's."""
    assert parser().parse("anthropic:claude-haiku-4-5") == Target("anthropic", "claude-haiku-4-5")
    assert parser().parse("gpt-4o-mini") == Target("openai", "gpt-4o-mini")
    assert parser().parse("groq:openai/gpt-oss-20b") == Target("groq", "openai/gpt-oss-20b")


def test_model_names_with_colons_of_their_own_stay_whole() -> None:
    """Ollama tags and fine-tune ids hold colons; an unknown prefix is part of the name."""
    assert parser().parse("llama3:8b") == Target("openai", "llama3:8b")
    fine_tune = "ft:gpt-4o-mini-2024-07-18:acme::abc123"
    assert parser().parse(fine_tune) == Target("openai", fine_tune)


def test_a_provider_without_a_model_or_a_misspelt_provider_is_a_row_problem() -> None:
    """`anthropic:` names no model; `antropic:` before a model the table knows is a typo."""
    with pytest.raises(RowProblem) as empty:
        parser().parse("anthropic:")
    assert empty.value.field == "model" and "no model" in empty.value.message
    with pytest.raises(RowProblem) as typo:
        parser().parse("antropic:claude-haiku-4-5")
    assert "unknown provider 'antropic'" in typo.value.message


def test_fanned_custom_ids_carry_the_targets_place_and_stay_within_64() -> None:
    """One target keeps the id; several add -m1, -m2, ...; too long is the row's problem."""
    assert fanned_custom_id("q1", 1, 1) == "q1"
    assert [fanned_custom_id("q1", n, 3) for n in (1, 2, 3)] == ["q1-m1", "q1-m2", "q1-m3"]
    with pytest.raises(RowProblem) as long:
        fanned_custom_id("x" * 62, 2, 2)
    assert long.value.field == "custom_id"


def test_every_row_goes_to_each_model_one_shard_per_provider_and_model(tmp_path: Path) -> None:
    """Three rows to three models: three jobs, each with its provider, its model in every body,
    and nine requests whose custom_ids are unique."""
    write_jsonl("in.jsonl", [{"id": f"q{i}", "prompt": f"say {i}"} for i in range(1, 4)])
    models = ("gpt-4o-mini", "anthropic:claude-haiku-4-5", "groq:llama-3.1-8b-instant")
    result = submit("in.jsonl", *[a for m in models for a in ("--model", m)])
    assert result.exit_code == 0, result.output
    jobs = query("select provider, model, request_count from jobs order by shard_index")
    assert [(j["provider"], j["model"], j["request_count"]) for j in jobs] == [
        ("openai", "gpt-4o-mini", 3),
        ("anthropic", "claude-haiku-4-5", 3),
        ("groq", "llama-3.1-8b-instant", 3),
    ]
    shards = shard_lines("in")
    assert [line["custom_id"] for line in shards[1]] == ["q1-m2", "q2-m2", "q3-m2"]
    assert {line["body"]["model"] for line in shards[2]} == {"llama-3.1-8b-instant"}
    # Anthropic takes chat only, so the run's rows went to chat for every provider.
    assert {line["url"] for shard in shards for line in shard} == {"/v1/chat/completions"}
    rows = query("select custom_id, line_number from requests order by custom_id")
    assert len({r["custom_id"] for r in rows}) == 9
    assert [r["line_number"] for r in rows[:3]] == [1, 1, 1]
    assert "anthropic:claude-haiku-4-5" in result.stdout  # the plan names another provider's job
    manifest = json.loads(Path("runs/in/manifest.json").read_text())
    assert [job["provider"] for job in manifest["jobs"]] == ["openai", "anthropic", "groq"]


def test_a_row_naming_its_model_goes_there_only(tmp_path: Path) -> None:
    """With several --model, a row with a model column is not fanned out."""
    rows = [{"id": "a", "prompt": "x"}, {"id": "b", "prompt": "y", "model": "groq:llama3-8b"}]
    write_jsonl("in.jsonl", rows)
    result = submit("in.jsonl", "--model", "gpt-4o-mini", "--model", "groq:llama-3.1-8b-instant")
    assert result.exit_code == 0, result.output
    got = query("select custom_id from requests order by custom_id")
    assert [r["custom_id"] for r in got] == ["a-m1", "a-m2", "b"]


def test_limit_counts_rows_when_they_fan_out(tmp_path: Path) -> None:
    """--limit 2 over two models takes two rows, each to both models."""
    write_jsonl("in.jsonl", [{"id": f"q{i}", "prompt": "x"} for i in range(1, 6)])
    result = submit("in.jsonl", "--model", "gpt-4o-mini", "--model", "gpt-4.1-mini", "--limit", "2")
    assert result.exit_code == 0, result.output
    got = query("select custom_id from requests order by custom_id")
    assert [r["custom_id"] for r in got] == ["q1-m1", "q1-m2", "q2-m1", "q2-m2"]


def test_each_providers_shards_are_cut_to_its_own_limits(tmp_path: Path) -> None:
    """A host that takes one request a batch gets one-request shards; OpenAI's hold all three."""
    Path("ledger.toml").write_text(
        '[providers.tiny]\nbase_url = "http://127.0.0.1:9/v1"\nmax_requests_per_batch = 1\n'
    )
    write_jsonl("in.jsonl", [{"id": f"q{i}", "prompt": "x"} for i in range(1, 4)])
    result = submit("in.jsonl", "--model", "gpt-4o-mini", "--model", "tiny:m")
    assert result.exit_code == 0, result.output
    jobs = query("select provider, request_count from jobs order by shard_index")
    assert sorted((j["provider"], j["request_count"]) for j in jobs) == [
        ("openai", 3),
        ("tiny", 1),
        ("tiny", 1),
        ("tiny", 1),
    ]


def test_ready_lines_cannot_fan_out(tmp_path: Path) -> None:
    """Ready Batch API lines name their model in body.model: several --model is refused."""
    line = {
        "custom_id": "a",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]},
    }
    write_jsonl("ready.jsonl", [line])
    result = submit("ready.jsonl", "--model", "gpt-4o-mini", "--model", "groq:m")
    assert result.exit_code == 2 and "use simple rows" in result.stderr
    one = submit("ready.jsonl", "--model", "groq:gpt-4o-mini", "--run", "one")
    assert one.exit_code == 0, one.output
    assert query("select provider from jobs") == [{"provider": "groq"}]


def test_ledger_toml_defaults_can_list_several_models(tmp_path: Path) -> None:
    """`[defaults] model` takes a list, as if --model were given once per entry; the command
    line's --model replaces it."""
    Path("ledger.toml").write_text('[defaults]\nmodel = ["gpt-4o-mini", "groq:llama3-8b"]\n')
    write_jsonl("in.jsonl", [{"id": "a", "prompt": "x"}])
    assert submit("in.jsonl").exit_code == 0
    assert query("select provider, model from jobs order by shard_index") == [
        {"provider": "openai", "model": "gpt-4o-mini"},
        {"provider": "groq", "model": "llama3-8b"},
    ]
    assert submit("in.jsonl", "--run", "one", "--model", "gpt-4.1-mini").exit_code == 0
    one = query("select model from jobs where run_id = 2")
    assert one == [{"model": "gpt-4.1-mini"}]
