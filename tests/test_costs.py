"""Batch cost from the price table: known models priced, cached input cheaper, unknown None."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.costs import batch_cost, load_prices

PRICES = {"gpt-4o-mini": {"input": 0.075, "cached_input": 0.0375, "output": 0.30}}


def test_cost_is_tokens_times_price_per_million() -> None:
    """Input and output tokens are priced per million."""
    assert batch_cost("gpt-4o-mini", 2_000_000, 1_000_000, prices=PRICES) == pytest.approx(0.45)


def test_cached_tokens_are_the_cheaper_part_of_the_input() -> None:
    """Cached tokens are part of the input and priced at the cached rate."""
    cost = batch_cost("gpt-4o-mini", 1_000_000, 0, cached_tokens=400_000, prices=PRICES)
    assert cost == pytest.approx(0.6 * 0.075 + 0.4 * 0.0375)


def test_a_dated_snapshot_is_priced_as_its_model() -> None:
    """`gpt-4o-mini-2024-07-18` takes `gpt-4o-mini`'s price unless listed itself."""
    assert batch_cost("gpt-4o-mini-2024-07-18", 1_000_000, 0, prices=PRICES) == 0.075


def test_an_unknown_model_has_no_cost() -> None:
    """No price means an unknown cost, not a free one."""
    assert batch_cost("mystery-model", 10, 10, prices=PRICES) is None
    assert batch_cost("gpt-4o-mini", 10, 10, prices={}) is None


def test_the_price_file_is_read_when_present(tmp_path: Path) -> None:
    """`[models."NAME"]` tables are read; a missing file is an empty table."""
    path = tmp_path / "prices.toml"
    path.write_text('[models."m-1"]\ninput = 1.0\noutput = 2.0\n', encoding="utf-8")
    prices = load_prices(path)
    assert prices == {"m-1": {"input": 1.0, "output": 2.0}}
    assert batch_cost("m-1", 1_000_000, 1_000_000, prices=prices) == pytest.approx(3.0)
    assert load_prices(tmp_path / "absent.toml") == {}
