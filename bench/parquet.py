"""`ledger results --format parquet` over a large run: time and peak memory, next to a floor.

The run is COUNT normalized results in four shards, with their `requests` rows (costs included),
as normalizing leaves them. Each side runs in its own child process, so its peak RSS (VmHWM) is
its own:

- floor: pyarrow writing the same rows (the same columns and types, in row groups of GROUP_ROWS)
  from a list of tuples read and flattened beforehand: the least a Parquet writer of these rows
  does. Its time leaves the read out; its memory holds every row, as any "read it all, then
  write" would. Its process keeps pyarrow's defaults.
- export_results(fmt="parquet") as the command runs it (`lean_arrow`: Arrow allocating with
  malloc, pandas not imported): merge the shards, flatten each record as CSV does, look up the
  costs, write row groups (of GROUP_BYTES, so smaller than the floor's here); its memory should
  stay flat whatever the count.
- export_results(fmt="csv"), for reference.

    .venv/bin/python bench/parquet.py                  # 1,000,000 results
    .venv/bin/python bench/parquet.py --count 100000   # a smaller run
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import orjson
from ledger_rows import insert_run
from measure import run_child, status_mb
from sqlalchemy import insert, update

from ledger.core.db import create_ledger_engine, open_ledger
from ledger.core.models import Job, Request
from ledger.core.states import State
from ledger.core.store import create_job

MODEL = "gpt-4o-mini"
SHARDS = 4
WORDS = [
    "the",
    "a",
    "ledger",
    "batch",
    "request",
    "result",
    "model",
    "token",
    "answer",
    "question",
    "input",
    "output",
    "order",
]
#: Share of failed requests (rate limited), as in bench/normalize.py.
ERROR_SHARE = 0.01


def result_record(index: int, job_id: int, words: int) -> dict[str, Any]:
    """The result line of request `index` (line index + 1), in the schema of docs/results.md."""
    rng = random.Random(index)
    custom_id = f"request-{index:07d}"
    common = {"custom_id": custom_id, "batch_id": f"batch_{job_id}", "job_id": job_id}
    if rng.random() < ERROR_SHARE:
        return {
            **common,
            "status": "failed",
            "http_status": 429,
            "model": MODEL,
            **dict.fromkeys(["text", "json", "json_error", "refusal", "embedding"]),
            "finish_reason": None,
            "usage": None,
            "error": {"code": "rate_limit_exceeded", "message": "Rate limit reached."},
            "request_id": f"req_{index:032x}",
            "line_number": index + 1,
            "tool_calls": None,
            "choices": None,
        }
    return {
        **common,
        "status": "succeeded",
        "http_status": 200,
        "model": "gpt-4o-mini-2024-07-18",
        "text": " ".join(rng.choices(WORDS, k=words)) + ".",
        **dict.fromkeys(["json", "json_error", "refusal", "embedding"]),
        "finish_reason": "stop",
        "usage": {
            "input_tokens": 120 + index % 50,
            "output_tokens": words + 4,
            "cached_tokens": 0,
            "reasoning_tokens": 0,
        },
        "error": None,
        "request_id": f"req_{index:032x}",
        "line_number": index + 1,
        "tool_calls": None,
        "choices": None,
    }


def cost_of(record: dict[str, Any]) -> float:
    usage = record["usage"] or {"input_tokens": 0, "output_tokens": 0}
    return (usage["input_tokens"] * 0.075 + usage["output_tokens"] * 0.3) / 1e6


def build_run(root: Path, count: int, words: int) -> Path:
    """A ledger whose run `bench` has `count` normalized results in SHARDS shards."""
    db = root / "ledger.db"
    engine = open_ledger(db)
    per_shard = -(-count // SHARDS)
    with engine.begin() as connection:
        run_id = insert_run(connection, count, input_path=str(root / "input.jsonl"))
        for shard in range(SHARDS):
            lines = range(shard * per_shard, min(count, (shard + 1) * per_shard))
            path = root / "results" / f"shard-{shard + 1:04d}.jsonl"
            path.parent.mkdir(exist_ok=True)
            job_id = create_job(
                connection,
                actor="bench",
                run_id=run_id,
                shard_index=shard + 1,
                provider="openai",
                endpoint="/v1/chat/completions",
                model=MODEL,
                input_path=str(path),
                input_sha256="0" * 64,
                input_bytes=0,
                request_count=len(lines),
            )
            rows = []
            with path.open("wb", buffering=1 << 20) as out:
                for index in lines:
                    record = result_record(index, job_id, words)
                    out.write(orjson.dumps(record) + b"\n")
                    rows.append(
                        {
                            "run_id": run_id,
                            "job_id": job_id,
                            "custom_id": record["custom_id"],
                            "line_number": index + 1,
                            "status": record["status"],
                            "cost_usd": cost_of(record),
                        }
                    )
                    if len(rows) == 50_000:
                        connection.execute(insert(Request), rows)
                        rows = []
            if rows:
                connection.execute(insert(Request), rows)
            # A fixture, not a reconcile: the job is put where normalizing would leave it.
            connection.execute(
                update(Job)
                .where(Job.id == job_id)
                .values(state=State.NORMALIZED.value, results_path=str(path))
            )
    engine.dispose()
    return db


def child_export(db: str, fmt: str, out: str) -> dict[str, Any]:
    from ledger.results.arrow_process import lean_arrow
    from ledger.results.export import export_results

    # As `ledger results --format parquet` runs it: Arrow's settings are chosen before its import.
    with lean_arrow() if fmt == "parquet" else nullcontext():
        if fmt == "parquet":
            import ledger.results.parquet  # noqa: F401  (pyarrow's import is not the export's time)
        engine = create_ledger_engine(f"sqlite:///{db}")
        before = status_mb("VmRSS")
        started = time.perf_counter()
        with open(out, "wb") as file:
            summary = export_results(engine, "bench", file, fmt=fmt)
        seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "rss_before": before,
        "peak": status_mb("VmHWM"),
        "rows": summary.written,
    }


def child_floor(db: str, out: str) -> dict[str, Any]:
    """pyarrow writing the rows from tuples read beforehand (only the write is timed)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ledger.results.export import CSV_COLUMNS, csv_row, find_run_results, merged_results
    from ledger.results.parquet import GROUP_ROWS, arrow_schema

    engine = create_ledger_engine(f"sqlite:///{db}")
    before = status_mb("VmRSS")
    read_started = time.perf_counter()
    shards = find_run_results(engine, "bench").shards
    # Flattened as the export flattens, the cost from the record (the export looks it up).
    rows = [
        (*(None if c == "" else c for c in csv_row(record)), cost_of(record))
        for _, record in merged_results(shards)
    ]
    read = time.perf_counter() - read_started
    schema = arrow_schema(CSV_COLUMNS)
    started = time.perf_counter()
    with pq.ParquetWriter(out, schema, compression="zstd") as writer:
        for start in range(0, len(rows), GROUP_ROWS):
            group = rows[start : start + GROUP_ROWS]
            columns = [
                pa.array([row[i] for row in group], type=field.type)
                for i, field in enumerate(schema)
            ]
            writer.write_batch(pa.RecordBatch.from_arrays(columns, schema=schema))
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "read": read,
        "rss_before": before,
        "peak": status_mb("VmHWM"),
        "rows": len(rows),
    }


def bench(count: int, words: int) -> None:
    with tempfile.TemporaryDirectory(prefix="ledger-bench-") as directory:
        root = Path(directory)
        started = time.perf_counter()
        db = build_run(root, count, words)
        shards_mb = sum(p.stat().st_size for p in (root / "results").iterdir()) / 1e6
        print(
            f"{count:,} results, {shards_mb:.0f} MB of result lines in {SHARDS} shards "
            f"(built in {time.perf_counter() - started:.0f} s)"
        )
        floor = run_child(__file__, "floor", str(db), str(root / "floor.parquet"))
        parquet = run_child(__file__, "export", str(db), "parquet", str(root / "out.parquet"))
        csv = run_child(__file__, "export", str(db), "csv", str(root / "out.csv"))
        assert floor["rows"] == parquet["rows"] == csv["rows"] == count
        for name, seen in (
            ("floor (pyarrow, tuples)", floor),
            ("export parquet", parquet),
            ("export csv", csv),
        ):
            print(
                f"  {name:<24} {seen['seconds']:6.2f} s  {count / seen['seconds']:9,.0f} rows/s  "
                f"peak RSS {seen['peak']:6.1f} MB (at start {seen['rss_before']:.1f} MB)"
            )
        print(
            f"  floor's read and flatten beforehand: {floor['read']:.2f} s (not in its time); "
            f"parquet {(root / 'out.parquet').stat().st_size / 1e6:.0f} MB, "
            f"csv {(root / 'out.csv').stat().st_size / 1e6:.0f} MB"
        )
        read_and_write = floor["read"] + floor["seconds"]
        print(
            f"  export parquet / floor write: {parquet['seconds'] / floor['seconds']:.2f}x; "
            f"/ floor read and write: {parquet['seconds'] / read_and_write:.2f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark the Parquet export against a floor.")
    parser.add_argument("--count", type=int, default=1_000_000, help="results in the run")
    parser.add_argument("--words", type=int, default=40, help="words per answer")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        result = child_floor(*rest) if kind == "floor" else child_export(*rest)
        print(json.dumps(result))
        return
    bench(args.count, args.words)


if __name__ == "__main__":
    main()
