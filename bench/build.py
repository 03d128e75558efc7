"""Benchmark of `ledger submit`'s build step against the floor measured in the same run.

    .venv/bin/python bench/build.py [--rows N ...]

For each size (default 100,000 and 1,000,000 short prompts, generated in a temp dir) it prints:

- floor, JSON: read every line, parse and write it back with orjson alone (and with the stdlib
  json module, which is what orjson is measured against);
- floor, tokens: tiktoken's own `encode_ordinary_batch` of the same texts (and a plain loop of
  `encode_ordinary`, which is what the build does);
- the build with and without token counting, each in a fresh child process so its peak memory
  (VmHWM) is its own: total time, the time spent building shards and recording the ledger,
  rows/s, MB/s, and peak RSS.

Memory should stay flat from 100k to 1M rows: the build streams and keeps ids on disk.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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
    from ledger.build.run import BuildOptions, build_run
    from ledger.core.db import open_ledger
    from ledger.usage.tokens import load_encoding

    engine = open_ledger(workdir / "ledger.db")
    if count_tokens:
        load_encoding("o200k_base")  # loaded before measuring, as the baseline includes it
    baseline = peak_rss_mib()
    started = time.perf_counter()
    plan = build_run(
        engine, source, BuildOptions(model=MODEL, count_tokens=count_tokens, workdir=workdir)
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


def run_child(source: Path, workdir: Path, count_tokens: bool) -> dict[str, Any]:
    """`child` in a new interpreter, so its peak memory is measured alone."""
    workdir.mkdir()
    flag = "--count-tokens" if count_tokens else "--no-count-tokens"
    output = subprocess.run(
        [sys.executable, __file__, "--child", str(source), str(workdir), flag],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout
    return json.loads(output)


def bench(rows: int) -> None:
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
        plain = run_child(source, directory / "plain", count_tokens=False)
        counted = run_child(source, directory / "counted", count_tokens=True)
    print(f"\n{rows:,} rows, {megabytes:.1f} MB of input")
    print(
        f"  floor  orjson read+write      {json_floor:7.2f} s  {rows / json_floor:>10,.0f} rows/s"
    )
    print(f"         (stdlib json           {stdlib:7.2f} s  {rows / stdlib:>10,.0f} rows/s)")
    print(f"  floor  encode_ordinary_batch  {batch:7.2f} s  {rows / batch:>10,.0f} rows/s")
    print(f"         (encode_ordinary loop  {loop:7.2f} s  {rows / loop:>10,.0f} rows/s)")
    for label, result, floor in (
        ("build, no token counting", plain, json_floor),
        ("build, token counting", counted, json_floor + batch),
    ):
        seconds = result["seconds"]
        print(
            f"  {label:<26} {seconds:7.2f} s  {rows / seconds:>10,.0f} rows/s  "
            f"{megabytes / seconds:6.1f} MB/s  {seconds / floor:4.2f}x floor  "
            f"peak {result['peak_mib']:.0f} MiB (baseline {result['baseline_mib']:.0f})"
        )
        print(
            f"    shards {result['build']:.2f} s ({result['build'] / floor:.2f}x floor), "
            f"ledger {result['record']:.2f} s; {result['requests']:,} requests, "
            f"{result['jobs']} jobs"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark of the build step.")
    parser.add_argument("--rows", type=int, action="append", help="input size (repeatable)")
    parser.add_argument("--child", nargs=2, metavar=("INPUT", "WORKDIR"), help=argparse.SUPPRESS)
    parser.add_argument("--count-tokens", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()
    if args.child:
        source, workdir = (Path(p) for p in args.child)
        print(json.dumps(child(source, workdir, args.count_tokens)))
        return
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus")
    for rows in args.rows or [100_000, 1_000_000]:
        bench(rows)


if __name__ == "__main__":
    main()
