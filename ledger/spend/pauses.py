"""Providers paused for their quota or billing: when a provider answers `insufficient_quota`
(OpenAI), a billing error or a too-low credit balance (Anthropic), retrying only burns requests
until a person adds money. The account is recorded as paused with a time (`[budget]
pause_minutes` from now): until then no batch of that provider is created (its jobs wait, their
status says why), while batches already running are still polled and downloaded. `ledger budget
resume PROVIDER` ends the pause at once; past its time the next create simply tries again (and a
second refusal pauses again)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Connection, Engine, Row

from ledger.core.db import read_db_now
from ledger.core.models import ProviderPause


def pause_provider(connection: Connection, provider: str, reason: str, seconds: float) -> float:
    """Record `provider` as paused for `seconds` from now (a later refusal moves the time on);
    the time it ends, by the database's clock."""
    now = read_db_now(connection)
    until = now + seconds
    connection.execute(delete(ProviderPause).where(ProviderPause.provider == provider))
    connection.execute(
        insert(ProviderPause).values(
            provider=provider, reason=reason[:2000], paused_at=now, until=until
        )
    )
    return until


def active_pause(connection: Connection, provider: str, now: float) -> Row[Any] | None:
    """The pause of `provider` still in force at `now`, if any."""
    pause = connection.execute(
        select(ProviderPause).where(ProviderPause.provider == provider)
    ).first()
    if pause is None or (pause.until is not None and pause.until <= now):
        return None
    return pause


def describe_pause(pause: Row[Any]) -> str:
    """`provider openai paused until 08:15 UTC (`ledger budget resume openai`): <reason>`."""
    when = "until `ledger budget resume`"
    if pause.until is not None:
        when = "until " + dt.datetime.fromtimestamp(pause.until, dt.UTC).strftime(
            "%Y-%m-%d %H:%M UTC"
        )
    return (
        f"provider {pause.provider} paused {when} (`ledger budget resume {pause.provider}` "
        f"ends it): {pause.reason}"
    )


def resume_provider(engine: Engine, provider: str) -> bool:
    """End `provider`'s pause; whether there was one."""
    with engine.begin() as connection:
        done = connection.execute(delete(ProviderPause).where(ProviderPause.provider == provider))
    return bool(done.rowcount)


def pauses(connection: Connection) -> list[Row[Any]]:
    """Every pause recorded, in force or past its time."""
    return list(connection.execute(select(ProviderPause).order_by(ProviderPause.provider)))
