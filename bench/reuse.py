"""Benchmark of `submit --reuse` over a ledger of 1M earlier requests, against floors measured in
the same run.

    .venv/bin/python bench/reuse.py [--earlier 1000000] [--count 100000 ...] [--repeat 3]

The ledger (SQLite, a temp dir) is filled in bulk: a seed run built from the first half of the
new input's prompts (so their hashes are real), recorded succeeded with a results file per job,
and filler request rows with random hashes up to `--earlier` rows, inserted by one
`INSERT ... SELECT`. Then, for each `--count` (half of whose requests match a seed request):

- floor: the bare lookup, sqlite3 with the same indexed `SELECT ... WHERE body_hash IN (...)` of
  the input's hashes, 500 at a time (what `--reuse` cannot go below);
- `build_run` without --reuse (the build any submit does), and with --reuse (the lookup, the copy
  of the reused answers and their job, the rows); the extra time --reuse costs, and its ratio to
  the floor.

Each is timed `--repeat` times in turns (median printed); each build is a new run. The plan of the
lookup query (`EXPLAIN QUERY PLAN`) is printed: it must use `ix_requests_body_hash`.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.engine import Engine

from ledger.artifacts import store_for
from ledger.build.run import BuildOptions, build_run
from ledger.core.db import open_ledger
from ledger.results.schema import RESULT_KEYS

LOOKUP = (
    "SELECT body_hash, id, job_id, custom_id, reused_from FROM requests "
    "WHERE status = 'succeeded' AND body_hash IN ({marks})"
)
BATCH = 500


def write_input(path: Path, count: int, seen: int | None = None) -> None:
    """`count` prompt rows: prompt i is the same text in every input for the first `seen` rows
    (all by default), then texts no other input has."""
    seen = count if seen is None else seen
    with path.open("wb") as out:
        for i in range(count):
            prompt = f"Summarize item {i}." if i < seen else f"Summarize new item {i}."
            out.write(orjson.dumps({"id": f"q{i}", "prompt": prompt}) + b"\n")


def options(run: str, reuse: bool) -> BuildOptions:
    return BuildOptions(run_name=run, model="gpt-4o-mini", count_tokens=False, reuse=reuse)


def seed(engine: Engine, workdir: Path, matching: int, earlier: int) -> None:
    """The seed run (`matching` requests, answered) and filler rows up to `earlier` in all."""
    source = workdir / "seed.jsonl"
    write_input(source, matching)
    build_run(engine, source, options("seed", reuse=False))
    store = store_for(engine)
    with engine.begin() as connection:
        run_id = connection.execute(text("SELECT id FROM runs WHERE name = 'seed'")).scalar_one()
        jobs = connection.execute(
            text("SELECT id FROM jobs WHERE run_id = :run"), {"run": run_id}
        ).scalars()
        for job_id in list(jobs):
            path = workdir / f"results-{job_id}.jsonl"
            with path.open("wb") as out:
                for custom_id, line in connection.execute(
                    text(
                        "SELECT custom_id, line_number FROM requests WHERE job_id = :job "
                        "ORDER BY line_number"
                    ),
                    {"job": job_id},
                ):
                    out.write(result_line(custom_id, line, job_id))
            ref = store.put(path)
            connection.execute(
                text("UPDATE jobs SET state = 'normalized', results_ref = :ref WHERE id = :job"),
                {"ref": str(ref), "job": job_id},
            )
        connection.execute(
            text("UPDATE requests SET status = 'succeeded', cost_usd = 0.00001 WHERE run_id = :r"),
            {"r": run_id},
        )
        first_job = connection.execute(
            text("SELECT min(id) FROM jobs WHERE run_id = :r"), {"r": run_id}
        ).scalar_one()
    fill(engine, earlier - matching, first_job)


def result_line(custom_id: str, line: int, job_id: int) -> bytes:
    record: dict[str, Any] = dict.fromkeys(RESULT_KEYS)
    record.update(
        custom_id=custom_id,
        status="succeeded",
        http_status=200,
        model="gpt-4o-mini",
        provider="openai",
        text=f"The summary of {custom_id}.",
        usage={"input_tokens": 12, "output_tokens": 8, "cached_tokens": 0},
        job_id=job_id,
        line_number=line,
    )
    return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)


def fill(engine: Engine, count: int, job_id: int) -> None:
    """`count` succeeded rows of random hashes in a filler run (the seed's job holds them)."""
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO runs (name, provider, endpoint, model, input_path, input_sha256, "
                "options, request_count, created_at) VALUES ('filler', 'openai', "
                "'/v1/responses', 'gpt-4o-mini', '', '', '{}', :n, 0)"
            ),
            {"n": count},
        )
        connection.execute(
            text(
                "WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i + 1 < :n) "
                "INSERT INTO requests (run_id, job_id, custom_id, line_number, status, "
                "body_hash, cost_usd) SELECT (SELECT id FROM runs WHERE name = 'filler'), :job, "
                "'f' || i, i + 1, 'succeeded', randomblob(16), 0.00001 FROM s"
            ),
            {"n": count, "job": job_id},
        )


def input_hashes(database: Path, count: int) -> list[bytes]:
    """What the input of `count` rows hashes to: the seed's first half, then new hashes."""
    with sqlite3.connect(database) as connection:
        seeded = [
            row[0]
            for row in connection.execute(
                "SELECT r.body_hash FROM requests r JOIN runs n ON n.id = r.run_id "
                "WHERE n.name = 'seed' ORDER BY r.line_number LIMIT ?",
                (count // 2,),
            )
        ]
    return seeded + [os.urandom(16) for _ in range(count - len(seeded))]


def floor_lookup(database: Path, hashes: list[bytes]) -> tuple[float, int]:
    """The bare indexed lookup of `hashes`: seconds, rows found."""
    connection = sqlite3.connect(database)
    started = time.perf_counter()
    found = 0
    for start in range(0, len(hashes), BATCH):
        batch = hashes[start : start + BATCH]
        query = LOOKUP.format(marks=", ".join("?" * len(batch)))
        found += len(connection.execute(query, batch).fetchall())
    elapsed = time.perf_counter() - started
    connection.close()
    return elapsed, found


def timed_build(engine: Engine, source: Path, run: str, reuse: bool) -> tuple[float, Any]:
    started = time.perf_counter()
    plan = build_run(engine, source, options(run, reuse))
    return time.perf_counter() - started, plan


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--earlier", type=int, default=1_000_000, help="request rows before")
    parser.add_argument("--count", type=int, action="append", help="input size (repeatable)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, in turns")
    args = parser.parse_args()
    counts = args.count or [10_000, 100_000]
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, sqlite {sqlite3.sqlite_version}"
    )
    with tempfile.TemporaryDirectory(prefix="bench-reuse-") as scratch:
        workdir = Path(scratch)
        database = workdir / "ledger.db"
        engine = open_ledger(f"sqlite:///{database}")
        started = time.perf_counter()
        seed(engine, workdir, max(counts) // 2, args.earlier)
        print(
            f"ledger: {args.earlier:,} earlier request rows ({max(counts) // 2:,} answered "
            f"seed requests), filled in {time.perf_counter() - started:.1f} s"
        )
        with sqlite3.connect(database) as connection:
            plan = connection.execute(
                "EXPLAIN QUERY PLAN " + LOOKUP.format(marks="?, ?"), [b"x" * 16, b"y" * 16]
            ).fetchall()
        print("lookup plan: " + "; ".join(row[-1] for row in plan))
        for count in counts:
            report(engine, workdir, database, count, args.repeat)
        engine.dispose()
    return 0


def report(engine: Engine, workdir: Path, database: Path, count: int, repeat: int) -> None:
    source = workdir / f"input-{count}.jsonl"
    write_input(source, count, seen=count // 2)
    hashes = input_hashes(database, count)
    floors, plains, reuses = [], [], []
    reused = found = 0
    for turn in range(repeat):
        floor, found = floor_lookup(database, hashes)
        floors.append(floor)
        plain, _ = timed_build(engine, source, f"plain-{count}-{turn}", reuse=False)
        plains.append(plain)
        with_reuse, plan = timed_build(engine, source, f"reuse-{count}-{turn}", reuse=True)
        reuses.append(with_reuse)
        reused = plan.reused_requests
    floor, plain, with_reuse = (statistics.median(x) for x in (floors, plains, reuses))
    extra = with_reuse - plain
    print(f"\n{count:,} requests, half of them answered before; medians of {repeat}")
    print(f"  FLOOR bare indexed lookup     {floor:6.3f} s  ({found:,} found)")
    print(f"  build without --reuse         {plain:6.3f} s")
    print(f"  build with --reuse            {with_reuse:6.3f} s  ({reused:,} reused)")
    print(f"  extra for --reuse             {extra:6.3f} s  {extra / floor:5.2f}x floor")


if __name__ == "__main__":
    sys.exit(main())
