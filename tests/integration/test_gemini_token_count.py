"""Gemini input tokens: counted by Google's countTokens when asked (`--count-gemini-tokens`, one
call per request, through the real `google-genai` SDK against the emulator's
`models/{model}:countTokens`); otherwise, or when it cannot be reached, approximated with another
tokenizer, and the plan says so. `--count-claude-tokens` keeps its meaning for Claude."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from support.buildkit import prompts, submit, write_jsonl

from ledger.emulator import Emulator, EmulatorConfig
from ledger.emulator.gemini_batches import prompt_tokens

GEMINI = ("--provider", "gemini", "--model", "gemini-2.5-flash")
KEY = "AIzaSy-LEAKCANARY-gemini-tokens-0123456789"


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The emulator, and a Gemini key in the environment."""
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    with Emulator(EmulatorConfig(polls_per_stage=1)).start() as running:
        yield running


def plan_line(output: str) -> str:
    return next(line for line in output.splitlines() if line.startswith("run "))


def expected_tokens(count: int) -> int:
    return sum(
        prompt_tokens([{"role": "user", "parts": [{"text": f"What is {i} + {i}?"}]}])
        for i in range(1, count + 1)
    )


def test_count_gemini_tokens_asks_google_for_each_request(emu: Emulator) -> None:
    """With --count-gemini-tokens the estimate is Gemini's count, one call per request, the
    plan is not marked approximate, and the key appears nowhere in the output."""
    write_jsonl("in.jsonl", prompts(3))
    result = submit(
        "in.jsonl", *GEMINI, "--count-gemini-tokens", "--base-url", emu.url, "--dry-run"
    )
    assert result.exit_code == 0, result.output
    assert emu.stats()["requests"]["gemini_count_tokens"] == 3
    assert plan_line(result.stdout).endswith(f", {expected_tokens(3)} est. input tokens")
    assert "approximate" not in result.stderr + result.stdout
    assert KEY not in result.output


def test_without_google_the_gemini_estimate_is_approximate(emu: Emulator) -> None:
    """Without the flag (no call), with only --count-claude-tokens (Claude's flag), or when
    Google cannot be reached, the count is approximate: a warning says so, the plan marks it."""
    write_jsonl("in.jsonl", prompts(2))
    plain = submit("in.jsonl", *GEMINI, "--count-claude-tokens", "--dry-run")
    assert plain.exit_code == 0, plain.output
    assert plan_line(plain.stdout).endswith("est. input tokens (approximate)")
    assert "--count-gemini-tokens asks Google" in plain.stderr
    assert emu.stats()["requests"].get("gemini_count_tokens", 0) == 0
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    write_jsonl("other.jsonl", prompts(2))
    offline = submit(
        "other.jsonl", *GEMINI, "--count-gemini-tokens", "--base-url", closed, "--dry-run"
    )
    assert offline.exit_code == 0, offline.output
    assert "Gemini's token counting failed" in offline.stderr
    assert plan_line(offline.stdout).endswith("est. input tokens (approximate)")
    assert KEY not in offline.output
