"""What a batch's tokens cost at batch prices, from a small price table.

Providers publish prices only as a web page, so the table is a file the user can edit:
`ledger/data/prices.toml`, one table per model with batch prices in USD per million tokens:

    [models."gpt-4o-mini"]
    input = 0.075
    cached_input = 0.0375   # optional; defaults to `input`
    output = 0.30

A model missing from the table (or no table at all) has an unknown cost: `None`, never 0.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path

#: The price table shipped with the package (it may be absent: every cost is then unknown).
PRICES_PATH = Path(__file__).parent / "data" / "prices.toml"

#: Model name -> {"input", "output", optional "cached_input"}: USD per million tokens.
Prices = Mapping[str, Mapping[str, float]]

# A dated snapshot ("gpt-4o-mini-2024-07-18") is priced as its model unless listed itself.
_SNAPSHOT_SUFFIX = re.compile(r"-\d{4}-\d{2}-\d{2}$")


def load_prices(path: Path = PRICES_PATH) -> dict[str, dict[str, float]]:
    """The `[models.NAME]` tables of the price file, or an empty table when there is no file."""
    if not path.is_file():
        return {}
    with path.open("rb") as file:
        document = tomllib.load(file)
    models = document.get("models", {})
    return {str(name): dict(table) for name, table in models.items() if isinstance(table, dict)}


def batch_cost(
    model: str,
    input_tokens: int,
    output_tokens: int,
    cached_tokens: int = 0,
    prices: Prices | None = None,
) -> float | None:
    """USD for these tokens at `model`'s batch prices, or None when the model has no price.

    `cached_tokens` are the part of `input_tokens` read from the prompt cache.
    """
    table = load_prices() if prices is None else prices
    price = table.get(model) or table.get(_SNAPSHOT_SUFFIX.sub("", model))
    if not price or "input" not in price or "output" not in price:
        return None
    cached = min(cached_tokens, input_tokens)
    per_million = (
        (input_tokens - cached) * price["input"]
        + cached * price.get("cached_input", price["input"])
        + output_tokens * price["output"]
    )
    return round(per_million / 1_000_000, 9)
