"""The rows the benches seed a ledger with before timing anything.

Each bench builds its own ledger (a run, its jobs, its request rows) quickly, without a provider;
the run row is the same everywhere but for its size and where its input is said to lie.
"""

from __future__ import annotations

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from ledger.core.db import db_now
from ledger.core.models import Run

MODEL = "gpt-4o-mini"
CHAT_URL = "/v1/chat/completions"


def insert_run(
    connection: Connection,
    request_count: int,
    *,
    name: str = "bench",
    input_path: str = "bench",
    model: str = MODEL,
    endpoint: str = CHAT_URL,
) -> int:
    """Insert the run `name` (OpenAI, no options, a made-up input hash); return its id."""
    return connection.execute(
        insert(Run)
        .values(
            name=name,
            provider="openai",
            endpoint=endpoint,
            model=model,
            input_path=input_path,
            input_sha256="0" * 64,
            options={},
            request_count=request_count,
            created_at=connection.execute(select(db_now())).scalar_one(),
        )
        .returning(Run.id)
    ).scalar_one()
