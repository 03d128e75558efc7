"""The emulator's facts table and ledger's model table agree: for every model the emulator checks,
the build refuses exactly the sampling parameters and JSON-mode bodies the emulator answers 400
to, and its context window is no larger, so ledger never sends what the emulator rejects."""

from __future__ import annotations

from typing import Any

import pytest

from ledger.emulator.model_rules import MODELS, anthropic_problem, openai_rejection
from ledger.usage.capabilities import default_table
from ledger.usage.checks import CHAT, check_request

SAMPLING_BODIES: list[dict[str, Any]] = [
    {},
    {"temperature": 0.2},
    {"temperature": 1},
    {"top_p": 0.5},
    {"temperature": 0.2, "top_p": 0.5},
    {"temperature": 0.2, "reasoning_effort": "none"},
    {"temperature": 0.2, "reasoning_effort": "low"},
]


def refused_by_build(model: str, provider: str, body: dict[str, Any]) -> bool:
    """Whether the build refuses this chat body (a warning is not a refusal)."""
    found = check_request(model, body, provider=provider, endpoint=CHAT)
    return any(not refusal.warning for refusal in found)


def refused_by_emulator(model: str, provider: str, body: dict[str, Any]) -> bool:
    """Whether the emulator answers this chat body with a 400."""
    if provider == "anthropic":
        params = {k: v for k, v in body.items() if k != "reasoning_effort"}
        return anthropic_problem({"model": model, "max_tokens": 8, **params}) is not None
    return openai_rejection(CHAT, {"model": model, **body}) is not None


@pytest.mark.parametrize("model", sorted(MODELS))
def test_the_two_tables_state_the_same_facts(model: str) -> None:
    """Same provider, sampling rule and default effort; ledger's context window is no larger."""
    facts, info = MODELS[model], default_table().lookup(model)
    assert info is not None, f"{model} is not in ledger's model table"
    assert (info.provider, info.sampling) == (facts.provider, facts.sampling)
    assert info.default_effort == facts.default_effort
    assert info.context_window is not None and info.context_window <= facts.context_window


@pytest.mark.parametrize("model", sorted(MODELS))
def test_the_build_refuses_exactly_what_the_emulator_refuses(model: str) -> None:
    """Every sampling body (and, on OpenAI, JSON mode without "json") gets the same verdict."""
    provider = MODELS[model].provider
    bodies = [{**body, "messages": [{"role": "user", "content": "hi"}]} for body in SAMPLING_BODIES]
    if provider == "anthropic":
        bodies.append({"top_k": 5, "messages": [{"role": "user", "content": "hi"}]})
    else:
        json_mode = {"response_format": {"type": "json_object"}}
        bodies.append({**json_mode, "messages": [{"role": "user", "content": "hi"}]})
        bodies.append({**json_mode, "messages": [{"role": "user", "content": "in JSON"}]})
    for body in bodies:
        expected = refused_by_emulator(model, provider, body)
        assert refused_by_build(model, provider, body) == expected, (model, body)
