"""Opening a database ledger cannot use raises one error of the tree, naming the database and
never its password: ConfigError for what the user can fix, StorageError for a server away."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from sqlalchemy import text

from ledger import Ledger
from ledger.core.db import open_ledger, shown_url
from ledger.errors import ConfigError, StorageError


def test_a_directory_is_a_config_error(tmp_path: Path) -> None:
    """open_ledger on a directory: ConfigError naming it, before SQLite is asked."""
    with pytest.raises(ConfigError, match="is a directory"):
        open_ledger(tmp_path)


def test_a_path_under_a_file_is_a_config_error(tmp_path: Path) -> None:
    """A database path whose folder would have to be an existing file: ConfigError."""
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="cannot create"):
        open_ledger(tmp_path / "file" / "ledger.db")


def test_an_unknown_revision_is_a_config_error_from_the_python_api(tmp_path: Path) -> None:
    """Ledger.open on a database stamped by a newer ledger: ConfigError naming the revision."""
    engine = open_ledger(tmp_path / "ledger.db")
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'beyond'"))
    engine.dispose()
    with pytest.raises(ConfigError, match="schema revision 'beyond'"):
        Ledger.open(tmp_path / "ledger.db")


def test_a_server_that_does_not_answer_is_a_storage_error() -> None:
    """Nothing listening at the PostgreSQL URL's port: StorageError, the password hidden."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(StorageError, match="cannot reach the database") as caught:
        open_ledger(f"postgresql+psycopg://ledger:s3cret@127.0.0.1:{port}/ledger")
    assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql+psycopg://me:pw@db.example/ledger",
            "postgresql+psycopg://me:***@db.example/ledger",
        ),
        ("nosuch://me:pw@host:bad port/x", "nosuch://me:***@host:bad port/x"),
        ("sqlite:////tmp/ledger.db", "sqlite:////tmp/ledger.db"),
    ],
)
def test_urls_are_shown_without_their_password(url: str, shown: str) -> None:
    """shown_url hides the password, even in a URL SQLAlchemy cannot parse."""
    assert shown_url(url) == shown
