"""Small builders of ledger rows for tests."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from sqlalchemy import insert, select
from sqlalchemy.engine import Engine

from ledger.core.db import db_now
from ledger.core.models import Request, Run
from ledger.core.store import create_job


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


def add_built_job(
    engine: Engine,
    workdir: Path,
    run_name: str,
    custom_ids: list[str],
    *,
    endpoint: str = "/v1/chat/completions",
    model: str = "gpt-4o-mini",
    shard_index: int = 1,
    provider: str = "openai",
    body: dict[str, object] | None = None,
) -> int:
    """Write a shard of Batch API lines and record its run (if new), job and request rows.

    `provider` is the job's (and a new run's) provider; `body` adds fields to every request body.
    """
    shard = workdir / "runs" / run_name / "batch_inputs" / f"shard-{shard_index:04d}.jsonl"
    shard.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for custom_id in custom_ids:
        request: dict[str, object] = {"model": model}
        if endpoint == "/v1/chat/completions":
            request["messages"] = [{"role": "user", "content": f"say {custom_id}"}]
        else:
            request["input"] = f"say {custom_id}"
        request.update(body or {})
        lines.append(
            json.dumps({"custom_id": custom_id, "method": "POST", "url": endpoint, "body": request})
        )
    content = ("\n".join(lines) + "\n").encode()
    shard.write_bytes(content)
    with engine.begin() as connection:
        run_id = connection.execute(select(Run.id).where(Run.name == run_name)).scalar()
        if run_id is None:
            run_id = connection.execute(
                insert(Run)
                .values(
                    name=run_name,
                    provider=provider,
                    endpoint=endpoint,
                    model=model,
                    input_path=str(shard),
                    input_sha256=hashlib.sha256(content).hexdigest(),
                    options={},
                    request_count=len(custom_ids),
                    created_at=connection.execute(select(db_now())).scalar_one(),
                )
                .returning(Run.id)
            ).scalar_one()
        job_id = create_job(
            connection,
            actor="test",
            run_id=run_id,
            shard_index=shard_index,
            provider=provider,
            endpoint=endpoint,
            model=model,
            input_path=str(shard),
            input_sha256=hashlib.sha256(content).hexdigest(),
            input_bytes=len(content),
            request_count=len(custom_ids),
            est_input_tokens=10 * len(custom_ids),
        )
        connection.execute(
            insert(Request),
            [
                {
                    "run_id": run_id,
                    "job_id": job_id,
                    "custom_id": custom_id,
                    "line_number": line,
                    "status": "pending",
                }
                for line, custom_id in enumerate(custom_ids, start=1)
            ],
        )
    return job_id
