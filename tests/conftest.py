"""Shared fixtures: every test gets a fresh ledger in tmp_path (and, when a PostgreSQL server is
configured, the store tests run once more against a fresh schema there)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine, make_url

from ledger.core.db import open_ledger

POSTGRES_URL = os.environ.get("LEDGER_TEST_POSTGRES_URL")


@pytest.fixture(autouse=True)
def isolated_workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in tmp_path, with no ledger database, config file or API key leaking in from the
    environment."""
    monkeypatch.chdir(tmp_path)
    for name in (
        "LEDGER_DB",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
        "LEDGER_CRASH_AT",
        "LEDGER_CONFIG",
        "LEDGER_PRICES",
        "LEDGER_ARTIFACT_STORE",
    ):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: SQLite always, PostgreSQL when LEDGER_TEST_POSTGRES_URL is set."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL variant skipped: LEDGER_TEST_POSTGRES_URL is not set")
    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
    url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """A migrated ledger on each configured database."""
    ledger_engine = open_ledger(db_url)
    yield ledger_engine
    ledger_engine.dispose()


@pytest.fixture
def emulator() -> Iterator[Any]:
    """The built-in OpenAI Batch API emulator on a free loopback port, one stage per poll."""
    from ledger.emulator import Emulator, EmulatorConfig

    with Emulator(EmulatorConfig(polls_per_stage=1)).start() as running:
        yield running


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """A recognisable fake API key in the environment, to prove it never leaks."""
    key = "sk-test-LEAKCANARY0123456789"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    return key


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One line for every skip, grouped by reason, instead of one line per skipped test (the
    PostgreSQL variants alone are over a hundred when no server is configured)."""
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped:
        return
    reasons: dict[str, int] = {}
    for report in skipped:
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        reason = reason.removeprefix("Skipped: ")
        reasons[reason] = reasons.get(reason, 0) + 1
    parts = [f"{count} x {reason}" for reason, count in sorted(reasons.items())]
    terminalreporter.write_line(f"skipped {len(skipped)}: " + "; ".join(parts))
