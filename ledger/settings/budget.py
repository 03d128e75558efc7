"""The keys of `[budget]` in ledger.toml, declared once: their values, defaults and meaning
(docs/config.md's budget table is generated from here, `ledger.config` checks the file against
them, `ledger.spend` reads them).

`[budget]` caps the money of the whole ledger and the provider queues every reconciler shares;
`ledger submit --max-cost` (a setting of `ledger.settings.declared`) caps one run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.errors import ConfigError
from ledger.settings.setting import Range
from ledger.settings.toml_checks import check_type, unknown_key


@dataclass(frozen=True)
class BudgetKey:
    """One key of `[budget]`: a number, or a table of numbers by provider or model name."""

    name: str
    #: `float`, `int`, or `table` (a TOML table of numbers, keyed by name).
    kind: str
    default: Any
    help: str
    accepts: Range

    def problem(self, value: Any) -> str | None:
        """What is wrong with a value of the right type (each of a table's), or None."""
        values = value.values() if isinstance(value, dict) else [value]
        for each in values:
            problem = self.accepts.problem(each)
            if problem is not None:
                return problem
        return None

    def toml_types(self) -> tuple[type, ...]:
        return {"float": (int, float), "int": (int,), "table": (dict,)}[self.kind]


_MONEY = Range(0)

BUDGET_KEYS: dict[str, BudgetKey] = {
    key.name: key
    for key in (
        BudgetKey(
            "daily_usd",
            "float",
            None,
            "USD the whole ledger may spend per UTC day (batches created that day: actual cost "
            "once known, else the estimate).",
            _MONEY,
        ),
        BudgetKey(
            "provider_daily_usd",
            "table",
            {},
            "`{provider = USD}`: what each provider may be spent per UTC day.",
            _MONEY,
        ),
        BudgetKey(
            "queue_tier",
            "int",
            None,
            "The account's usage tier (1-5): each model's enqueued-token limit at that tier "
            "(the model table's `enqueued_tokens`) caps the tokens in flight per (provider, "
            "account, model). None: no limit from the table.",
            Range(1, 5),
        ),
        BudgetKey(
            "enqueued_tokens",
            "table",
            {},
            "`{\"model\" = N}`: the enqueued-token limit of a model's queue, over the table's.",
            Range(1),
        ),
        BudgetKey(
            "pause_minutes",
            "float",
            60.0,
            "How long a provider that answered a quota or billing error stays paused before "
            "a batch is tried again (`ledger budget resume` ends it sooner).",
            Range(0, above=True),
        ),
    )
}


def budget_markdown_table() -> str:
    """The `[budget]` keys as the markdown table of docs/config.md."""
    lines = ["| `[budget]` key | value | default | meaning |", "| --- | --- | --- | --- |"]
    words = {"float": "number", "int": "integer", "table": "table of numbers"}
    for key in BUDGET_KEYS.values():
        default = "none" if key.default in (None, {}) else f"`{key.default:g}`"
        value = f"{words[key.kind]}, {key.accepts.describe()}"
        lines.append(f"| `{key.name}` | {value} | {default} | {key.help} |")
    return "\n".join(lines) + "\n"


def parse_budget(section: Mapping[str, Any], path: Path) -> dict[str, Any]:
    """`[budget]` of the ledger.toml at `path`, checked: ConfigError naming the file and key."""
    checked: dict[str, Any] = {}
    for key, value in section.items():
        declared = BUDGET_KEYS.get(key)
        if declared is None:
            unknown_key(path, key, "budget", BUDGET_KEYS)
        check_type(path, f"budget.{key}", value, declared.toml_types())
        if declared.kind == "table":
            for name, each in value.items():
                number = (int,) if key == "enqueued_tokens" else (int, float)
                check_type(path, f"budget.{key}.{name}", each, number)
        problem = declared.problem(value)
        if problem is not None:
            raise ConfigError(f"{path}: budget.{key}: {problem}")
        checked[key] = dict(value) if isinstance(value, dict) else value
    return checked
