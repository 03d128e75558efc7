"""The dashboard's database connection can read the ledger and cannot change it."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from support.factories import add_jobs, add_run

from ledger.core.db import open_ledger
from ledger.core.models import Job, Run
from ledger.ui.readonly import open_readonly


def test_a_write_through_the_dashboards_connection_is_refused(engine: Engine, db_url: str) -> None:
    """INSERT, UPDATE and DDL all fail on the read-only connection; the rows stay as they were."""
    run_id = add_run(engine, "r")
    add_jobs(engine, run_id, 2)
    readonly = open_readonly(db_url)
    try:
        with readonly.connect() as connection:
            assert connection.execute(select(func.count()).select_from(Job)).scalar_one() == 2
        writes = [
            update(Job).values(state="normalized"),
            insert(Run).values(
                name="sneaky",
                provider="openai",
                endpoint="/v1/responses",
                model="m",
                input_path="x",
                input_sha256="0" * 64,
                options={},
                request_count=0,
                created_at=0.0,
            ),
            text("CREATE TABLE sneaky (id INTEGER)"),
        ]
        for write in writes:
            with readonly.connect() as connection, pytest.raises(DBAPIError) as refused:
                connection.execute(write)
                connection.commit()
            assert "read" in str(refused.value.orig).lower()  # "readonly" / "read-only"
    finally:
        readonly.dispose()
    with engine.connect() as connection:
        states = connection.execute(select(Job.state)).scalars().all()
        names = connection.execute(select(Run.name)).scalars().all()
    assert states == ["built", "built"] and names == ["r"]


def test_sqlite_stays_read_only_even_with_query_only_turned_off(tmp_path: Path) -> None:
    """The file itself is opened read-only: undoing `PRAGMA query_only` does not allow writes."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    writable = open_ledger(url)
    add_run(writable, "r")
    writable.dispose()
    readonly = open_readonly(url)
    try:
        with readonly.connect() as connection:
            connection.exec_driver_sql("PRAGMA query_only = OFF")
            with pytest.raises(DBAPIError, match="readonly database"):
                connection.execute(update(Run).values(name="changed"))
    finally:
        readonly.dispose()
