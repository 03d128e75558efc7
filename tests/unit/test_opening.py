"""Opening a ledger: migrate only when behind, read-only opens, the database file's mode."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from click.testing import CliRunner
from sqlalchemy import event, text
from sqlalchemy.engine import Engine

from cli import cli
from ledger.core.db import SCHEMA_HEAD, alembic_config, open_ledger
from ledger.errors import ConfigError


@pytest.fixture
def statements() -> Iterator[list[str]]:
    """Every SQL statement any engine runs while the test does."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(Engine, "before_cursor_execute", record)
    yield seen
    event.remove(Engine, "before_cursor_execute", record)


def test_schema_head_is_the_newest_migration() -> None:
    """SCHEMA_HEAD names the one head of migrations/versions/."""
    assert ScriptDirectory.from_config(alembic_config()).get_heads() == [SCHEMA_HEAD]


def test_opening_a_current_ledger_writes_nothing(tmp_path: Path, statements: list[str]) -> None:
    """On a database already at head, opening runs no migration and takes no write lock."""
    open_ledger(tmp_path / "ledger.db").dispose()
    statements.clear()
    engine = open_ledger(tmp_path / "ledger.db")
    engine.dispose()
    assert "BEGIN IMMEDIATE" not in statements
    writes = ("INSERT", "UPDATE", "DELETE", "CREATE", "ALTER", "DROP")
    assert not [s for s in statements if s.lstrip().upper().startswith(writes)]


def test_a_read_only_open_of_a_schema_behind_says_so(tmp_path: Path) -> None:
    """`ledger status` on a ledger whose schema is behind: one line, exit 2, nothing migrated."""
    engine = open_ledger(tmp_path / "ledger.db")
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    engine.dispose()
    with pytest.raises(ConfigError, match="older than this ledger's"):
        open_ledger(tmp_path / "ledger.db", readonly=True)
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "ledger.db"), "status"])
    assert result.exit_code == 2
    assert "ledger init" in result.output and len(result.output.strip().splitlines()) == 1


def test_a_read_only_open_creates_a_missing_ledger(tmp_path: Path) -> None:
    """The first `ledger status` in an empty folder still shows an empty ledger."""
    result = CliRunner().invoke(cli, ["status"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "ledger.db").exists()


def test_init_creates_the_database_file_0600(tmp_path: Path) -> None:
    """The ledger file holds every prompt's metadata: only its owner may read it."""
    result = CliRunner().invoke(cli, ["init"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    for path in tmp_path.glob("ledger.db*"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert (tmp_path / "ledger.db").exists()
