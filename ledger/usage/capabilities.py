"""The model table: what each model accepts, its limits, its tokenizer and its batch prices.

One data file ships in the package (`ledger/usage/data/models.toml`; every row names its source
and the date it was checked, `docs/models.md` describes the fields). On top of it, in this order:

1. the `[models."NAME"]` tables of `ledger.toml`, passed in as a mapping;
2. a price file: `--prices FILE`, else `$LEDGER_PRICES` (same shape; the old price files, with
   only `input` / `cached_input` / `output`, are a valid subset).

A later table changes only the fields it gives, except prices: any price field replaces the
row's whole price (a new `input` with a stale packaged `cached_input` would be wrong). A model
the table does not have is added.

A model is found by its exact name, else, for a dated snapshot or `-latest` alias, by its
model's name (`gpt-4.1-2025-04-14` -> `gpt-4.1`): a snapshot with a row of its own
(`gpt-4o-2024-05-13`) keeps it. A row named `PROVIDER:MODEL` (`groq:openai/gpt-oss-120b`) is that
model at that provider, found first when the provider is known: one model served by two hosts has
a price at each.

A row may say `same_as = "MODEL"`: it is that model's row with its own fields over it. An Azure
deployment is priced this way: `[models."my-deployment"]` with `provider = "azure"` and
`same_as = "gpt-4o-mini"` (docs/models.md).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from ledger.errors import InputError
from ledger.usage.price import LongContext, Price

#: The environment variable naming a price file, when `--prices` is not given.
PRICES_ENV = "LEDGER_PRICES"

#: The sampling rules a row can state (`docs/models.md`); a row without one is unchecked.
SAMPLING_RULES = ("any", "default-only", "effort-none", "one-of", "none")

#: A dated snapshot or alias suffix: gpt-4o-2024-08-06, gpt-3.5-turbo-0125,
#: claude-haiku-4-5-20251001, claude-3-5-haiku-latest.
_SNAPSHOT = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8}|\d{4}|latest)$")

#: The fields of one price band; `input` and `output` are required once any is given.
PRICE_FIELDS = ("input", "cached_input", "output", "cache_write_5m", "cache_write_1h")
_COUNT_FIELDS = ("context_window", "max_output_tokens")
_FLAG_FIELDS = ("batch", "json_mode", "structured_outputs", "n", "logprobs")
_TEXT_FIELDS = ("provider", "tokenizer", "default_effort", "note", "same_as")
_SOURCE_FIELDS = ("source", "sampling_source")
_DATE_FIELDS = ("checked", "shutdown")
FIELDS = frozenset(
    (
        *PRICE_FIELDS,
        "long_context",
        *_COUNT_FIELDS,
        *_FLAG_FIELDS,
        *_TEXT_FIELDS,
        "sampling",
        "enqueued_tokens",
        *_SOURCE_FIELDS,
        *_DATE_FIELDS,
    )
)
_ALL_PRICE_FIELDS = frozenset((*PRICE_FIELDS, "long_context"))

#: Anthropic's prompt-caching multipliers of the input rate, for a row that gives no cache rate:
#: cache reads 0.1x, 5-minute writes 1.25x, 1-hour writes 2x (the pricing page's defaults).
ANTHROPIC_CACHE_MULTIPLIERS = {
    "cached_input": 0.1,
    "cache_write_5m": 1.25,
    "cache_write_1h": 2.0,
}


@dataclass(frozen=True)
class ModelInfo:
    """One row of the model table. None (or an empty tuple) means "not known"."""

    name: str
    provider: str | None = None
    context_window: int | None = None
    max_output_tokens: int | None = None
    #: A tiktoken encoding name, "anthropic", or "approximate".
    tokenizer: str | None = None
    batch: bool | None = None
    #: One of `SAMPLING_RULES`.
    sampling: str | None = None
    #: The reasoning effort a request without one gets ("none" lets gpt-5.1 take temperature).
    default_effort: str | None = None
    json_mode: bool | None = None
    structured_outputs: bool | None = None
    n: bool | None = None
    logprobs: bool | None = None
    price: Price | None = None
    sources: tuple[str, ...] = ()
    sampling_sources: tuple[str, ...] = ()
    checked: dt.date | None = None
    #: The date the provider stops (or stopped) serving the model.
    shutdown: dt.date | None = None
    note: str | None = None
    #: Where the row's values came from: the packaged file, then any override.
    origins: tuple[str, ...] = ()
    #: The provider's enqueued-token limit of the model's batch queue at usage tiers 1, 2, ...
    enqueued_tokens: tuple[int, ...] = ()


@dataclass(frozen=True)
class ModelTable:
    """Every row by model name, and where the table was read from (packaged file first)."""

    rows: Mapping[str, ModelInfo]
    origins: tuple[str, ...] = ()

    def lookup(self, model: str, provider: str | None = None) -> ModelInfo | None:
        """The model's row (its `provider:model` row first, when `provider` is given); a dated
        snapshot without its own row gets its model's row."""
        if provider:
            row = self.rows.get(f"{provider}:{model}")
            if row is not None:
                return row
        row = self.rows.get(model)
        if row is None:
            undated = undated_name(model)
            row = self.rows.get(undated) if undated is not None else None
        return row


def undated_name(model: str) -> str | None:
    """The model a dated snapshot or `-latest` alias belongs to; None for an undated name."""
    undated = _SNAPSHOT.sub("", model)
    return undated if undated != model else None


def packaged_table_file() -> Path:
    """The model table shipped inside the package."""
    return Path(str(resources.files("ledger.usage").joinpath("data", "models.toml")))


def read_table_file(path: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """The `[models."NAME"]` tables of one TOML file, each checked (raises `InputError`)."""
    where = str(path)
    try:
        with open(path, "rb") as handle:
            document = tomllib.load(handle)
    except FileNotFoundError:
        raise InputError(f"{where}: no such model table or price file") from None
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise InputError(f"{where}: not a readable TOML model table ({error})") from None
    models = document.get("models")
    if not isinstance(models, dict):
        raise InputError(f'{where}: no [models."NAME"] tables')
    return check_rows(models, where)


def check_rows(models: Mapping[str, Any], where: str) -> dict[str, dict[str, Any]]:
    """Each `{field: value}` row of `models`, checked field by field (raises `InputError`)."""
    checked: dict[str, dict[str, Any]] = {}
    for name, entry in models.items():
        if not isinstance(name, str) or not name:
            raise InputError(f"{where}: a model name must be a non-empty string")
        if not isinstance(entry, Mapping):
            raise InputError(f'{where}: models."{name}" must be a table of fields')
        checked[name] = {key: _field(where, name, key, value) for key, value in entry.items()}
        _require_input_and_output(where, name, checked[name])
    return checked


def load_model_table(
    models: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    price_file: str | os.PathLike[str] | None = None,
) -> ModelTable:
    """The packaged table, then `models` (ledger.toml's), then `price_file` or `$LEDGER_PRICES`."""
    packaged = packaged_table_file()
    raw: dict[str, dict[str, Any]] = {}
    origin_of: dict[str, list[str]] = {}
    layers: list[tuple[str, dict[str, dict[str, Any]]]] = [
        (str(packaged), read_table_file(packaged))
    ]
    if models:
        layers.append(("ledger.toml", check_rows(models, "ledger.toml")))
    chosen = price_file if price_file is not None else os.environ.get(PRICES_ENV) or None
    if chosen is not None:
        layers.append((str(chosen), read_table_file(chosen)))
    for origin, rows in layers:
        for name, row in rows.items():
            raw[name] = merge_row(raw.get(name), row)
            origin_of.setdefault(name, []).append(origin)
    for name, row in raw.items():
        if "same_as" in row:
            raw[name] = _same_as(raw, name, row)
    rows = {name: _model_info(name, row, tuple(origin_of[name])) for name, row in raw.items()}
    return ModelTable(rows=rows, origins=tuple(origin for origin, _ in layers))


def _same_as(raw: Mapping[str, dict[str, Any]], name: str, row: dict[str, Any]) -> dict[str, Any]:
    """A `same_as` row: the named model's fields, then its own (one level: no chains)."""
    target = row["same_as"]
    base = raw.get(target)
    if base is None or "same_as" in base:
        problem = "names no row of the table" if base is None else "is itself a same_as row"
        raise InputError(f'models."{name}": field "same_as": {target!r} {problem}')
    own = {k: v for k, v in row.items() if k != "same_as"}
    return merge_row({k: v for k, v in base.items() if k not in ("source", "checked")}, own)


def merge_row(base: Mapping[str, Any] | None, override: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `override`'s fields; any price field in `override` replaces every price."""
    merged = dict(base or {})
    if _ALL_PRICE_FIELDS & override.keys():
        for key in _ALL_PRICE_FIELDS:
            merged.pop(key, None)
    merged.update(override)
    return merged


def default_table() -> ModelTable:
    """The packaged table with `$LEDGER_PRICES`, read once per value of that variable."""
    return _table_for(os.environ.get(PRICES_ENV) or None)


@lru_cache(maxsize=4)
def _table_for(price_file: str | None) -> ModelTable:
    return load_model_table(price_file=price_file) if price_file else load_model_table()


def _model_info(name: str, row: Mapping[str, Any], origins: tuple[str, ...]) -> ModelInfo:
    provider = row.get("provider")
    return ModelInfo(
        name=name,
        provider=provider,
        context_window=row.get("context_window"),
        max_output_tokens=row.get("max_output_tokens"),
        tokenizer=row.get("tokenizer"),
        batch=row.get("batch"),
        sampling=row.get("sampling"),
        default_effort=row.get("default_effort"),
        json_mode=row.get("json_mode"),
        structured_outputs=row.get("structured_outputs"),
        n=row.get("n"),
        logprobs=row.get("logprobs"),
        price=_price(row, provider),
        sources=row.get("source", ()),
        sampling_sources=row.get("sampling_source", ()),
        checked=row.get("checked"),
        shutdown=row.get("shutdown"),
        note=row.get("note"),
        origins=origins,
        enqueued_tokens=tuple(row.get("enqueued_tokens", ())),
    )


def _price(row: Mapping[str, Any], provider: str | None) -> Price | None:
    if "input" not in row:
        return None
    long_band = row.get("long_context")
    long_context = None
    if long_band is not None:
        band = {key: long_band.get(key, row.get(key)) for key in PRICE_FIELDS}
        long_context = LongContext(long_band["threshold"], _band(band, provider))
    return _band(row, provider, long_context)


def _band(
    rates: Mapping[str, Any], provider: str | None, long_context: LongContext | None = None
) -> Price:
    # `input` and `output` are there: `_require_input_and_output` checked every row.
    given: dict[str, float | None] = {key: rates.get(key) for key in PRICE_FIELDS}
    input_rate, output_rate = float(rates["input"]), float(rates["output"])
    if provider == "anthropic":
        for key, multiplier in ANTHROPIC_CACHE_MULTIPLIERS.items():
            if given[key] is None:
                given[key] = input_rate * multiplier
    return Price(
        input_per_million=input_rate,
        output_per_million=output_rate,
        cached_input_per_million=given["cached_input"],
        cache_write_5m_per_million=given["cache_write_5m"],
        cache_write_1h_per_million=given["cache_write_1h"],
        long_context=long_context,
    )


def _field(where: str, model: str, key: str, value: Any) -> Any:
    """The checked value of one field (raises `InputError` naming the file, model and field)."""
    at = f'{where}: models."{model}": field "{key}"'
    if key in PRICE_FIELDS:
        return _rate(at, value)
    if key == "long_context":
        return _long_context(at, value)
    if key in _COUNT_FIELDS:
        if type(value) is not int or value < 0:
            raise InputError(f"{at}: must be a whole number >= 0 (tokens)")
        return value
    if key in _FLAG_FIELDS:
        if not isinstance(value, bool):
            raise InputError(f"{at}: must be true or false")
        return value
    if key in _TEXT_FIELDS:
        if not isinstance(value, str) or not value:
            raise InputError(f"{at}: must be a non-empty string")
        return value
    if key == "sampling":
        if value not in SAMPLING_RULES:
            raise InputError(f"{at}: must be one of {', '.join(SAMPLING_RULES)}")
        return value
    if key in _SOURCE_FIELDS:
        sources = [value] if isinstance(value, str) else value
        if not isinstance(sources, list) or not sources:
            raise InputError(f"{at}: must be a URL or SDK file, or a list of them")
        if not all(isinstance(s, str) and s.strip() for s in sources):
            raise InputError(f"{at}: every source must be a non-empty string")
        return tuple(sources)
    if key in _DATE_FIELDS:
        return _date(at, value)
    if key == "enqueued_tokens":
        if not isinstance(value, list) or not all(type(n) is int and n > 0 for n in value):
            raise InputError(f"{at}: must be a list of token counts > 0, one per usage tier")
        return value
    raise InputError(
        f'{where}: models."{model}": unknown field {key!r} (known: {", ".join(sorted(FIELDS))})'
    )


def _rate(at: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise InputError(f"{at}: must be a number >= 0 (USD per 1M tokens, batch rate)")
    return float(value)


def _long_context(at: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise InputError(f"{at}: must be a table with threshold and rates")
    threshold = value.get("threshold")
    if type(threshold) is not int or threshold < 1:
        raise InputError(f"{at}: threshold must be a whole number of prompt tokens >= 1")
    band: dict[str, Any] = {"threshold": threshold}
    for key, rate in value.items():
        if key == "threshold":
            continue
        if key not in PRICE_FIELDS:
            raise InputError(f"{at}: unknown rate {key!r} (known: {', '.join(PRICE_FIELDS)})")
        band[key] = _rate(f"{at}.{key}", rate)
    return band


def _date(at: str, value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise InputError(f"{at}: must be a date (YYYY-MM-DD)")


def _require_input_and_output(where: str, model: str, row: Mapping[str, Any]) -> None:
    if _ALL_PRICE_FIELDS & row.keys():
        for key in ("input", "output"):
            if key not in row:
                raise InputError(
                    f'{where}: models."{model}": field "{key}": required with any price '
                    "(USD per 1M tokens, batch rate)"
                )
