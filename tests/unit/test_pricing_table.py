"""The model table as a price table: packaged rows, dated snapshots, and overrides from
ledger.toml, `--prices FILE` and $LEDGER_PRICES (files of the table's shape, or the old prices)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.errors import InputError
from ledger.usage.capabilities import load_model_table, packaged_table_file
from ledger.usage.price import Price
from ledger.usage.pricing import load_price_table


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_the_packaged_table_is_the_only_source_by_default() -> None:
    """Without overrides the prices come from ledger/usage/data/models.toml."""
    assert load_price_table().sources == (str(packaged_table_file()),)


def test_dated_snapshots_use_their_models_row() -> None:
    """gpt-4o-mini-2024-07-18, claude-haiku-4-5-20251001 and -latest aliases find their model."""
    table = load_model_table()
    assert table.lookup("gpt-4o-mini-2024-07-18") == table.lookup("gpt-4o-mini")
    assert table.lookup("gpt-4.1-2025-04-14") == table.lookup("gpt-4.1")
    assert table.lookup("claude-haiku-4-5-20251001") == table.lookup("claude-haiku-4-5")
    assert table.lookup("claude-3-5-haiku-latest") == table.lookup("claude-3-5-haiku")
    assert table.lookup("gpt-4o-audio-preview") is None


def test_a_snapshot_with_its_own_row_keeps_it() -> None:
    """gpt-4o-2024-05-13 is not gpt-4o: $2.50 / $7.50 at batch rates, no cached rate, 4K output."""
    table = load_model_table()
    old, current = table.lookup("gpt-4o-2024-05-13"), table.lookup("gpt-4o")
    assert old is not None and current is not None
    assert old.price == Price(2.50, 7.50)
    assert current.price == Price(1.25, 5.00, cached_input_per_million=0.625)
    assert (old.max_output_tokens, current.max_output_tokens) == (4_096, 16_384)
    assert load_price_table().price_for("gpt-4o-2024-08-06") == current.price


def test_current_models_have_prices() -> None:
    """The gpt-5.x, o-series, gpt-4.1 and Claude 4.5+/5 families are priced, never at $0."""
    table = load_price_table()
    for model in (
        "gpt-5.5",
        "gpt-5.5-pro",
        "gpt-5.4",
        "gpt-5.4-mini",
        "gpt-5.4-nano",
        "gpt-5.2-pro",
        "gpt-5-nano-2025-08-07",
        "o3-pro",
        "o4-mini-2025-04-16",
        "text-embedding-3-small",
        "claude-haiku-4-5-20251001",
        "claude-sonnet-4-5-20250929",
        "claude-opus-4-1-20250805",
        "claude-opus-4-8",
        "claude-sonnet-5",
        "claude-opus-5-5",
    ):
        price = table.price_for(model)
        assert price is not None and price.input_per_million > 0, model


def test_a_price_file_replaces_a_whole_price_and_adds_models(tmp_path: Path) -> None:
    """An old-style price file: its models' prices replace the packaged ones (cached rate too)."""
    override = write(
        tmp_path / "p.toml",
        '[models."gpt-4o-mini"]\ninput = 1.0\noutput = 2.0\n'
        '[models."acme-1"]\ninput = 0.5\noutput = 0\n',
    )
    table = load_price_table(override)
    assert table.price_for("gpt-4o-mini") == Price(1.0, 2.0)
    assert table.price_for("acme-1") == Price(0.5, 0.0)
    assert table.price_for("gpt-4o") == Price(1.25, 5.0, cached_input_per_million=0.625)
    assert table.sources == (str(packaged_table_file()), str(override))


def test_a_price_override_keeps_the_models_capabilities(tmp_path: Path) -> None:
    """Changing gpt-4o-mini's price leaves its context window and sources as they were."""
    override = write(tmp_path / "p.toml", '[models."gpt-4o-mini"]\ninput = 1\noutput = 2\n')
    row = load_model_table(price_file=override).lookup("gpt-4o-mini")
    assert row is not None and row.context_window == 128_000 and row.sources
    assert row.origins == (str(packaged_table_file()), str(override))


def test_ledger_prices_environment_variable_names_the_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """$LEDGER_PRICES is read when no file is passed."""
    env_file = write(tmp_path / "env.toml", '[models."x"]\ninput = 3\noutput = 4\n')
    monkeypatch.setenv("LEDGER_PRICES", str(env_file))
    assert load_price_table().price_for("x") == Price(3.0, 4.0)


def test_ledger_toml_rows_extend_and_change_the_table() -> None:
    """A [models."NAME"] mapping adds a model and changes one field of another."""
    table = load_model_table(
        {
            "acme-1": {"provider": "openai", "context_window": 32_000, "input": 1, "output": 2},
            "claude-opus-5": {"max_output_tokens": 300_000},
        }
    )
    acme, opus = table.lookup("acme-1"), table.lookup("claude-opus-5")
    assert acme is not None and acme.context_window == 32_000 and acme.price == Price(1.0, 2.0)
    assert acme.origins == ("ledger.toml",)
    assert opus is not None and opus.max_output_tokens == 300_000
    assert opus.price is not None and opus.price.input_per_million == 2.50


def test_a_price_file_wins_over_ledger_toml(tmp_path: Path) -> None:
    """The order is packaged, ledger.toml, then the price file."""
    override = write(tmp_path / "p.toml", '[models."gpt-5"]\ninput = 9\noutput = 9\n')
    table = load_price_table(override, models={"gpt-5": {"input": 1, "output": 1}})
    assert table.price_for("gpt-5") == Price(9.0, 9.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not toml [", "not a readable TOML model table"),
        ("[other]\n", 'no [models."NAME"] tables'),
        (
            '[models."m"]\ninput = "cheap"\noutput = 1\n',
            'models."m": field "input": must be a number',
        ),
        ('[models."m"]\ninput = 1\n', 'field "output": required with any price'),
        ('[models."m"]\ninputs = 1\n', "unknown field 'inputs'"),
        ('[models."m"]\nsampling = "low"\n', 'field "sampling": must be one of'),
        ('[models."m"]\ncontext_window = 1.5\n', 'field "context_window": must be a whole number'),
        ('[models."m"]\nchecked = "yesterday"\n', 'field "checked": must be a date'),
        ('[models."m"]\nsource = []\n', 'field "source": must be a URL'),
    ],
)
def test_a_bad_file_is_refused_with_its_name(tmp_path: Path, text: str, message: str) -> None:
    """Malformed TOML, no models, or a bad field: one clear error naming file, model and field."""
    path = write(tmp_path / "bad.toml", text)
    with pytest.raises(InputError, match=r"bad\.toml") as caught:
        load_price_table(path)
    assert message in str(caught.value)


def test_a_missing_price_file_is_named() -> None:
    """--prices naming no file is an input error, not a traceback."""
    with pytest.raises(InputError, match=r"nowhere\.toml: no such"):
        load_price_table("nowhere.toml")
