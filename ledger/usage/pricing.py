"""What requests cost: the model table's batch prices, an estimate before anything is sent, and
the actual cost of the usage a provider reports.

Prices come from the model table (`ledger.usage.capabilities`: the packaged
`ledger/usage/data/models.toml`, `ledger.toml`'s `[models."NAME"]` tables, then `--prices FILE`
or `$LEDGER_PRICES`). A model without a price costs None, "unknown", everywhere: never $0.
The arithmetic of one price (cached input, cache writes, long-context bands) is
`ledger.usage.price`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ledger.usage.capabilities import PRICES_ENV, ModelTable, load_model_table, undated_name
from ledger.usage.capabilities import packaged_table_file as packaged_price_file
from ledger.usage.price import LongContext, Price, TokenUsage, token_counts, token_usage

__all__ = [
    "PRICES_ENV",
    "CostEstimate",
    "LongContext",
    "ModelUsage",
    "Price",
    "PriceTable",
    "TokenUsage",
    "estimate_cost",
    "load_price_table",
    "packaged_price_file",
    "request_cost",
    "token_usage",
    "usd",
]


@dataclass(frozen=True)
class PriceTable:
    """Prices by model, and the files they were read from (packaged table first)."""

    prices: Mapping[str, Price]
    sources: tuple[str, ...] = ()

    @classmethod
    def from_models(cls, table: ModelTable) -> PriceTable:
        """The prices of a model table's rows that have one."""
        prices = {name: row.price for name, row in table.rows.items() if row.price is not None}
        return cls(prices=prices, sources=table.origins)

    def price_for(self, model: str, provider: str | None = None) -> Price | None:
        """The model's price (its `provider:model` row's first, when `provider` is given); a
        dated snapshot without its own price gets its model's."""
        if provider:
            price = self.prices.get(f"{provider}:{model}")
            if price is not None:
                return price
        price = self.prices.get(model)
        undated = undated_name(model)
        if price is None and undated is not None:
            price = self.prices.get(undated)
        return price

    def cost(
        self,
        model: str,
        input_tokens: int,
        output_tokens: int = 0,
        cached_tokens: int = 0,
        cache_write_5m_tokens: int = 0,
        cache_write_1h_tokens: int = 0,
    ) -> float | None:
        """USD for a model's usage, or None (unknown, never free) when it has no price."""
        price = self.price_for(model)
        if price is None:
            return None
        return price.cost(
            input_tokens, output_tokens, cached_tokens, cache_write_5m_tokens, cache_write_1h_tokens
        )


def load_price_table(
    override: str | os.PathLike[str] | None = None,
    *,
    models: Mapping[str, Mapping[str, Any]] | None = None,
) -> PriceTable:
    """The packaged prices, then `models` (ledger.toml's), then `override` or `$LEDGER_PRICES`."""
    if not models and override is None and not os.environ.get(PRICES_ENV):
        return _packaged_price_table()
    return PriceTable.from_models(load_model_table(models, price_file=override))


@functools.cache
def _packaged_price_table() -> PriceTable:
    # Read once per process: the packaged table never changes under it, and reading it (10 ms
    # of TOML and checks) was a tenth of normalizing a 20 MB job, which prices every job.
    return PriceTable.from_models(load_model_table())


def request_cost(price: Price | None, usage: Any) -> float | None:
    """USD for one response body's `usage` (any provider's naming); 0.0 without usage.

    None when there is no price: the cost is unknown. Price each request on its own, so that a
    long-context band applies to the requests that crossed it.
    """
    if price is None:
        return None
    counts = token_counts(usage)
    return 0.0 if counts is None else price.cost(*counts)


@dataclass(frozen=True)
class ModelUsage:
    """Tokens for one model: input, and output (None when there is no bound to estimate)."""

    model: str
    input_tokens: int
    output_tokens: int | None
    #: The provider the tokens go to: a `provider:model` row prices them first.
    provider: str | None = None


@dataclass(frozen=True)
class CostEstimate:
    """A cost before anything is sent: input, plus output at the requests' max output tokens.

    Input is priced as if nothing were read from a prompt cache, so the figure is an upper bound
    for what is priced.
    """

    input_tokens: int
    #: USD of the priced models' input (the unpriced models' tokens are not in it).
    input_usd: float
    #: Sum of the requests' max output tokens; None when some request has no maximum.
    output_tokens: int | None
    output_usd: float | None
    #: Models the table has no price for; their tokens are not in the USD figures.
    unpriced_models: tuple[str, ...] = field(default=())
    #: Models that have a price (so an estimate with none of them is "unknown", not $0).
    priced_models: tuple[str, ...] = field(default=())

    @property
    def priced_usd(self) -> float:
        """Input plus (when estimated) output, in USD, of the models that have a price."""
        return self.input_usd + (self.output_usd or 0.0)

    @property
    def total_usd(self) -> float | None:
        """The whole estimate in USD; None (unknown) when some model has no price."""
        return None if self.unpriced_models else self.priced_usd

    def describe(self) -> str:
        """One line saying what the figure includes."""
        unpriced = ", ".join(self.unpriced_models)
        if self.unpriced_models and not self.priced_models:
            return f"unknown: no price for {unpriced} (add it to ledger.toml or --prices)"
        figure = usd(self.priced_usd)
        if self.unpriced_models:
            figure = f"at least {figure}"
        if self.output_usd is None:
            what = (
                f"{figure}: input only ({self.input_tokens:,} tokens); output not "
                "estimated (no max_output_tokens on every request)"
            )
        else:
            what = (
                f"{figure}: input {usd(self.input_usd)} ({self.input_tokens:,} "
                f"tokens) + output at most {usd(self.output_usd)} (at max_output_tokens, "
                f"{self.output_tokens:,} tokens)"
            )
        if self.unpriced_models:
            what += f"; no price for {unpriced} (not included: cost unknown)"
        return what


def usd(amount: float | None) -> str:
    """`$12.34`, enough decimals to show a small amount (`$0.000425`), or `unknown`."""
    if amount is None:
        return "unknown"
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
    priced: list[str] = []
    for part in usage:
        input_tokens += part.input_tokens
        if part.output_tokens is None or output_tokens is None:
            output_tokens = None
        else:
            output_tokens += part.output_tokens
        price = table.price_for(part.model, part.provider)
        if price is None:
            if part.model not in unpriced:
                unpriced.append(part.model)
            continue
        if part.model not in priced:
            priced.append(part.model)
        input_usd += price.cost(part.input_tokens)
        output_usd += price.cost(0, part.output_tokens or 0)
    return CostEstimate(
        input_tokens=input_tokens,
        input_usd=input_usd,
        output_tokens=output_tokens,
        output_usd=None if output_tokens is None else output_usd,
        unpriced_models=tuple(unpriced),
        priced_models=tuple(priced),
    )
