"""What the body said, end to end: batches sent to the emulator over HTTP by the official SDK,
reconciled and read back with `ledger results`. Every choice of a chat request with `n > 1` is
kept, and a Responses answer cut at `max_output_tokens` (`incomplete`) has finish reason
`length`, like chat and Anthropic, while the provider's own word stays in the raw body."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from support.buildkit import query
from support.emulator_support import chat_line, responses_line

from cli import cli

FAST = ["--interval", "0.05", "--poll-min", "0.05", "--poll-max", "0.1"]


def ledger(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def run_to_results(emulator: Any, name: str, lines: list[str]) -> dict[str, dict[str, Any]]:
    """Submit ready Batch API lines as run `name`, reconcile it to the end, read its results."""
    Path(f"{name}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = ledger(
        "submit", f"{name}.jsonl", "--base-url", emulator.base_url, "--poll-min", "0.05"
    )
    assert result.exit_code == 0, result.output
    result = ledger("reconcile", "--until-done", "--base-url", emulator.base_url, *FAST)
    assert result.exit_code == 0, result.output
    result = ledger("results", name, "--format", "jsonl")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    return {record["custom_id"]: record for record in records}


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-bodies")


def test_every_choice_of_a_chat_request_with_n_above_one_is_kept(emulator: Any) -> None:
    """`n: 2`: the answer is the first choice and `choices` holds both, in order, with their
    finish reasons; a request with one choice has `choices` null."""
    records = run_to_results(
        emulator, "many", [chat_line("two", "Say hi", n=2), chat_line("one", "Say hi")]
    )
    two = records["two"]
    assert two["status"] == "succeeded" and two["text"] == "Echo: Say hi"
    assert [(c["index"], c["text"], c["finish_reason"]) for c in two["choices"]] == [
        (0, "Echo: Say hi", "stop"),
        (1, "Echo: Say hi", "stop"),
    ]
    assert records["one"]["choices"] is None
    # Both choices are billed: the usage counts the output of each.
    assert two["usage"]["output_tokens"] == 2 * records["one"]["usage"]["output_tokens"]


def test_a_responses_answer_cut_at_max_output_tokens_has_finish_reason_length(
    emulator: Any,
) -> None:
    """The emulator answers `incomplete` (reason `max_output_tokens`) as the API does; the
    result says `length`, and the downloaded output file keeps the provider's words."""
    prompt = "Tell me a long story about " + "a very patient lighthouse keeper " * 6
    records = run_to_results(
        emulator,
        "cut",
        [
            responses_line("cut", prompt, max_output_tokens=16),
            responses_line("whole", "Hi", max_output_tokens=500),
        ],
    )
    assert (records["cut"]["status"], records["cut"]["finish_reason"]) == ("truncated", "length")
    assert records["whole"]["finish_reason"] == "stop"
    [job] = query("SELECT output_path FROM jobs")
    raw = {
        line["custom_id"]: line["response"]["body"]
        for line in map(json.loads, Path(job["output_path"]).read_text().splitlines())
    }
    assert raw["cut"]["status"] == "incomplete"
    assert raw["cut"]["incomplete_details"] == {"reason": "max_output_tokens"}


def test_a_tool_call_is_kept_with_its_arguments(emulator: Any) -> None:
    """A chat request whose `tool_choice` forces a function: the emulator answers with the call
    (finish reason `tool_calls`, no text), and the result keeps its id, name and arguments."""
    lookup = {
        "type": "function",
        "function": {
            "name": "lookup",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
    forced = {"type": "function", "function": {"name": "lookup"}}
    records = run_to_results(
        emulator,
        "tools",
        [
            chat_line("call", "Oslo", tools=[lookup], tool_choice=forced),
            chat_line("text", "Oslo", tools=[lookup]),
        ],
    )
    call = records["call"]
    assert (call["status"], call["finish_reason"], call["text"]) == (
        "succeeded",
        "tool_calls",
        None,
    )
    [tool_call] = call["tool_calls"]
    assert tool_call["id"].startswith("call_") and tool_call["type"] == "function"
    assert (tool_call["name"], json.loads(tool_call["arguments"])) == (
        "lookup",
        {"city": "Echo: Oslo"},
    )
    assert records["text"]["tool_calls"] is None and records["text"]["text"] == "Echo: Oslo"
