"""Prices of the compatible hosts: a `provider:model` row prices that host's jobs first, and an
Azure deployment (a name of the user's) is priced as the model it deploys with `same_as`."""

from __future__ import annotations

import pytest

from ledger.errors import InputError
from ledger.usage.capabilities import load_model_table
from ledger.usage.pricing import ModelUsage, PriceTable, estimate_cost


def test_a_provider_model_row_prices_that_hosts_jobs_only() -> None:
    """groq:openai/gpt-oss-120b is Groq's batch price; another host's job gets no such price."""
    table = load_model_table()
    prices = PriceTable.from_models(table)
    groq = prices.price_for("openai/gpt-oss-120b", "groq")
    assert groq is not None and groq.cost(1_000_000, 1_000_000) == pytest.approx(0.075 + 0.30)
    assert prices.price_for("openai/gpt-oss-120b", "together") is None
    info = table.lookup("openai/gpt-oss-120b", "groq")
    assert info is not None and info.provider == "groq"


def test_an_azure_deployment_is_priced_as_the_model_it_deploys() -> None:
    """`same_as` copies the model's row (price, limits, rules); the row's own fields win."""
    rows = {"eval-4o-mini": {"provider": "azure", "same_as": "gpt-4o-mini"}}
    table = load_model_table(rows)
    deployment, model = table.lookup("eval-4o-mini"), table.lookup("gpt-4o-mini")
    assert deployment is not None and model is not None
    assert deployment.provider == "azure" and deployment.price == model.price
    assert deployment.context_window == model.context_window
    cost = estimate_cost(
        PriceTable.from_models(table), [ModelUsage("eval-4o-mini", 1_000_000, 0, "azure")]
    )
    assert cost.unpriced_models == () and cost.input_usd == pytest.approx(0.075)


def test_same_as_an_unknown_model_is_refused_naming_the_row() -> None:
    """A typo in same_as is a configuration error, not a silently unpriced deployment."""
    with pytest.raises(InputError) as refused:
        load_model_table({"d": {"provider": "azure", "same_as": "gpt-4o-minii"}})
    assert str(refused.value).startswith('models."d": field "same_as": \'gpt-4o-minii\'')
