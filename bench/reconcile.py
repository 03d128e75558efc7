"""How fast one reconcile pass polls 1,000 in-flight jobs, next to the floor measured in the same
run: the same number of `batches.retrieve` calls made by a bare thread pool with the SDK and no
ledger. Also the ledger's own cost per transition (claim, advance, event) on SQLite with
synchronous=FULL.

    .venv/bin/python bench/reconcile.py [--jobs 1000] [--concurrency 16]

Targets: the pass within 1.3x of the bare floor; a transition under 2 ms.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sqlite3
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
from ledger_rows import insert_run
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from ledger.core.db import open_ledger
from ledger.core.models import Job
from ledger.core.states import State
from ledger.core.store import advance, claim, create_job
from ledger.emulator import Emulator, EmulatorConfig
from ledger.reconcile.engine import ReconcileOptions, Reconciler

API_KEY = "sk-bench"


def make_jobs(engine: Engine, workdir: Path, count: int) -> None:
    """`count` one-request shards, recorded as built jobs of one run."""
    shards = workdir / "runs" / "bench" / "batch_inputs"
    shards.mkdir(parents=True)
    with engine.begin() as connection:
        run_id = insert_run(connection, count)
        for index in range(1, count + 1):
            body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
            line = {"custom_id": f"r{index}", "method": "POST", "url": "/v1/chat/completions"}
            content = (json.dumps({**line, "body": body}) + "\n").encode()
            path = shards / f"shard-{index:04d}.jsonl"
            path.write_bytes(content)
            create_job(
                connection,
                actor="bench",
                run_id=run_id,
                shard_index=index,
                provider="openai",
                endpoint="/v1/chat/completions",
                model="gpt-4o-mini",
                input_path=str(path),
                input_sha256=hashlib.sha256(content).hexdigest(),
                input_bytes=len(content),
                request_count=1,
            )


def bare_floor(base_url: str, batch_ids: list[str], concurrency: int) -> float:
    """Seconds for a bare thread pool to retrieve every batch once with the SDK."""
    client = openai.OpenAI(api_key=API_KEY, base_url=base_url, max_retries=0)
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(client.batches.retrieve, batch_ids))
    return time.perf_counter() - started


def transition_cost(workdir: Path, count: int) -> tuple[float, float, float]:
    """Milliseconds per claim, and per guarded advance with its event row (giving the lease
    back in the same statement, as the reconciler does), on a fresh SQLite ledger; and the
    floor: one bare sqlite3 UPDATE and COMMIT with the same pragmas."""
    engine = open_ledger(workdir / "transitions.db")
    make_jobs(engine, workdir / "t", count)
    claims = advances = 0.0
    for _ in range(count):
        started = time.perf_counter()
        with engine.begin() as connection:
            [lease] = claim(connection, "bench", states=[State.BUILT], limit=1)
        claimed = time.perf_counter()
        with engine.begin() as connection:
            advance(
                connection,
                lease,
                State.BUILT,
                State.UPLOADED,
                input_file_id="f",
                release_lease=True,
            )
        claims += claimed - started
        advances += time.perf_counter() - claimed
    engine.dispose()
    raw = sqlite3.connect(workdir / "transitions.db", isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=FULL"):
        raw.execute(f"PRAGMA {pragma}")
    started = time.perf_counter()
    for job_id in range(1, count + 1):
        raw.execute("BEGIN IMMEDIATE")
        raw.execute("UPDATE jobs SET attempt = attempt + 1 WHERE id = ?", (job_id,))
        raw.execute("COMMIT")
    floor = time.perf_counter() - started
    raw.close()
    return claims / count * 1000, advances / count * 1000, floor / count * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    os.environ["OPENAI_API_KEY"] = API_KEY
    with (
        tempfile.TemporaryDirectory() as directory,
        Emulator(
            EmulatorConfig(stage_seconds=3600)  # batches stay in progress: every poll is a retrieve
        ).start() as emulator,
    ):
        workdir = Path(directory)
        engine = open_ledger(workdir / "ledger.db")
        make_jobs(engine, workdir, args.jobs)
        options = ReconcileOptions(
            base_url=emulator.base_url, concurrency=args.concurrency, poll_min=0, jitter=0
        )
        reconciler = Reconciler(engine, options)
        started = time.perf_counter()
        reconciler.run_pass()  # upload and create every job
        submit_seconds = time.perf_counter() - started
        with engine.connect() as connection:
            found = list(connection.execute(select(Job.batch_id)).scalars())
        batch_ids = [b for b in found if b]
        assert len(batch_ids) == args.jobs, "not every job was submitted"

        floor = bare_floor(emulator.base_url, batch_ids, args.concurrency)
        with engine.begin() as connection:
            connection.execute(update(Job).values(next_check_at=None))
        started = time.perf_counter()
        report = reconciler.run_pass()
        ledger_seconds = time.perf_counter() - started
        assert report.claimed == args.jobs, report
        polls = emulator.stats()["requests"]["retrieve_batch"]
        assert polls >= 2 * args.jobs, polls
        claim_ms, advance_ms, commit_ms = transition_cost(workdir, 500)

    print(f"jobs in flight:              {args.jobs} (concurrency {args.concurrency})")
    print(f"upload + create pass:        {submit_seconds:.2f} s")
    print(f"floor (bare SDK retrieves):  {floor:.2f} s  ({args.jobs / floor:.0f} polls/s)")
    rate = args.jobs / ledger_seconds
    print(f"ledger reconcile pass:       {ledger_seconds:.2f} s  ({rate:.0f} polls/s)")
    print(f"ratio:                       {ledger_seconds / floor:.2f}x  (target <= 1.3x)")
    print("per job on SQLite, synchronous=FULL:")
    print(f"  claim (lease + fence):                     {claim_ms:.2f} ms")
    print(f"  advance + event (+ lease given back):      {advance_ms:.2f} ms  (target < 2 ms)")
    print(f"  floor: bare sqlite3 UPDATE + COMMIT:       {commit_ms:.2f} ms")


if __name__ == "__main__":
    main()
