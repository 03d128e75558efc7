"""Claude input tokens: counted by Anthropic's token-counting endpoint when asked
(`--count-claude-tokens`, one call per request, through the real SDK against the emulator's
`/v1/messages/count_tokens`); otherwise, or when it cannot be reached, approximated with
another tokenizer, and the plan says so."""

from __future__ import annotations

import json
import socket
from typing import Any

import anthropic
import pytest
from click.testing import CliRunner
from support.buildkit import prompts, submit, write_jsonl

from cli import cli
from ledger.emulator import Emulator, EmulatorConfig
from ledger.emulator.model_rules import anthropic_input_tokens

ANTHROPIC = ("--provider", "anthropic", "--model", "claude-haiku-4-5")


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The emulator, and an Anthropic key in the environment."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-tokens")
    with Emulator(EmulatorConfig(polls_per_stage=1)).start() as running:
        yield running


def plan_line(output: str) -> str:
    """The plan's first line (`run NAME: N jobs, ... est. input tokens`)."""
    return next(line for line in output.splitlines() if line.startswith("run "))


def test_the_emulator_counts_tokens_as_the_sdk_asks(emu: Emulator) -> None:
    """`client.messages.count_tokens` answers the input tokens a batch Message's usage counts;
    params the endpoint does not take (max_tokens) are a 400."""
    client = anthropic.Anthropic(api_key="sk-ant-x", base_url=emu.url, max_retries=0)
    params: dict[str, Any] = {
        "model": "claude-haiku-4-5",
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "What is 2 + 2?"}],
    }
    counted = client.messages.count_tokens(**params)
    assert counted.input_tokens == anthropic_input_tokens(params) == 15
    with pytest.raises(anthropic.BadRequestError):
        client.messages.count_tokens(**params, extra_body={"max_tokens": 5})


def test_count_claude_tokens_asks_anthropic_for_each_request(emu: Emulator) -> None:
    """With --count-claude-tokens the estimate is Anthropic's count, one call per request, and
    the plan does not call it approximate."""
    write_jsonl("in.jsonl", prompts(3))
    result = submit(
        "in.jsonl", *ANTHROPIC, "--count-claude-tokens", "--base-url", emu.url, "--dry-run"
    )
    assert result.exit_code == 0, result.output
    assert emu.stats()["requests"]["count_message_tokens"] == 3
    expected = sum(
        anthropic_input_tokens({"messages": [{"role": "user", "content": f"What is {i} + {i}?"}]})
        for i in range(1, 4)
    )
    assert plan_line(result.stdout).endswith(f", {expected} est. input tokens")
    assert "approximated" not in result.stderr


def test_without_anthropic_the_estimate_says_it_is_approximate(emu: Emulator) -> None:
    """Without the flag (no call made), or when Anthropic cannot be reached, the count is
    approximate: a warning says so and the plan marks it."""
    write_jsonl("in.jsonl", prompts(2))
    plain = submit("in.jsonl", *ANTHROPIC, "--dry-run")
    assert plain.exit_code == 0, plain.output
    assert plan_line(plain.stdout).endswith("est. input tokens (approximate)")
    assert "input tokens approximated with o200k_base" in plain.stderr
    assert emu.stats()["requests"].get("count_message_tokens", 0) == 0
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    write_jsonl("other.jsonl", prompts(2))
    offline = submit(
        "other.jsonl", *ANTHROPIC, "--count-claude-tokens", "--base-url", closed, "--dry-run"
    )
    assert offline.exit_code == 0, offline.output
    assert "Anthropic's token counting failed" in offline.stderr
    assert plan_line(offline.stdout).endswith("est. input tokens (approximate)")


def test_an_openai_run_is_counted_exactly() -> None:
    """OpenAI models are counted with their own tokenizer: no approximate mark."""
    write_jsonl("in.jsonl", prompts(2))
    result = submit("in.jsonl", "--model", "gpt-4o-mini")
    assert result.exit_code == 0, result.output
    assert plan_line(result.stdout).endswith(" est. input tokens")


def test_status_shows_whether_the_estimate_is_approximate(emu: Emulator) -> None:
    """`ledger status RUN` and its JSON carry the estimate and whether it is approximate."""
    write_jsonl("in.jsonl", prompts(2))
    assert submit("in.jsonl", *ANTHROPIC, "--dry-run").exit_code == 0
    shown = CliRunner().invoke(cli, ["status", "in"], catch_exceptions=False)
    assert "  est. input tokens: " in shown.output and "(approximate)" in shown.output
    report = json.loads(
        CliRunner().invoke(cli, ["status", "in", "--json"], catch_exceptions=False).output
    )
    assert report[0]["token_estimate"] == "approximate" and report[0]["est_input_tokens"] > 0
