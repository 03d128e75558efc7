"""`ledger prices`: the model table's batch prices and limits as a table."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ledger.console.tables import format_table

if TYPE_CHECKING:
    from ledger.usage.listing import PriceListing

#: `ledger prices`: the columns of the table (rates are batch USD per 1M tokens).
PRICE_COLUMNS = (
    "model", "provider", "in", "cached", "out", "context", "max out", "checked", "source",
)  # fmt: skip


def format_prices(listing: PriceListing) -> str:
    """`ledger prices`: one row per model, then the ledger's models that have no price."""
    rows = [
        [
            row.model,
            row.provider,
            _rate(row.input),
            _rate(row.cached_input),
            _rate(row.output),
            _count(row.context_window),
            _count(row.max_output_tokens),
            row.checked.isoformat() if row.checked else None,
            row.sources[0] if row.sources else None,
        ]
        for row in listing.rows
    ]
    lines = [format_table(PRICE_COLUMNS, rows)] if rows else ["no such model in the table"]
    lines.append("batch prices, USD per 1M tokens; sources and notes: `ledger prices --json`")
    for model in listing.unpriced:
        lines.append(
            f'no price: {model}: its cost shows as unknown; add a [models."{model}"] row with '
            "input and output to ledger.toml, or a --prices file"
        )
    return "\n".join(lines)


def _rate(value: float | None) -> str | None:
    return None if value is None else f"${value:g}"


def _count(value: int | None) -> str | None:
    return None if value is None else f"{value:,}"
