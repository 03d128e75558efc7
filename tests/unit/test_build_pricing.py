"""The price table: packaged at batch rates, overridable by file or $LEDGER_PRICES, and the cost
estimate says whether output is included."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.errors import InputError
from ledger.usage.pricing import (
    ModelUsage,
    Price,
    PriceTable,
    estimate_cost,
    load_price_table,
    packaged_price_file,
)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_packaged_table_prices_gpt_4o_mini_at_half_the_list_price() -> None:
    """gpt-4o-mini lists at $0.15 / $0.60 per 1M: batch is $0.075 / $0.30."""
    table = load_price_table()
    assert table.price_for("gpt-4o-mini") == Price(0.075, 0.30)
    assert table.sources == (str(packaged_price_file()),)


def test_dated_snapshots_use_their_models_price() -> None:
    """gpt-4o-mini-2024-07-18 and gpt-3.5-turbo-0125 are priced as their models."""
    table = load_price_table()
    assert table.price_for("gpt-4o-mini-2024-07-18") == table.price_for("gpt-4o-mini")
    assert table.price_for("gpt-3.5-turbo-0125") == table.price_for("gpt-3.5-turbo")
    assert table.price_for("gpt-4o-audio-preview") is None


def test_a_price_file_replaces_and_adds_models(tmp_path: Path) -> None:
    """The override's models win; the packaged ones it does not name stay."""
    override = write(
        tmp_path / "p.toml",
        '[models."gpt-4o-mini"]\ninput = 1.0\noutput = 2.0\n'
        '[models."acme-1"]\ninput = 0.5\noutput = 0\n',
    )
    table = load_price_table(override)
    assert table.price_for("gpt-4o-mini") == Price(1.0, 2.0)
    assert table.price_for("acme-1") == Price(0.5, 0.0)
    assert table.price_for("gpt-4o") == Price(1.25, 5.0)


def test_ledger_prices_environment_variable_names_the_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """$LEDGER_PRICES is read when no file is passed."""
    monkeypatch.setenv(
        "LEDGER_PRICES", str(write(tmp_path / "env.toml", '[models."x"]\ninput = 3\noutput = 4\n'))
    )
    assert load_price_table().price_for("x") == Price(3.0, 4.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not toml [", "not a readable TOML price table"),
        ("[other]\n", 'no [models."NAME"] tables'),
        (
            '[models."m"]\ninput = "cheap"\noutput = 1\n',
            'models."m": field "input": must be a number',
        ),
        ('[models."m"]\ninput = 1\n', 'field "output"'),
    ],
)
def test_a_bad_price_file_is_refused_with_its_name(tmp_path: Path, text: str, message: str) -> None:
    """Malformed TOML, no models, or a price that is not a number: one clear error."""
    path = write(tmp_path / "bad.toml", text)
    with pytest.raises(InputError, match=r"bad\.toml") as caught:
        load_price_table(path)
    assert message in str(caught.value)


def test_cost_of_usage() -> None:
    """1M input at $0.075 and 2M output at $0.30: $0.675; unknown model: None."""
    table = PriceTable({"m": Price(0.075, 0.30)})
    assert table.cost("m", 1_000_000, 2_000_000) == pytest.approx(0.675)
    assert table.cost("other", 1, 1) is None


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


def test_unpriced_models_are_named() -> None:
    """Tokens of a model without a price are left out of the USD figure, and named."""
    cost = estimate_cost(PriceTable({}), [ModelUsage("acme-1", 10, None)])
    assert cost.unpriced_models == ("acme-1",) and "no price for acme-1" in cost.describe()


def test_cached_input_is_the_cheaper_part_of_the_input(tmp_path: Path) -> None:
    """Cached prompt tokens are priced at `cached_input`, the rest of the input at `input`."""
    path = tmp_path / "prices.toml"
    path.write_text('[models."m-1"]\ninput = 1.0\ncached_input = 0.5\noutput = 2.0\n')
    table = load_price_table(path)
    cost = table.cost("m-1", 1_000_000, 1_000_000, cached_tokens=400_000)
    assert cost == pytest.approx(0.6 * 1.0 + 0.4 * 0.5 + 2.0)
    assert table.cost("unpriced-model", 10, 10) is None


def test_anthropic_snapshots_and_latest_aliases_use_their_models_price() -> None:
    """claude-3-5-haiku-20241022 and claude-3-5-haiku-latest cost what claude-3-5-haiku costs."""
    table = load_price_table()
    base = table.price_for("claude-3-5-haiku")
    assert base is not None
    assert table.price_for("claude-3-5-haiku-20241022") == base
    assert table.price_for("claude-3-5-haiku-latest") == base
