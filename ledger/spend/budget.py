"""What the spend checks read from ledger.toml: `[budget]`, each provider's account name, and the
model table's rows (for prices and queue limits), re-read when the file changes, so that editing
the caps releases held jobs on a running reconciler's next pass."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ledger.config import LedgerConfig, builtin_settings, load_config
from ledger.errors import LedgerError
from ledger.settings.budget import BUDGET_KEYS
from ledger.usage.capabilities import ModelTable, load_model_table
from ledger.usage.pricing import PriceTable

log = logging.getLogger("ledger.spend")

#: The host an account is named after when a provider has no base URL of its own.
DEFAULT_HOSTS = {"openai": "api.openai.com", "anthropic": "api.anthropic.com"}


@dataclass(frozen=True, eq=False)
class Budget:
    """The caps and queue limits ledger.toml sets (each `[budget]` key: ledger.settings.budget).
    Compared and hashed by identity: a budget is read once and shared."""

    daily_usd: float | None = None
    provider_daily_usd: Mapping[str, float] = field(default_factory=dict)
    queue_tier: int | None = None
    enqueued_tokens: Mapping[str, int] = field(default_factory=dict)
    pause_minutes: float = BUDGET_KEYS["pause_minutes"].default
    #: `[providers.NAME] account`, by provider.
    accounts: Mapping[str, str] = field(default_factory=dict)
    #: `[providers.NAME] base_url`, by provider (an account is named after its host).
    base_urls: Mapping[str, str | None] = field(default_factory=dict)
    #: `[models."NAME"]` of ledger.toml, laid over the packaged model table.
    models: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: LedgerConfig) -> Budget:
        """The budget a read ledger.toml sets (the empty config: no caps)."""
        values = dict(config.budget)
        return cls(
            daily_usd=_float(values.get("daily_usd")),
            provider_daily_usd={
                k: float(v) for k, v in values.get("provider_daily_usd", {}).items()
            },
            queue_tier=values.get("queue_tier"),
            enqueued_tokens=dict(values.get("enqueued_tokens", {})),
            pause_minutes=float(values.get("pause_minutes", BUDGET_KEYS["pause_minutes"].default)),
            accounts={n: p.account for n, p in config.providers.items() if p.account},
            base_urls={n: p.base_url for n, p in config.providers.items()},
            models=config.models,
        )

    @cached_property
    def model_table(self) -> ModelTable:
        """The packaged model table under ledger.toml's rows (read once per budget)."""
        return load_model_table(self.models)

    @cached_property
    def prices(self) -> PriceTable:
        return PriceTable.from_models(self.model_table)

    def account(self, provider: str, base_url: str | None) -> str:
        """The name of the account whose queues a job of `provider` at `base_url` fills: the
        provider's `account` in ledger.toml, else the provider's name and the API host
        (`openai@api.openai.com`). Never derived from the key, which is never stored."""
        named = self.accounts.get(provider)
        if named:
            return named
        url = base_url or self.base_urls.get(provider)
        if url is None:
            builtin = builtin_settings(provider)
            url = builtin.base_url if builtin is not None else None
        host = urlsplit(url).netloc if url else DEFAULT_HOSTS.get(provider, "default")
        return f"{provider}@{host}"


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


class BudgetSource:
    """The current budget of a ledger.toml, re-read when the file's modification time changes.
    A file that became invalid keeps the last good budget (and says so in the log)."""

    def __init__(self, config: LedgerConfig) -> None:
        self._path: Path | None = config.path
        self._lock = threading.Lock()
        self._budget = Budget.from_config(config)
        self._stamp = self._mtime()

    def current(self) -> Budget:
        with self._lock:
            stamp = self._mtime()
            if self._path is not None and stamp != self._stamp:
                self._stamp = stamp
                try:
                    self._budget = Budget.from_config(load_config(self._path))
                except LedgerError as error:
                    log.warning(
                        "%s changed but cannot be read, budget unchanged: %s", self._path, error
                    )
            return self._budget

    def _mtime(self) -> int | None:
        if self._path is None:
            return None
        try:
            return os.stat(self._path).st_mtime_ns
        except OSError:
            return None


def fixed(budget: Budget | None = None) -> BudgetSource:
    """A source that always gives `budget` (the Python API, tests): no file behind it."""
    source = BudgetSource(LedgerConfig())
    if budget is not None:
        source._budget = budget
    return source
