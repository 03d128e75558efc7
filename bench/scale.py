"""How fast the queries a user runs answer over a large ledger (10 runs of 1M requests by default),
each next to a floor measured in the same run: a primary-key lookup and a count of 1,000 rows.

    .venv/bin/python bench/scale.py [--runs 10] [--per-run 1000000] [--db URL] [--repeat 5]
    .venv/bin/python bench/scale.py --db postgresql+psycopg://postgres@127.0.0.1:5432/test

The ledger is built in bulk, with no provider: runs, one job per 50,000 requests, and request rows
with plausible statuses, error codes, tokens and costs, inserted by one `INSERT ... SELECT` per run
(a recursive CTE on SQLite, generate_series on PostgreSQL) with the secondary indexes built after.
On PostgreSQL it is built in a fresh schema, dropped at the end. `--without-indexes` drops the
indexes of migration 0005 before timing, to show what they buy. Each query is timed `--repeat`
times (median, warm cache), printed with its plan (`EXPLAIN QUERY PLAN` / `EXPLAIN`) and the
database's size per 1M requests.

Target (issue 16): each query under 1 s at 10M request rows, each using an index.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import make_url, text
from sqlalchemy.engine import Connection, Engine

from ledger.core.db import create_ledger_engine, open_ledger
from ledger.query.report import status_report

JOB_SIZE = 50_000
#: (model, batch price per 1M input tokens, per 1M output tokens), one per run in turn.
MODELS = (
    ("gpt-4o-mini", 0.075, 0.30),
    ("gpt-4o", 1.25, 5.00),
    ("claude-3-5-haiku-latest", 0.40, 2.00),
)
#: Indexes of migration 0005, dropped by --without-indexes.
NEW_INDEXES = ("ix_requests_run_status", "ix_requests_cost_usd")


def request_select(
    postgres: bool, run_id: int, first_job: int, size: int, pending_from: int
) -> str:
    """A SELECT of `size` request rows of run `run_id`: about 97% succeeded, 2% failed, 1% expired
    or missing; rows at or past `pending_from` still pending (their job not normalized)."""
    i = "s.i"
    h = f"(({i} * 37 + {i} / 1000) % 1000)"
    tokens_in = f"(40 + ({i} * 13) % 900)"
    tokens_out = f"(10 + ({i} * 7) % 600)"
    _, price_in, price_out = MODELS[(run_id - 1) % len(MODELS)]
    done = f"{i} < {pending_from}"
    status = (
        f"CASE WHEN NOT ({done}) THEN 'pending' WHEN {h} < 20 THEN 'failed' "
        f"WHEN {h} < 27 THEN 'expired' WHEN {h} < 30 THEN 'missing' ELSE 'succeeded' END"
    )
    ran = f"({done} AND ({h} < 20 OR {h} >= 30))"
    failed = f"({done} AND {h} < 20)"
    code = (
        f"CASE WHEN NOT {failed} THEN NULL WHEN {h} < 12 THEN 'rate_limit_exceeded' "
        f"WHEN {h} < 17 THEN 'server_error' ELSE 'invalid_request_error' END"
    )
    message = f"CASE WHEN {failed} THEN 'The request could not be completed (' || {code} || ')' END"
    http = (
        f"CASE WHEN NOT {ran} THEN NULL WHEN {h} < 12 THEN 429 WHEN {h} < 17 THEN 500 "
        f"WHEN {h} < 20 THEN 400 ELSE 200 END"
    )
    cost = f"({tokens_in} * {price_in} + {tokens_out} * {price_out}) / 1000000.0"
    columns = (
        f"{run_id}, {first_job} + {i} / {JOB_SIZE}, 'req-' || {i}, {i} + 1, {status}, {http}, "
        f"{code}, {message}, {tokens_in}, "
        f"CASE WHEN {ran} THEN {tokens_in} END, "
        f"CASE WHEN {ran} AND {h} >= 20 THEN {tokens_out} END, "
        f"CASE WHEN {ran} THEN {cost} END"
    )
    names = (
        "run_id, job_id, custom_id, line_number, status, http_status, error_code, "
        "error_message, est_input_tokens, input_tokens, output_tokens, cost_usd"
    )
    if postgres:
        return (
            f"INSERT INTO requests ({names}) SELECT {columns} "
            f"FROM generate_series(0, {size - 1}) AS s(i)"
        )
    return (
        f"WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < {size - 1}) "
        f"INSERT INTO requests ({names}) SELECT {columns} FROM s"
    )


def build(engine: Engine, runs: int, per_run: int) -> float:
    """Fill an empty, migrated ledger; the seconds it took."""
    started = time.perf_counter()
    postgres = engine.dialect.name == "postgresql"
    jobs_per_run = -(-per_run // JOB_SIZE)
    with engine.begin() as connection:
        if not postgres:
            connection.exec_driver_sql("PRAGMA cache_size=-1000000")
        indexes = _secondary_indexes(connection, postgres)
        for name in indexes:
            connection.exec_driver_sql(f"DROP INDEX {name}")
        for run_id in range(1, runs + 1):
            model, price_in, price_out = MODELS[(run_id - 1) % len(MODELS)]
            # The last run is half done: its later jobs are still in flight.
            pending_from = per_run if run_id < runs or runs == 1 else per_run // 2
            connection.execute(
                text(
                    "INSERT INTO runs (id, name, provider, endpoint, model, input_path, "
                    "input_sha256, options, request_count, created_at) VALUES (:id, :name, "
                    "'openai', '/v1/chat/completions', :model, 'input.jsonl', :sha, '{}', "
                    ":count, :at)"
                ),
                {
                    "id": run_id,
                    "name": f"run-{run_id}",
                    "model": model,
                    "sha": "0" * 64,
                    "count": per_run,
                    "at": time.time(),
                },
            )
            first_job = (run_id - 1) * jobs_per_run + 1
            connection.execute(
                text(
                    "INSERT INTO jobs (id, run_id, shard_index, state, provider, endpoint, model, "
                    "input_path, input_sha256, input_bytes, request_count, est_input_tokens, "
                    "results_path, input_tokens, output_tokens, cost_usd, attempt, fence, "
                    "created_at, updated_at) VALUES (:id, :run, :shard, :state, 'openai', "
                    "'/v1/chat/completions', :model, 'shard.jsonl', :sha, 1000000, :count, 0, "
                    ":results, :tin, :tout, :cost, 0, 0, :at, :at)"
                ),
                [
                    _job(
                        run_id, first_job, shard, per_run, pending_from, model, price_in, price_out
                    )
                    for shard in range(jobs_per_run)
                ],
            )
            connection.execute(
                text(request_select(postgres, run_id, first_job, per_run, pending_from))
            )
            print(f"  run {run_id}: {time.perf_counter() - started:.1f} s", file=sys.stderr)
        for ddl in indexes.values():
            connection.exec_driver_sql(ddl)
    with engine.connect() as connection:
        connection.exec_driver_sql("ANALYZE")
        connection.commit()
    if postgres:
        # A bulk load leaves the visibility map empty; autovacuum would set it in time.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM requests")
    return time.perf_counter() - started


def _job(
    run_id: int,
    first_job: int,
    shard: int,
    per_run: int,
    pending_from: int,
    model: str,
    price_in: float,
    price_out: float,
) -> dict[str, Any]:
    # Totals as normalize stores them; close to the rows', which is all a bench needs.
    count = min(JOB_SIZE, per_run - shard * JOB_SIZE)
    done = shard * JOB_SIZE < pending_from
    tokens_in, tokens_out = count * 490, count * 300
    return {
        "id": first_job + shard,
        "run": run_id,
        "shard": shard,
        "state": "normalized" if done else "in_progress",
        "model": model,
        "sha": "0" * 64,
        "count": count,
        "results": f"results-{shard}.jsonl" if done else None,
        "tin": tokens_in if done else None,
        "tout": tokens_out if done else None,
        "cost": (tokens_in * price_in + tokens_out * price_out) / 1e6 if done else None,
        "at": time.time(),
    }


def _secondary_indexes(connection: Connection, postgres: bool) -> dict[str, str]:
    # Built after the rows, as one sort each, rather than grown row by row.
    if postgres:
        query = (
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'requests' "
            "AND schemaname = current_schema() AND indexname LIKE 'ix_%'"
        )
    else:
        query = (
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
            "AND tbl_name = 'requests' AND sql IS NOT NULL"
        )
    return {name: ddl for name, ddl in connection.execute(text(query)).all()}


def queries(run_id: int) -> dict[str, str]:
    """The SQL of the queries a user runs, on run `run_id` where they take one."""
    return {
        "failed requests of a run, with errors": (
            "SELECT custom_id, line_number, http_status, error_code, error_message "
            f"FROM requests WHERE run_id = {run_id} AND status = 'failed' ORDER BY line_number"
        ),
        "cost per model": (
            "SELECT model, SUM(cost_usd) AS cost_usd FROM jobs "
            "WHERE results_path IS NOT NULL GROUP BY model"
        ),
        "100 most expensive requests": (
            "SELECT q.custom_id, r.name, q.input_tokens, q.output_tokens, q.cost_usd "
            "FROM requests q JOIN runs r ON r.id = q.run_id WHERE q.cost_usd IS NOT NULL "
            "ORDER BY q.cost_usd DESC LIMIT 100"
        ),
        "tokens per model": (
            "SELECT model, SUM(input_tokens) AS input_tokens, SUM(output_tokens) AS output_tokens "
            "FROM jobs GROUP BY model"
        ),
        "run_progress (every run)": "SELECT * FROM run_progress",
        "run_progress (one run)": f"SELECT * FROM run_progress WHERE run_id = {run_id}",
    }


def floors(run_id: int) -> dict[str, str]:
    return {
        "floor: primary-key lookup": f"SELECT * FROM requests WHERE id = {run_id * 1000}",
        "floor: count of 1,000 rows": "SELECT count(*) FROM requests WHERE id < 1000",
    }


def median_seconds(action: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def plan(engine: Engine, sql: str) -> list[str]:
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            return [row[0] for row in connection.exec_driver_sql(f"EXPLAIN {sql}")]
        return [row[3] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")]


def size_bytes(engine: Engine) -> int:
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            return int(
                connection.exec_driver_sql(
                    "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n "
                    "ON n.oid = c.relnamespace WHERE n.nspname = current_schema() "
                    "AND c.relkind = 'r'"
                ).scalar_one()
            )
        pages = connection.exec_driver_sql("PRAGMA page_count").scalar_one()
        return int(pages) * int(connection.exec_driver_sql("PRAGMA page_size").scalar_one())


def measure(engine: Engine, runs: int, per_run: int, repeat: int) -> None:
    run_id = max(1, runs // 2)
    run_name = f"run-{run_id}"
    print(f"\n{'query':42} {'median':>10}  plan")
    timed: dict[str, Callable[[], object]] = {}
    for name, sql in {**floors(run_id), **queries(run_id)}.items():
        timed[name] = _fetch_all(engine, sql)
    timed["ledger status (status_report, every run)"] = lambda: status_report(engine)
    timed["ledger status <run> (status_report)"] = lambda: status_report(engine, run_name)
    plans = {**floors(run_id), **queries(run_id)}
    for name, action in timed.items():
        seconds = median_seconds(action, repeat)
        print(f"{name:42} {_ms(seconds):>10}")
        if name in plans:
            for line in plan(engine, plans[name]):
                print(f"{'':55}{line}")
    total = runs * per_run
    size = size_bytes(engine)
    print(
        f"\ndatabase: {size / 2**20:,.0f} MiB for {total:,} requests, "
        f"{size / 2**20 / (total / 1e6):,.0f} MiB per 1M requests"
    )


def _fetch_all(engine: Engine, sql: str) -> Callable[[], object]:
    def run() -> object:
        with engine.connect() as connection:
            return connection.exec_driver_sql(sql).all()

    return run


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--per-run", type=int, default=1_000_000)
    parser.add_argument("--db", help="a PostgreSQL URL (default: a fresh SQLite file)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--without-indexes", action="store_true", help="drop 0005's indexes")
    parser.add_argument("--keep", type=Path, help="SQLite: build (or reuse) this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        url, cleanup = _database(args.db, args.keep or Path(scratch) / "ledger.db")
        try:
            engine = open_ledger(url)
            with engine.connect() as connection:
                rows = connection.exec_driver_sql("SELECT count(*) FROM requests").scalar_one()
            print(f"{engine.dialect.name}: {args.runs} runs x {args.per_run:,} requests")
            if rows == 0:
                seconds = build(engine, args.runs, args.per_run)
                print(f"built in {seconds:.1f} s")
            if args.without_indexes:
                with engine.begin() as connection:
                    for name in NEW_INDEXES:
                        connection.exec_driver_sql(f"DROP INDEX IF EXISTS {name}")
            measure(engine, args.runs, args.per_run, args.repeat)
            engine.dispose()
        finally:
            cleanup()


def _database(db: str | None, sqlite_file: Path) -> tuple[str, Callable[[], None]]:
    """The URL to build in, and what drops it afterwards."""
    if db is None:
        return f"sqlite:///{sqlite_file}", lambda: None
    schema = f"bench_scale_{uuid.uuid4().hex[:8]}"
    admin = create_ledger_engine(db)
    with admin.begin() as connection:
        connection.exec_driver_sql(f"CREATE SCHEMA {schema}")

    def drop() -> None:
        with admin.begin() as connection:
            connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()

    url = make_url(db).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False), drop


if __name__ == "__main__":
    main()
