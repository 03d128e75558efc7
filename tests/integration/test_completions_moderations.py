"""Every text endpoint the openai SDK lists for batches (`batches.create(endpoint=...)`):
`/v1/completions` and `/v1/moderations` are built (simple rows and ready lines), sent, answered
by the emulator and normalized, over real HTTP."""

from __future__ import annotations

import json
from typing import Any, get_args, get_type_hints

import pytest
from openai.types import batch_create_params
from support.buildkit import submit, write_jsonl

from ledger import Ledger
from ledger.build.endpoints import ENDPOINTS
from ledger.emulator import Emulator, EmulatorConfig


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The emulator, and an OpenAI key in the environment."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-endpoints")
    with Emulator(EmulatorConfig(polls_per_stage=1)).start() as running:
        yield running


def run_through(emu: Emulator, path: str, **options: Any) -> dict[str, Any]:
    """Submit `path`, reconcile until done, and return the results by custom_id."""
    with Ledger.open("ledger.db", base_url=emu.base_url, poll_min=0.0, poll_max=0.05) as ledger:
        plan = ledger.submit(path, **options)
        ledger.reconcile(until_done=True, timeout=60)
        return {r.custom_id: r for r in ledger.results(plan.run_name)}


def test_every_text_endpoint_of_the_sdk_can_be_built() -> None:
    """The build knows each text endpoint of the SDK's Literal (images and videos aside)."""
    hints = get_type_hints(batch_create_params.BatchCreateParams, include_extras=True)
    literal = get_args(get_args(hints["endpoint"])[0])
    text = {e for e in literal if not e.startswith(("/v1/images", "/v1/videos"))}
    assert text == set(ENDPOINTS.values())


def test_completions_rows_are_sent_and_their_text_comes_back(emu: Emulator) -> None:
    """Simple rows with --endpoint completions: a prompt and max_tokens; the text and the
    finish reason come back (cut at 3 tokens: `truncated`)."""
    write_jsonl("c.jsonl", [{"id": "a", "prompt": "Say hi"}, {"id": "b", "prompt": "x y z"}])
    results = run_through(
        emu, "c.jsonl", endpoint="completions", model="gpt-3.5-turbo-instruct", max_output_tokens=3
    )
    assert results["a"].text == "Echo: Say"
    assert results["a"].finish_reason == "length" and results["a"].status == "truncated"
    assert results["b"].status == "truncated" and results["b"].usage.input_tokens == 3


def test_moderations_ready_lines_come_back_as_json_verdicts(emu: Emulator) -> None:
    """Ready /v1/moderations lines: each result's json is the verdict (a list for a list
    input), and its text that JSON."""
    lines = [
        {"custom_id": "one", "method": "POST", "url": "/v1/moderations",
         "body": {"model": "omni-moderation-latest", "input": "hello"}},
        {"custom_id": "two", "method": "POST", "url": "/v1/moderations",
         "body": {"model": "omni-moderation-latest", "input": ["a", "b"]}},
    ]  # fmt: skip
    write_jsonl("m.jsonl", lines)
    results = run_through(emu, "m.jsonl")
    one, two = results["one"], results["two"]
    assert one.succeeded and one.json["flagged"] is False
    assert set(one.json["categories"]) >= {"hate", "violence"}
    assert json.loads(one.text or "") == one.json
    assert [verdict["flagged"] for verdict in two.json] == [False, False]


def test_moderations_rows_take_no_generation_options() -> None:
    """--endpoint moderations refuses --temperature as embeddings does; a plain row builds."""
    write_jsonl("m.jsonl", [{"id": "a", "input": "hello"}])
    refused = submit("m.jsonl", "--endpoint", "moderations", "--model", "omni-moderation-latest",
                     "--temperature", "0.5")  # fmt: skip
    assert refused.exit_code == 2
    assert "the moderations endpoint has no such parameter" in refused.output
    built = submit("m.jsonl", "--endpoint", "moderations", "--model", "omni-moderation-latest")
    assert built.exit_code == 0, built.output
