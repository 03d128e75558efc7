"""What the spend checks read from the configuration: the account a queue belongs to (a name,
never the key), and the enqueued-token limit of a model's queue."""

from __future__ import annotations

from pathlib import Path

from ledger.config import parse_config
from ledger.spend import Budget
from ledger.spend.queues import queue_limit


def budget_of(document: dict[str, object]) -> Budget:
    return Budget.from_config(parse_config(document, Path("ledger.toml")))


def test_an_account_is_named_in_the_file_or_after_the_provider_and_host() -> None:
    """`[providers.NAME] account` names the queue; without it, the provider and the API's host."""
    budget = budget_of({"providers": {"anthropic": {"account": "team-a"}}})
    assert budget.account("anthropic", "https://api.anthropic.com") == "team-a"
    assert budget.account("openai", "http://127.0.0.1:8000/v1") == "openai@127.0.0.1:8000"
    assert budget.account("openai", None) == "openai@api.openai.com"


def test_a_queue_limit_comes_from_the_file_the_option_or_the_tier() -> None:
    """`[budget] enqueued_tokens` wins, then --max-enqueued-tokens, then the model table's limit
    at `queue_tier`; a tier the table has no figure for, or no tier, sets no limit."""
    budget = budget_of({"budget": {"queue_tier": 2, "enqueued_tokens": {"gpt-4.1": 7}}})
    assert queue_limit(budget, "gpt-4.1", 99) == 7
    assert queue_limit(budget, "gpt-4o-mini", 99) == 99
    assert queue_limit(budget, "gpt-4o-mini") == 20_000_000
    assert queue_limit(budget, "gpt-4o-mini-2024-07-18") == 20_000_000
    assert queue_limit(budget, "gpt-4o") is None  # the table knows tier 1 only
    assert queue_limit(budget_of({"budget": {"queue_tier": 1}}), "gpt-4o") == 90_000
    assert queue_limit(budget_of({}), "gpt-4o-mini") is None
