"""Exporting a run's results (`ledger results`), JSONL and CSV, next to an orjson floor.

The run is built straight into a ledger: its jobs `normalized`, each job's results file (50,000
requests, as the Batch API allows) put in the artifact store the way `normalize_job` leaves it.
The floor is the least any exporter must do: read the stored results (through the store, so
verified as it reads) and write them with orjson, each line parsed and serialized again (JSONL),
or parsed and written as CSV rows of the same columns (CSV). Each side runs in its own child
process, so its peak RSS (VmHWM) is its own.

    .venv/bin/python bench/export.py                    # 1M requests, 20 jobs
    .venv/bin/python bench/export.py --requests 100000  # a smaller run

Targets: each format within 2x of its floor's time, peak RSS under 200 MB.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
import tempfile
import time
from pathlib import Path

import orjson
from ledger_rows import insert_run
from measure import peak_rss_mb, run_child
from sqlalchemy import update

from ledger.artifacts import RecordedFile, store_for
from ledger.core.db import create_ledger_engine, open_ledger
from ledger.core.models import Job
from ledger.core.states import State
from ledger.core.store import create_job
from ledger.results.schema import Answer, Outcome, build_result

MODEL = "gpt-4o-mini"
WORDS = ["the", "ledger", "batch", "answer", "result", "order", "token", "line", "shard", "cost"]


def result_line(index: int, job_id: int, words: int) -> bytes:
    """The normalized result of request `index`: mostly answers, 1% failures."""
    rng = random.Random(index)
    custom_id = f"request-{index:07d}"
    if rng.random() < 0.01:
        error: dict[str, str | None] = {
            "code": "rate_limit_exceeded",
            "message": "Rate limit reached.",
        }
        outcome = Outcome(custom_id, "failed", 429, f"req_{index:x}", None, error)
        answer = Answer()
    else:
        outcome = Outcome(custom_id, "succeeded", 200, f"req_{index:x}", {}, None)
        usage = {"input_tokens": 40 + index % 50, "output_tokens": words + 5, "cached_tokens": 0}
        text = " ".join(rng.choices(WORDS, k=words)) + "."
        answer = Answer(text=text, finish_reason="stop", usage={**usage, "reasoning_tokens": 0})
    record = build_result(
        outcome,
        answer,
        flags=0,
        model=MODEL,
        provider="openai",
        batch_id=f"batch_{job_id}",
        job_id=job_id,
        line_number=index + 1,
    )
    return orjson.dumps(record) + b"\n"


def build_run(root: Path, requests: int, per_job: int, words: int) -> Path:
    """A ledger whose run `bench` has `requests` results in jobs of `per_job`, all normalized."""
    db = root / "ledger.db"
    engine = open_ledger(db)
    with engine.begin() as connection:
        run_id = insert_run(connection, requests, input_path=str(root / "input.jsonl"))
    store = store_for(engine)
    for shard, start in enumerate(range(0, requests, per_job), 1):
        count = min(per_job, requests - start)
        with engine.begin() as connection:
            job_id = create_job(
                connection,
                actor="bench",
                run_id=run_id,
                shard_index=shard,
                provider="openai",
                endpoint="/v1/chat/completions",
                model=MODEL,
                input_path=str(root / f"shard-{shard:04d}.jsonl"),
                input_sha256="0" * 64,
                input_bytes=0,
                request_count=count,
            )
        path = root / f"results-{shard:04d}.jsonl"
        with path.open("wb", buffering=1 << 20) as out:
            for index in range(start, start + count):
                out.write(result_line(index, job_id, words))
        ref = str(store.put(path))
        path.unlink()
        # Straight to `normalized`: the bench times reading results, not the state machine.
        with engine.begin() as connection:
            connection.execute(
                update(Job)
                .where(Job.id == job_id)
                .values(state=State.NORMALIZED.value, results_ref=ref)
            )
    engine.dispose()
    return db


def _stored_files(db: Path) -> list[RecordedFile]:
    from ledger.results.export import find_run_results

    engine = create_ledger_engine(f"sqlite:///{db}")
    return [shard.file for shard in find_run_results(engine, "bench").shards]


FLOOR_COLUMNS = ("line_number", "custom_id", "status", "http_status", "finish_reason", "text")


def child_floor(db: Path, fmt: str, out_path: Path) -> dict[str, float]:
    """Read every stored result, parse it and write it again: JSONL, or CSV rows."""
    files = _stored_files(db)
    started = time.perf_counter()
    with out_path.open("wb", buffering=1 << 20) as out:
        text = io.TextIOWrapper(out, encoding="utf-8", newline="") if fmt == "csv" else None
        writer = csv.writer(text) if text is not None else None
        for file in files:
            with file.open() as stream:
                for raw in stream:
                    record = orjson.loads(raw)
                    if writer is None:
                        out.write(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))
                    else:
                        usage = record["usage"] or {}
                        writer.writerow(
                            [record[key] for key in FLOOR_COLUMNS]
                            + [usage.get("input_tokens"), usage.get("output_tokens")]
                            + [record["model"], record["job_id"], record["batch_id"]]
                        )
        if text is not None:
            text.flush()
            text.detach()
    return {"seconds": time.perf_counter() - started, "peak": peak_rss_mb()}


def child_export(db: Path, fmt: str, out_path: Path) -> dict[str, float]:
    """`ledger results` as the command runs it, into a file."""
    from ledger.results.export import export_results

    engine = create_ledger_engine(f"sqlite:///{db}")
    started = time.perf_counter()
    with out_path.open("wb", buffering=1 << 20) as out:
        summary = export_results(engine, "bench", out, fmt=fmt)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "peak": peak_rss_mb(), "written": summary.written}


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark `ledger results` against a floor.")
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--per-job", type=int, default=50_000)
    parser.add_argument("--words", type=int, default=30, help="words per answer")
    parser.add_argument("--format", choices=["jsonl", "csv"], action="append")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, db, fmt, out = args.child
        child = child_floor if kind == "floor" else child_export
        print(json.dumps(child(Path(db), fmt, Path(out))))
        return
    with tempfile.TemporaryDirectory(prefix="ledger-bench-") as directory:
        root = Path(directory)
        built = time.perf_counter()
        db = build_run(root, args.requests, args.per_job, args.words)
        jobs = -(-args.requests // args.per_job)
        print(
            f"{args.requests} results in {jobs} jobs, stored "
            f"(built in {time.perf_counter() - built:.0f} s)"
        )
        for fmt in args.format or ["jsonl", "csv"]:
            out = root / f"out.{fmt}"
            floor = run_child(__file__, "floor", str(db), fmt, str(out))
            size = out.stat().st_size / 1e6
            ledger = run_child(__file__, "export", str(db), fmt, str(out))
            print(f"\n{fmt}: {size:.0f} MB written by the floor, {out.stat().st_size / 1e6:.0f} MB")
            for name, seen in ((f"floor (orjson {fmt})", floor), ("export_results", ledger)):
                print(f"  {name:<20} {seen['seconds']:6.2f} s  peak RSS {seen['peak']:6.1f} MB")
            print(f"  export / floor: {ledger['seconds'] / floor['seconds']:.2f}x")
            out.unlink()


if __name__ == "__main__":
    main()
