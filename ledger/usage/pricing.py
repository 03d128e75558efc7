"""What requests cost: a per-model price table at Batch API rates, and costs computed from it.

The table ships as `ledger/data/prices.toml`; a user's file (`--prices FILE` or `$LEDGER_PRICES`)
replaces or adds models. The same functions serve the estimate before anything is sent and the
actual cost from the usage a provider reports.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ledger.errors import InputError

#: The environment variable naming a price file, when `--prices` is not given.
PRICES_ENV = "LEDGER_PRICES"

#: A dated snapshot or alias suffix: gpt-4o-2024-08-06, gpt-3.5-turbo-0125,
#: claude-3-5-haiku-20241022, claude-3-5-haiku-latest.
_SNAPSHOT = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8}|\d{4}|latest)$")


@dataclass(frozen=True)
class Price:
    """USD per 1 million tokens, at batch rates."""

    input_per_million: float
    output_per_million: float
    #: Prompt tokens read from the provider's prompt cache; None: priced as other input.
    cached_input_per_million: float | None = None

    def cost(self, input_tokens: int, output_tokens: int = 0, cached_tokens: int = 0) -> float:
        """USD for this many input and output tokens; `cached_tokens` are part of the input."""
        cached = min(cached_tokens, input_tokens)
        cached_rate = (
            self.input_per_million
            if self.cached_input_per_million is None
            else self.cached_input_per_million
        )
        return (
            (input_tokens - cached) * self.input_per_million
            + cached * cached_rate
            + output_tokens * self.output_per_million
        ) / 1_000_000


@dataclass(frozen=True)
class PriceTable:
    """Prices by model, and the files they were read from (packaged table first)."""

    prices: Mapping[str, Price]
    sources: tuple[str, ...] = ()

    def price_for(self, model: str) -> Price | None:
        """The model's price; a dated snapshot falls back to its model's price."""
        price = self.prices.get(model)
        if price is None:
            undated = _SNAPSHOT.sub("", model)
            price = self.prices.get(undated) if undated != model else None
        return price

    def cost(
        self, model: str, input_tokens: int, output_tokens: int = 0, cached_tokens: int = 0
    ) -> float | None:
        """USD for a model's usage, or None (unknown, never free) when it has no price."""
        price = self.price_for(model)
        return None if price is None else price.cost(input_tokens, output_tokens, cached_tokens)


def packaged_price_file() -> Path:
    """The price table shipped inside the package."""
    return Path(str(resources.files("ledger.usage").joinpath("data", "prices.toml")))


def read_price_file(path: str | os.PathLike[str]) -> dict[str, Price]:
    """The `[models."NAME"] input = .. output = ..` entries of one TOML price file."""
    where = str(path)
    try:
        with open(path, "rb") as handle:
            document = tomllib.load(handle)
    except FileNotFoundError:
        raise InputError(f"{where}: no such price file") from None
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise InputError(f"{where}: not a readable TOML price table ({error})") from None
    models = document.get("models")
    if not isinstance(models, dict):
        raise InputError(f'{where}: no [models."NAME"] tables')
    return {name: _price_entry(where, name, entry) for name, entry in models.items()}


def _price_entry(where: str, model: str, entry: Any) -> Price:
    if not isinstance(entry, dict):
        raise InputError(f'{where}: models."{model}" must be a table with input and output')
    values: list[float] = []
    for key in ("input", "output"):
        value = entry.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise InputError(
                f'{where}: models."{model}": field "{key}": must be a number >= 0 (USD per 1M)'
            )
        values.append(float(value))
    cached = entry.get("cached_input")
    if cached is not None and (
        isinstance(cached, bool) or not isinstance(cached, int | float) or cached < 0
    ):
        raise InputError(
            f'{where}: models."{model}": field "cached_input": must be a number >= 0 (USD per 1M)'
        )
    return Price(
        input_per_million=values[0],
        output_per_million=values[1],
        cached_input_per_million=None if cached is None else float(cached),
    )


def load_price_table(override: str | os.PathLike[str] | None = None) -> PriceTable:
    """The packaged prices, with `override` (or `$LEDGER_PRICES`) replacing or adding models."""
    packaged = packaged_price_file()
    prices = read_price_file(packaged)
    sources = [str(packaged)]
    chosen = override if override is not None else os.environ.get(PRICES_ENV) or None
    if chosen is not None:
        prices.update(read_price_file(chosen))
        sources.append(str(chosen))
    return PriceTable(prices=prices, sources=tuple(sources))


@dataclass(frozen=True)
class ModelUsage:
    """Tokens for one model: input, and output (None when there is no bound to estimate)."""

    model: str
    input_tokens: int
    output_tokens: int | None


@dataclass(frozen=True)
class CostEstimate:
    """A cost before anything is sent: input, plus output at the requests' max output tokens."""

    input_tokens: int
    input_usd: float
    #: Sum of the requests' max output tokens; None when some request has no maximum.
    output_tokens: int | None
    output_usd: float | None
    #: Models the table has no price for; their tokens are not in the USD figures.
    unpriced_models: tuple[str, ...] = field(default=())

    @property
    def total_usd(self) -> float:
        """Input plus (when estimated) output, in USD."""
        return self.input_usd + (self.output_usd or 0.0)

    def describe(self) -> str:
        """One line saying what the figure includes."""
        if self.output_usd is None:
            what = (
                f"{usd(self.total_usd)}: input only ({self.input_tokens:,} tokens); output not "
                "estimated (no max_output_tokens on every request)"
            )
        else:
            what = (
                f"{usd(self.total_usd)}: input {usd(self.input_usd)} ({self.input_tokens:,} "
                f"tokens) + output at most {usd(self.output_usd)} (at max_output_tokens, "
                f"{self.output_tokens:,} tokens)"
            )
        if self.unpriced_models:
            what += f"; no price for {', '.join(self.unpriced_models)} (not included)"
        return what


def usd(amount: float) -> str:
    """`$12.34`, or enough decimals to show a small amount: `$0.000425`."""
    if amount >= 1 or amount == 0:
        return f"${amount:,.2f}"
    return "$" + f"{amount:.6f}".rstrip("0")


def estimate_cost(table: PriceTable, usage: Iterable[ModelUsage]) -> CostEstimate:
    """Add up the cost of each model's tokens; output only when every part has a bound."""
    input_tokens = 0
    output_tokens: int | None = 0
    input_usd = 0.0
    output_usd = 0.0
    unpriced: list[str] = []
    for part in usage:
        input_tokens += part.input_tokens
        if part.output_tokens is None or output_tokens is None:
            output_tokens = None
        else:
            output_tokens += part.output_tokens
        price = table.price_for(part.model)
        if price is None:
            if part.model not in unpriced:
                unpriced.append(part.model)
            continue
        input_usd += price.cost(part.input_tokens)
        output_usd += price.cost(0, part.output_tokens or 0)
    return CostEstimate(
        input_tokens=input_tokens,
        input_usd=input_usd,
        output_tokens=output_tokens,
        output_usd=None if output_tokens is None else output_usd,
        unpriced_models=tuple(unpriced),
    )
