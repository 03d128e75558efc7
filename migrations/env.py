"""Alembic environment: runs on the connection `ledger.core.db.upgrade_to_head` hands over, or
on the URL from alembic.ini when a developer runs `alembic` by hand."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from ledger.core.db import create_ledger_engine
from ledger.core.models import Base, partial_indexes

config = context.config
partial_indexes()  # so that autogenerate sees them (declared apart from their table)
target_metadata = Base.metadata


def run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things in place; batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        # Each migration commits together with the record that it was applied.
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_on(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    assert url, "alembic.ini names no sqlalchemy.url"
    engine = create_ledger_engine(url)
    with engine.connect() as connection:
        run_on(connection)
        connection.commit()


if context.is_offline_mode():
    raise SystemExit("ledger migrations run online only (ledger opens and upgrades the database)")
run_migrations_online()
