"""Anthropic sampling parameters in batches: `ledger submit --provider anthropic` forwards
`temperature` and `top_p` to the Message Batch (the emulator sees them in each request's params)
for the models that take them, and refuses at build, nothing sent, those the model refuses."""

from __future__ import annotations

from typing import Any

import pytest
from support.buildkit import prompts, submit, write_jsonl

from ledger.emulator import Emulator, EmulatorConfig

URL = "/v1/chat/completions"


def ready_line(custom_id: str, model: str, **body: Any) -> dict[str, Any]:
    """A ready chat line whose body carries its own sampling parameters."""
    messages = [{"role": "user", "content": f"question {custom_id}"}]
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": URL,
        "body": {"model": model, "messages": messages, "max_tokens": 16, **body},
    }


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The emulator, and an Anthropic key in the environment."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-sampling")
    with Emulator(EmulatorConfig(polls_per_stage=1)).start() as running:
        yield running


def sent_params(emu: Emulator) -> list[dict[str, Any]]:
    """The params of every request the emulator's Message Batches received."""
    with emu.store.lock:
        return [
            request["params"]
            for batch in emu.store.message_batches.values()
            for request in batch.requests
        ]


def test_temperature_reaches_the_message_batch_for_a_model_that_takes_it(emu: Emulator) -> None:
    """--temperature reaches every request of a prompt file; a ready line's temperature and
    top_p reach its request, on an older Claude that takes both."""
    write_jsonl("in.jsonl", prompts(2))
    args = ("--provider", "anthropic", "--model", "claude-sonnet-4", "--base-url", emu.url)
    result = submit("in.jsonl", *args, "--temperature", "0.3", send=True)
    assert result.exit_code == 0, result.output
    assert [p.get("temperature") for p in sent_params(emu)] == [0.3, 0.3]
    write_jsonl("ready.jsonl", [ready_line("a", "claude-sonnet-4", temperature=0.2, top_p=0.9)])
    result = submit("ready.jsonl", *args, "--endpoint", "chat", send=True)
    assert result.exit_code == 0, result.output
    sent = [p for p in sent_params(emu) if p.get("top_p") is not None]
    assert [(p["temperature"], p["top_p"]) for p in sent] == [(0.2, 0.9)]


def test_a_model_that_refuses_the_parameter_is_refused_at_build(emu: Emulator) -> None:
    """Opus 4.7 refuses temperature; Haiku 4.5 refuses it with top_p: exit 2, one line naming
    the line, the model and the parameter, and no batch created."""
    write_jsonl("in.jsonl", prompts(1))
    deprecated = submit(
        "in.jsonl", "--provider", "anthropic", "--model", "claude-opus-4-7",
        "--base-url", emu.url, "--temperature", "0.3", send=True,
    )  # fmt: skip
    assert deprecated.exit_code == 2
    assert "claude-opus-4-7" in deprecated.output and "temperature" in deprecated.output
    write_jsonl("both.jsonl", [ready_line("a", "claude-haiku-4-5", temperature=0.2, top_p=0.5)])
    both = submit(
        "both.jsonl", "--provider", "anthropic", "--model", "claude-haiku-4-5",
        "--endpoint", "chat", "--base-url", emu.url, send=True,
    )  # fmt: skip
    assert both.exit_code == 2
    assert both.output.startswith("error: both.jsonl:1: model claude-haiku-4-5: temperature, top_p")
    assert emu.stats()["message_batches"]["created"] == 0
