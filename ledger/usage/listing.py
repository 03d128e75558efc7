"""`ledger prices [MODEL]`: the model table's prices and limits, and what the ledger lacks.

The command prints these rows; the library call is `price_listing`. "Lacks" means a model some
job of the ledger was built for that has no price: its cost shows as unknown everywhere.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from ledger.core.models import Job
from ledger.usage.capabilities import ModelInfo, ModelTable, default_table


@dataclass(frozen=True)
class PriceRow:
    """One model as `ledger prices` shows it (rates in USD per 1M tokens, batch)."""

    model: str
    provider: str | None
    batch: bool | None
    input: float | None
    cached_input: float | None
    cache_write_5m: float | None
    cache_write_1h: float | None
    output: float | None
    #: "over 272,000 prompt tokens: input $5.00, output $22.50"; None without such a band.
    long_context: str | None
    context_window: int | None
    max_output_tokens: int | None
    sources: tuple[str, ...]
    checked: dt.date | None
    shutdown: dt.date | None
    note: str | None
    #: Files (or ledger.toml) that changed the packaged row, in the order applied.
    overridden_by: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        """The row as JSON-ready values (dates as YYYY-MM-DD)."""
        row = {name: getattr(self, name) for name in self.__dataclass_fields__}
        for name in ("checked", "shutdown"):
            row[name] = row[name].isoformat() if row[name] is not None else None
        row["sources"] = list(self.sources)
        row["overridden_by"] = list(self.overridden_by)
        return row


@dataclass(frozen=True)
class PriceListing:
    """The rows asked for, and the models of the ledger's jobs that have no price."""

    rows: list[PriceRow]
    unpriced: list[str]
    #: The files the table was read from, packaged first.
    table_files: tuple[str, ...]


def price_listing(
    engine: Engine | None, model: str | None = None, *, table: ModelTable | None = None
) -> PriceListing:
    """Every row (or `model`'s, found as a snapshot too), and the ledger's unpriced models.

    `engine` None lists the table alone. `table` defaults to the packaged one with
    `$LEDGER_PRICES`; pass the one built with ledger.toml's rows and `--prices` to show those.
    """
    table = table or default_table()
    if model is None:
        rows = [price_row(info, table) for _, info in sorted(table.rows.items())]
    else:
        found = table.lookup(model)
        rows = [price_row(found, table)] if found is not None else []
    seen = _models_in_ledger(engine) if engine is not None else []
    if model is not None:
        seen = [name for name in seen if name == model] or [model]
    unpriced = [name for name in seen if _price_of(table, name) is None]
    return PriceListing(rows=rows, unpriced=unpriced, table_files=table.origins)


def price_row(info: ModelInfo, table: ModelTable) -> PriceRow:
    """One table row as listed."""
    price = info.price
    band = price.long_context if price is not None else None
    long_context = None
    if band is not None:
        long_context = (
            f"over {band.threshold:,} prompt tokens: input ${band.price.input_per_million:g}, "
            f"output ${band.price.output_per_million:g}"
        )
    packaged = table.origins[0] if table.origins else None
    return PriceRow(
        model=info.name,
        provider=info.provider,
        batch=info.batch,
        input=price.input_per_million if price else None,
        cached_input=price.cached_input_per_million if price else None,
        cache_write_5m=price.cache_write_5m_per_million if price else None,
        cache_write_1h=price.cache_write_1h_per_million if price else None,
        output=price.output_per_million if price else None,
        long_context=long_context,
        context_window=info.context_window,
        max_output_tokens=info.max_output_tokens,
        sources=info.sources,
        checked=info.checked,
        shutdown=info.shutdown,
        note=info.note,
        overridden_by=tuple(origin for origin in info.origins if origin != packaged),
    )


def _price_of(table: ModelTable, model: str) -> Any:
    info = table.lookup(model)
    return info.price if info is not None else None


def _models_in_ledger(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return sorted(connection.execute(select(Job.model).distinct()).scalars())
