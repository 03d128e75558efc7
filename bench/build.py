"""Benchmark of `ledger submit`'s build step against the floor measured in the same run.

    .venv/bin/python bench/build.py [--rows N ...]

For each size (default 100,000 and 1,000,000 short chat prompts, generated in a temp dir) it
prints:

- the floor: read every line with orjson, build its chat request line (a dict, `orjson.dumps` with
  OPT_APPEND_NEWLINE), write it, and insert one row per request into the `requests` table of a
  fresh ledger (its real schema and indexes, SQLite with synchronous=FULL) with one
  `executemany` per 10,000 rows in one transaction; also the same into a bare table with no
  index, and a read+parse+write with orjson alone (and the stdlib json module), for scale;
- the tokens floor: that floor plus a plain loop of tiktoken's `encode_ordinary` over the texts
  (`encode_ordinary_batch` is printed too: it is slower than the loop on short texts);
- `build_run` (what `ledger submit --dry-run` runs, start-up excluded) with and without token
  counting: total time, the time spent building shards and recording the ledger, rows/s, MB/s,
  peak RSS, and its ratio to the floor.

Floor and build each run in a fresh child process (so peak memory, VmHWM, is its own), in turns,
`--repeat` times (default 3); the medians are printed. Targets: the build at most 1.5x its
floor,
with tokens at most 1.3x; peak memory flat from 100k to 1M rows.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
MODEL = "gpt-4o-mini"


def generate(path: Path, rows: int) -> list[str]:
    """Write `rows` short prompt rows to `path`; return the prompts."""
    texts = [
        f"Summarise item {i}: the quick brown fox number {i % 997} jumps over the lazy dog."
        for i in range(rows)
    ]
    with open(path, "wb") as handle:
        for i, text in enumerate(texts):
            handle.write(orjson.dumps({"id": f"q{i:07d}", "prompt": text}) + b"\n")
    return texts


def floor_orjson(source: Path, target: Path) -> float:
    """Seconds to read, parse, serialize and write every line with orjson alone."""
    started = time.perf_counter()
    loads, dumps = orjson.loads, orjson.dumps
    with open(source, "rb") as reader, open(target, "wb") as writer:
        for line in reader:
            writer.write(dumps(loads(line)) + b"\n")
    return time.perf_counter() - started


def floor_build(source: Path, workdir: Path, indexed: bool) -> dict[str, Any]:
    """Seconds to read, build and write every chat request line and insert one request row
    each, in one transaction; `indexed`: into a fresh ledger's own `requests` table."""
    from ledger.build.endpoints import CHAT

    database = workdir / "floor.db"
    if indexed:
        from ledger.core.db import open_ledger

        open_ledger(database).dispose()
    db = sqlite3.connect(database, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    if not indexed:
        db.execute(
            "CREATE TABLE requests (id INTEGER PRIMARY KEY, run_id INTEGER, job_id INTEGER, "
            "custom_id TEXT, line_number INTEGER, status TEXT, est_input_tokens INTEGER)"
        )
    baseline = peak_rss_mib()
    started = time.perf_counter()
    loads, dumps, newline = orjson.loads, orjson.dumps, orjson.OPT_APPEND_NEWLINE
    insert = (
        "INSERT INTO requests (run_id, job_id, custom_id, line_number, status, "
        "est_input_tokens) VALUES (?, ?, ?, ?, ?, ?)"
    )
    db.execute("BEGIN IMMEDIATE")
    if indexed:  # the rows the request rows name
        db.execute(
            "INSERT INTO runs (id, name, provider, endpoint, model, input_path, input_sha256, "
            "options, request_count, created_at) VALUES (1, 'floor', 'openai', ?, ?, '', '', "
            "'{}', 0, 0)",
            (CHAT, MODEL),
        )
        db.execute(
            "INSERT INTO jobs (id, run_id, shard_index, state, fence, attempt, created_at, "
            "updated_at, provider, endpoint, model, input_path, input_sha256, input_bytes, "
            "request_count, est_input_tokens) VALUES (1, 1, 1, 'built', 0, 0, 0, 0, 'openai', "
            "?, ?, '', '', 0, 0, 0)",
            (CHAT, MODEL),
        )
    rows: list[tuple[Any, ...]] = []
    with open(source, "rb") as reader, open(workdir / "floor.jsonl", "wb") as writer:
        for number, line in enumerate(reader, 1):
            row = loads(line)
            custom_id = row["id"]
            body = {"model": MODEL, "messages": [{"role": "user", "content": row["prompt"]}]}
            request = {"custom_id": custom_id, "method": "POST", "url": CHAT, "body": body}
            writer.write(dumps(request, option=newline))
            rows.append((1, 1, custom_id, number, "pending", None))
            if len(rows) == 10_000:
                db.executemany(insert, rows)
                rows = []
        db.executemany(insert, rows)
        writer.flush()
        os.fsync(writer.fileno())
    db.execute("COMMIT")
    db.close()
    return {
        "seconds": time.perf_counter() - started,
        "baseline_mib": baseline,
        "peak_mib": peak_rss_mib(),
    }


def floor_stdlib_json(source: Path, target: Path) -> float:
    """The same with the standard library's json module."""
    started = time.perf_counter()
    with open(source, encoding="utf-8") as reader, open(target, "w", encoding="utf-8") as writer:
        for line in reader:
            writer.write(json.dumps(json.loads(line), separators=(",", ":")) + "\n")
    return time.perf_counter() - started


def floor_tokens(texts: list[str]) -> tuple[float, float]:
    """Seconds for tiktoken's encode_ordinary_batch, and for a loop of encode_ordinary."""
    from ledger.usage.tokens import load_encoding

    encoding = load_encoding("o200k_base")
    started = time.perf_counter()
    encoding.encode_ordinary_batch(texts)
    batch = time.perf_counter() - started
    started = time.perf_counter()
    encode = encoding.encode_ordinary
    for text in texts:
        encode(text)
    return batch, time.perf_counter() - started


def peak_rss_mib() -> float:
    """This process's peak resident memory in MiB.

    VmHWM belongs to this process's own address space; ru_maxrss would also report a forking
    parent's peak, which here holds a million prompts.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(source: Path, workdir: Path, count_tokens: bool) -> dict[str, Any]:
    """Build `source` into a fresh ledger in `workdir` (run in a child process)."""
    from ledger.build.endpoints import CHAT
    from ledger.build.run import BuildOptions, build_run
    from ledger.core.db import open_ledger
    from ledger.usage.tokens import load_encoding

    engine = open_ledger(workdir / "ledger.db")
    if count_tokens:
        load_encoding("o200k_base")  # loaded before measuring, as the baseline includes it
    baseline = peak_rss_mib()
    started = time.perf_counter()
    plan = build_run(
        engine,
        source,
        BuildOptions(model=MODEL, endpoint=CHAT, count_tokens=count_tokens, workdir=workdir),
    )
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "build": plan.timings["build"],
        "record": plan.timings["record"],
        "requests": plan.request_count,
        "jobs": len(plan.jobs),
        "baseline_mib": baseline,
        "peak_mib": peak_rss_mib(),
    }


def run_child(source: Path, workdir: Path, mode: str) -> dict[str, Any]:
    """`child` (mode plain or counted) or a floor (floor, bare) in a new interpreter, so its
    peak memory is measured alone."""
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir()
    # Every file written so far on disk: a contender's fsyncs write its own bytes only.
    os.sync()
    output = subprocess.run(
        [sys.executable, __file__, "--child", str(source), str(workdir), mode],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout
    return json.loads(output)


MODES = ("floor", "plain", "counted", "bare")


def bench(rows: int, repeat: int) -> None:
    """Measure one size and print its lines."""
    with tempfile.TemporaryDirectory(prefix="ledger-bench-") as scratch:
        directory = Path(scratch)
        source = directory / "input.jsonl"
        texts = generate(source, rows)
        megabytes = source.stat().st_size / 1e6
        json_floor = floor_orjson(source, directory / "copy.jsonl")
        stdlib = floor_stdlib_json(source, directory / "copy2.jsonl")
        batch, loop = floor_tokens(texts)
        del texts
        runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
        for _ in range(repeat):  # in turns, so a busy machine slows each alike
            for mode in MODES:
                runs[mode].append(run_child(source, directory / mode, mode))
    median = {
        mode: {key: statistics.median(r[key] for r in results) for key in results[0]}
        for mode, results in runs.items()
    }
    floor, bare = median["floor"], median["bare"]
    print(f"\n{rows:,} rows, {megabytes:.1f} MB of input, medians of {repeat} runs in turns")
    print(f"  orjson read+parse+write        {json_floor:7.2f} s  (stdlib json {stdlib:.2f} s)")
    print(f"  encode_ordinary loop           {loop:7.2f} s  (encode_ordinary_batch {batch:.2f} s)")
    print(
        f"  floor, bare table              {bare['seconds']:7.2f} s  "
        f"peak {bare['peak_mib']:.0f} MiB"
    )
    print(
        f"  FLOOR read+build+write+rows    {floor['seconds']:7.2f} s  "
        f"{rows / floor['seconds']:>10,.0f} rows/s  peak {floor['peak_mib']:.0f} MiB"
    )
    for label, result, target in (
        ("build, no token counting", median["plain"], floor["seconds"]),
        ("build, token counting", median["counted"], floor["seconds"] + loop),
    ):
        seconds = result["seconds"]
        print(
            f"  {label:<30} {seconds:7.2f} s  {rows / seconds:>10,.0f} rows/s  "
            f"{megabytes / seconds:6.1f} MB/s  {seconds / target:4.2f}x floor  "
            f"peak {result['peak_mib']:.0f} MiB (baseline {result['baseline_mib']:.0f})"
        )
        print(
            f"    shards {result['build']:.2f} s, ledger {result['record']:.2f} s; "
            f"{result['requests']:,.0f} requests, {result['jobs']:.0f} jobs"
        )
    print(f"  (token floor: floor + encode_ordinary loop = {floor['seconds'] + loop:.2f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark of the build step.")
    parser.add_argument("--rows", type=int, action="append", help="input size (repeatable)")
    parser.add_argument("--child", nargs=2, metavar=("INPUT", "WORKDIR"), help=argparse.SUPPRESS)
    parser.add_argument("mode", nargs="?", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, in turns")
    args = parser.parse_args()
    if args.child:
        source, workdir = (Path(p) for p in args.child)
        if args.mode in ("floor", "bare"):
            result = floor_build(source, workdir, indexed=args.mode == "floor")
        else:
            result = child(source, workdir, args.mode == "counted")
        print(json.dumps(result))
        return
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus")
    for rows in args.rows or [100_000, 1_000_000]:
        bench(rows, args.repeat)


if __name__ == "__main__":
    main()
