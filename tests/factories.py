"""Small builders of ledger rows for tests."""

from __future__ import annotations

from sqlalchemy import insert, select
from sqlalchemy.engine import Engine

from ledger.db import db_now
from ledger.models import Run
from ledger.store import create_job


def add_run(engine: Engine, name: str = "run") -> int:
    """Insert a run with plausible settings and return its id."""
    with engine.begin() as connection:
        now = connection.execute(select(db_now())).scalar_one()
        return connection.execute(
            insert(Run)
            .values(
                name=name,
                provider="openai",
                endpoint="/v1/responses",
                model="gpt-4o-mini",
                input_path="in.jsonl",
                input_sha256="0" * 64,
                options={},
                request_count=1,
                created_at=now,
            )
            .returning(Run.id)
        ).scalar_one()


def add_jobs(engine: Engine, run_id: int, count: int) -> list[int]:
    """Insert `count` built jobs in one run and return their ids."""
    with engine.begin() as connection:
        return [
            create_job(
                connection,
                actor="test",
                run_id=run_id,
                shard_index=index,
                provider="openai",
                endpoint="/v1/responses",
                model="gpt-4o-mini",
                input_path=f"shard-{index:04d}.jsonl",
                input_sha256="0" * 64,
                input_bytes=10,
                request_count=1,
            )
            for index in range(1, count + 1)
        ]
