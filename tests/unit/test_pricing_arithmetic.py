"""Cost arithmetic: cached input at the cached rate, Anthropic cache writes at 1.25x (5 min) or 2x
(1 h) and reads at their rate, long-context bands per request, and no price means unknown."""

from __future__ import annotations

import pytest

from ledger.usage.price import LongContext, Price, TokenUsage, token_usage
from ledger.usage.pricing import (
    ModelUsage,
    PriceTable,
    estimate_cost,
    load_price_table,
    request_cost,
    usd,
)


def test_openai_chat_usage_reads_cached_tokens() -> None:
    """Chat Completions: prompt_tokens, completion_tokens, prompt_tokens_details.cached_tokens."""
    usage = {
        "prompt_tokens": 3000,
        "completion_tokens": 800,
        "prompt_tokens_details": {"cached_tokens": 2000},
    }
    assert token_usage(usage) == TokenUsage(3000, 800, 2000)


def test_openai_responses_usage_reads_cached_tokens() -> None:
    """Responses: input_tokens, output_tokens, input_tokens_details.cached_tokens."""
    usage = {"input_tokens": 50, "output_tokens": 7, "input_tokens_details": {"cached_tokens": 40}}
    assert token_usage(usage) == TokenUsage(50, 7, 40)


def test_anthropic_usage_adds_cache_reads_and_writes_to_the_prompt() -> None:
    """input_tokens leaves out cache reads and writes; the TTL split comes from cache_creation."""
    usage = {
        "input_tokens": 100,
        "output_tokens": 9,
        "cache_read_input_tokens": 1000,
        "cache_creation_input_tokens": 200,
        "cache_creation": {"ephemeral_5m_input_tokens": 150, "ephemeral_1h_input_tokens": 50},
    }
    assert token_usage(usage) == TokenUsage(1300, 9, 1000, 150, 50)


def test_an_anthropic_cache_write_without_the_split_is_a_5_minute_write() -> None:
    """5 minutes is the default TTL, so an unsplit write is priced as one."""
    usage = {"input_tokens": 1, "output_tokens": 0, "cache_creation_input_tokens": 10}
    assert token_usage(usage) == TokenUsage(11, 0, 0, 10, 0)


def test_no_usage_object_is_none() -> None:
    """A body without usage has no token counts (not zero)."""
    assert token_usage(None) is None and token_usage("x") is None


def test_openai_cached_input_is_charged_at_the_cached_rate() -> None:
    """gpt-4o-mini, 1M prompt of which 400K cached, 100K output: by hand $0.09."""
    price = load_price_table().price_for("gpt-4o-mini")
    assert price is not None and price == Price(0.075, 0.30, cached_input_per_million=0.0375)
    # 600,000 x 0.075 + 400,000 x 0.0375 + 100,000 x 0.30 = 45,000 + 15,000 + 30,000 micro-USD
    assert price.cost(1_000_000, 100_000, cached_tokens=400_000) == pytest.approx(0.09)


def test_anthropic_cache_writes_and_reads_at_their_rates() -> None:
    """claude-sonnet-4-5 in a batch: input $1.50, 5-min write $1.875, 1-h write $3, read $0.15."""
    usage = {
        "input_tokens": 100_000,
        "output_tokens": 10_000,
        "cache_read_input_tokens": 1_000_000,
        "cache_creation_input_tokens": 200_000,
        "cache_creation": {
            "ephemeral_5m_input_tokens": 150_000,
            "ephemeral_1h_input_tokens": 50_000,
        },
    }
    price = load_price_table().price_for("claude-sonnet-4-5-20250929")
    # 100K x 1.50 + 150K x 1.875 + 50K x 3.00 + 1M x 0.15 + 10K x 7.50
    # = 0.15 + 0.28125 + 0.15 + 0.15 + 0.075
    assert request_cost(price, usage) == pytest.approx(0.80625)


def test_the_anthropic_multipliers_apply_when_a_row_gives_no_cache_rate() -> None:
    """A user row with only input/output: reads 0.1x, 5-min writes 1.25x, 1-h writes 2x."""
    table = load_price_table(
        models={"claude-new": {"provider": "anthropic", "input": 2, "output": 10}}
    )
    price = table.price_for("claude-new")
    assert price is not None
    assert (
        price.cached_input_per_million,
        price.cache_write_5m_per_million,
        price.cache_write_1h_per_million,
    ) == (pytest.approx(0.2), pytest.approx(2.5), pytest.approx(4.0))


def test_a_long_prompt_is_priced_at_the_long_context_band() -> None:
    """gpt-5.4 over 272K prompt tokens: input $2.50, cached $0.25, output $11.25 (batch)."""
    price = load_price_table().price_for("gpt-5.4")
    assert price is not None
    # 200K x 2.50 + 100K x 0.25 + 1K x 11.25 = 0.5 + 0.025 + 0.01125
    assert price.cost(300_000, 1_000, cached_tokens=100_000) == pytest.approx(0.53625)
    # At the threshold the base band applies: 272K x 1.25 = 0.34
    assert price.cost(272_000) == pytest.approx(0.34)


def test_cache_parts_never_exceed_the_prompt() -> None:
    """A usage that claims more cached tokens than prompt tokens is capped at the prompt."""
    price = Price(1.0, 0.0, cached_input_per_million=0.5)
    assert price.cost(100, cached_tokens=500) == pytest.approx(100 * 0.5 / 1_000_000)


def test_band_chosen_per_request() -> None:
    """Two 200K requests are not one 400K request: each is priced at the base band."""
    price = Price(1.0, 0.0, long_context=LongContext(300_000, Price(2.0, 0.0)))
    one = {"input_tokens": 200_000, "output_tokens": 0}
    assert 2 * (request_cost(price, one) or 0) == pytest.approx(0.4)
    assert price.cost(400_000) == pytest.approx(0.8)


def test_no_price_is_unknown_never_zero() -> None:
    """A model without a price costs None, from a table and from a body's usage."""
    table = PriceTable({})
    assert table.cost("acme-1", 10, 10) is None
    assert request_cost(None, {"prompt_tokens": 5, "completion_tokens": 1}) is None


def test_a_request_without_usage_costs_nothing() -> None:
    """A failed request has no usage: 0.0 at a known price."""
    assert request_cost(Price(1.0, 1.0), None) == 0.0


def test_estimate_with_output_bound() -> None:
    """Input plus output at max_output_tokens, and the line says it is an upper bound."""
    table = PriceTable({"m": Price(1.0, 4.0)})
    cost = estimate_cost(table, [ModelUsage("m", 500_000, 100_000), ModelUsage("m", 500_000, 0)])
    assert (cost.input_tokens, cost.output_tokens) == (1_000_000, 100_000)
    assert cost.total_usd == pytest.approx(1.4)
    assert "output at most" in cost.describe() and "max_output_tokens" in cost.describe()


def test_estimate_is_input_only_when_a_job_has_no_output_bound() -> None:
    """One job without max_output_tokens makes the output unknown, and the line says so."""
    table = PriceTable({"m": Price(1.0, 4.0)})
    cost = estimate_cost(table, [ModelUsage("m", 1_000_000, 10), ModelUsage("m", 0, None)])
    assert cost.output_usd is None and cost.total_usd == pytest.approx(1.0)
    assert "input only" in cost.describe()


def test_an_estimate_with_only_unpriced_models_is_unknown() -> None:
    """No price at all: the total is None and the line says unknown, never $0.00."""
    cost = estimate_cost(PriceTable({}), [ModelUsage("acme-1", 10, None)])
    assert cost.total_usd is None and cost.unpriced_models == ("acme-1",)
    assert cost.describe().startswith("unknown: no price for acme-1")


def test_an_estimate_missing_some_prices_is_a_lower_bound() -> None:
    """A priced and an unpriced model: "at least" the priced part, and the other is named."""
    table = PriceTable({"m": Price(1.0, 0.0)})
    cost = estimate_cost(table, [ModelUsage("m", 1_000_000, None), ModelUsage("x", 5, None)])
    assert cost.total_usd is None and cost.priced_usd == pytest.approx(1.0)
    assert cost.describe().startswith("at least $1.00")
    assert "no price for x" in cost.describe()


def test_usd_formats_small_amounts_and_unknown() -> None:
    """Cents for a dollar or more, six decimals below, and None as unknown."""
    assert (usd(12.345), usd(0.000425), usd(0.0), usd(None)) == (
        "$12.35",
        "$0.000425",
        "$0.00",
        "unknown",
    )
