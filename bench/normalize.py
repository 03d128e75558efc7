"""Normalizing a large shuffled output file: throughput and peak memory, next to a floor.

Two floors, each printed with its ratio:

- parse+dump, the stricter: the least any normalizer must do with the same bytes, parse every
  output and error line and serialize it again (orjson, in file order, no join, no ledger);
- parse+sort+dump, the issue's (#16): parse every line, find its input index through a dict
  built from the input shard, sort by it, and write in input order, holding everything in memory.

`normalize_job` does the second plus reading each body into the result's shape, the request rows
and the job's transaction, in bounded memory. Each side runs in its own child process, so its
peak RSS (VmHWM) is its own. `normalize_job` is timed twice: in a fresh process, and warm, after
the same process normalized a job of 20 requests of the same ledger (what a running reconciler
has paid once: the packaged price table, the statements compiled, modules first imported).

    .venv/bin/python bench/normalize.py              # a 20 MB and a 200 MB output file
    .venv/bin/python bench/normalize.py --mb 50      # one size (repeat --mb for several)
    .venv/bin/python bench/normalize.py --words 2000 # longer answers: ~15 KB lines
    .venv/bin/python bench/normalize.py --repeat 5   # medians of 5 alternated runs (default 3)

Targets (#16): normalizing within 2x of the floor's time, peak RSS under 150 MB at every size.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import shutil
import tempfile
import time
from operator import itemgetter
from pathlib import Path
from typing import Any

import orjson
from ledger_rows import insert_run
from measure import peak_rss_mb, rss_mb, run_child
from sqlalchemy import event, insert
from sqlalchemy.engine import Engine

from ledger.core.db import create_ledger_engine, open_ledger
from ledger.core.models import Request
from ledger.core.states import State
from ledger.core.store import Lease, advance, claim, create_job, release

MODEL = "gpt-4o-mini"
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
    "line",
    "file",
    "shard",
    "provider",
    "retry",
    "cost",
    "price",
    "usage",
    "memory",
    "stream",
    "index",
    "join",
    "seek",
    "crash",
    "safe",
    "normalize",
    "schema",
    "record",
    "status",
    "error",
    "expired",
    "cancelled",
    "missing",
    "quarantine",
    "conflict",
]
#: Share of requests answered with an error line (rate limits and server errors).
ERROR_SHARE = 0.01


def answer_text(index: int, words: int) -> str:
    """A deterministic answer of about `words` words for request `index`."""
    rng = random.Random(index)
    return " ".join(rng.choices(WORDS, k=words)) + "."


def response_body(index: int, words: int) -> dict[str, Any]:
    """A Responses API body like the real API's."""
    return {
        "id": f"resp_{index:024x}",
        "object": "response",
        "created_at": 1_763_700_000 + index,
        "status": "completed",
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "max_output_tokens": None,
        "model": "gpt-4o-mini-2024-07-18",
        "output": [
            {
                "type": "message",
                "id": f"msg_{index:024x}",
                "status": "completed",
                "role": "assistant",
                "content": [
                    {
                        "type": "output_text",
                        "text": answer_text(index, words),
                        "annotations": [],
                        "logprobs": [],
                    }
                ],
            }
        ],
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "store": True,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": {
            "input_tokens": 120 + index % 50,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": words + 40,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 160 + words + index % 50,
        },
        "user": None,
        "metadata": {},
    }


def chat_body(index: int, words: int) -> dict[str, Any]:
    """A Chat Completions body like the real API's."""
    return {
        "id": f"chatcmpl-{index:024x}",
        "object": "chat.completion",
        "created": 1_763_700_000 + index,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": answer_text(index, words),
                    "refusal": None,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 120 + index % 50,
            "completion_tokens": words + 40,
            "total_tokens": 160 + words + index % 50,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "service_tier": "default",
        "system_fingerprint": "fp_0ba0d124f1",
    }


def is_error(index: int) -> bool:
    """Whether request `index` is answered with an error (a line of the error file)."""
    return random.Random(-index).random() < ERROR_SHARE


def output_line(index: int, endpoint: str, words: int) -> bytes:
    """The output or error file line for request `index`."""
    custom_id = f"request-{index:07d}"
    if is_error(index):
        body: dict[str, Any] = {
            "error": {
                "message": "Rate limit reached for gpt-4o-mini.",
                "type": "requests",
                "param": None,
                "code": "rate_limit_exceeded",
            }
        }
        status = 429
    else:
        body = chat_body(index, words) if endpoint == "chat" else response_body(index, words)
        status = 200
    line = {
        "id": f"batch_req_{index:024x}",
        "custom_id": custom_id,
        "response": {"status_code": status, "request_id": f"req_{index:032x}", "body": body},
        "error": None,
    }
    return orjson.dumps(line) + b"\n"


def build_files(
    root: Path, megabytes: float, endpoint: str, words: int = 450
) -> tuple[Path, Path, Path, int]:
    """An input shard and its shuffled output and error files of about `megabytes` in all.

    450 words make about 4 KB a line: 50,000 requests in 200 MB, the Batch API's own limits.
    """
    per_line = len(output_line(1, endpoint, words))
    count = max(10, int(megabytes * 1_000_000 / per_line))
    url = "/v1/chat/completions" if endpoint == "chat" else "/v1/responses"
    input_path = root / "runs" / "bench" / "shards" / "shard-0001.jsonl"
    input_path.parent.mkdir(parents=True)
    with input_path.open("wb") as file:
        for index in range(count):
            body = {"model": MODEL, "input": f"Question {index}?", "max_output_tokens": 800}
            if endpoint == "chat":
                body = {"model": MODEL, "messages": [{"role": "user", "content": f"Q {index}?"}]}
            line = {"custom_id": f"request-{index:07d}", "method": "POST", "url": url}
            file.write(orjson.dumps({**line, "body": body}) + b"\n")
    order = list(range(count))
    random.Random(42).shuffle(order)
    output_path = root / "output.jsonl"
    error_path = root / "errors.jsonl"
    with output_path.open("wb") as output, error_path.open("wb") as errors:
        for index in order:
            (errors if is_error(index) else output).write(output_line(index, endpoint, words))
    return input_path, output_path, error_path, count


def record_job(
    db: Path,
    input_path: Path,
    output_path: Path,
    error_path: Path,
    count: int,
    endpoint: str,
    run: str = "bench",
) -> int:
    """A run in the ledger, with its request rows and its one job walked to `downloaded`."""
    engine = open_ledger(db)
    url = "/v1/chat/completions" if endpoint == "chat" else "/v1/responses"
    with engine.begin() as connection:
        run_id = insert_run(
            connection, count, name=run, input_path=str(input_path), endpoint=url, model=MODEL
        )
        job_id = create_job(
            connection,
            actor="bench",
            run_id=run_id,
            shard_index=1,
            provider="openai",
            endpoint=url,
            model=MODEL,
            input_path=str(input_path),
            input_sha256="0" * 64,
            input_bytes=input_path.stat().st_size,
            request_count=count,
        )
        rows = [
            {
                "run_id": run_id,
                "job_id": job_id,
                "custom_id": f"request-{index:07d}",
                "line_number": index + 1,
                "status": "pending",
            }
            for index in range(count)
        ]
        connection.execute(insert(Request), rows)
    with engine.begin() as connection:
        [lease] = claim(
            connection, "bench", states=[State.BUILT], limit=1, job_ids=[job_id], due_only=False
        )
        advance(connection, lease, State.BUILT, State.UPLOADED, input_file_id=f"file-{run}")
        advance(connection, lease, State.UPLOADED, State.SUBMITTED, batch_id=f"batch_{run}")
        advance(connection, lease, State.SUBMITTED, State.COMPLETED)
        advance(
            connection,
            lease,
            State.COMPLETED,
            State.DOWNLOADED,
            output_path=str(output_path),
            error_path=str(error_path),
        )
        release(connection, lease)
    engine.dispose()
    return job_id


def child_floor(paths: list[Path], scratch: Path) -> dict[str, float]:
    """Parse and re-serialize every line, in file order: the least any normalizer does."""
    before = rss_mb()
    started = time.perf_counter()
    with (scratch / "floor.jsonl").open("wb", buffering=1 << 20) as out:
        for path in paths:
            with path.open("rb") as file:
                for raw in file:
                    out.write(orjson.dumps(orjson.loads(raw)) + b"\n")
    return {"seconds": time.perf_counter() - started, "rss_before": before, "peak": peak_rss_mb()}


def child_sorted_floor(input_path: Path, paths: list[Path], scratch: Path) -> dict[str, float]:
    """Parse every line, sort by input index (a dict from the input shard), write in that order.

    The parsed lines are held with the garbage collector off, their fastest: with it on, its
    passes over 50,000 held objects make this floor 2x slower (measured at 20 MB). Holding each
    line serialized instead is as fast at 20 MB but takes 890 MB at 200 MB (orjson's bytes)."""
    gc.disable()
    before = rss_mb()
    started = time.perf_counter()
    with input_path.open("rb") as file:
        positions = {orjson.loads(raw)["custom_id"]: index for index, raw in enumerate(file)}
    parsed: list[tuple[int, Any]] = []
    for path in paths:
        with path.open("rb") as file:
            for raw in file:
                line = orjson.loads(raw)
                parsed.append((positions[line["custom_id"]], line))
    parsed.sort(key=itemgetter(0))
    with (scratch / "sorted-floor.jsonl").open("wb", buffering=1 << 20) as out:
        for _, line in parsed:
            out.write(orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE))
    return {"seconds": time.perf_counter() - started, "rss_before": before, "peak": peak_rss_mb()}


def child_normalize(db: Path, job_id: int, warm_up_job: int | None = None) -> dict[str, Any]:
    """Normalize the job, as a reconciler would, and time it. With `warm_up_job`, a small job
    of the same ledger is normalized first, untimed: what a running reconciler has already
    paid once (the price table, the statements compiled, modules a first job imports)."""
    from ledger.results.normalize import normalize_job

    engine = create_ledger_engine(f"sqlite:///{db}")
    first_use = 0.0
    if warm_up_job is not None:
        started = time.perf_counter()
        normalize_job(engine, _lease(engine, warm_up_job), warm_up_job)
        first_use = time.perf_counter() - started
    lease = _lease(engine, job_id)
    # The last transaction is the job's: its move to `normalized` and every request row.
    transactions: list[float] = []
    # The floor syncs nothing; normalizing must fsync the results (and the folders renamed
    # into) to survive a crash, so that cost is timed apart, like the transaction.
    syncing: list[float] = []
    fsync = os.fsync

    def timed_fsync(descriptor: int) -> None:
        started = time.perf_counter()
        fsync(descriptor)
        syncing.append(time.perf_counter() - started)

    os.fsync = timed_fsync
    event.listen(engine, "begin", lambda _: transactions.append(time.perf_counter()))
    event.listen(engine, "commit", lambda _: transactions.append(time.perf_counter()))
    before = rss_mb()
    started = time.perf_counter()
    summary = normalize_job(engine, lease, job_id)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "warm_up": first_use,
        "transaction": transactions[-1] - transactions[-2],
        "fsync": sum(syncing),
        "rss_before": before,
        "peak": peak_rss_mb(),
        "counts": summary.counts,
        "results_mb": summary.results_path.stat().st_size / 1e6,
    }


def _lease(engine: Engine, job_id: int) -> Lease:
    with engine.begin() as connection:
        [lease] = claim(
            connection,
            "bench",
            states=[State.DOWNLOADED],
            limit=1,
            job_ids=[job_id],
            due_only=False,
        )
    return lease


def bench(megabytes: float, endpoint: str, words: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory(prefix="ledger-bench-") as directory:
        root = Path(directory)
        built = time.perf_counter()
        input_path, output_path, error_path, count = build_files(root, megabytes, endpoint, words)
        db = root / "ledger.db"
        job_id = record_job(db, input_path, output_path, error_path, count, endpoint)
        # A job of 20 requests in the same ledger, for the warm runs to normalize first.
        small = build_files(root / "warm-up", 0.08, endpoint, words)
        warm_up_job = record_job(db, *small, endpoint, run="warm-up")
        size = (output_path.stat().st_size + error_path.stat().st_size) / 1e6
        print(
            f"\n{endpoint}: {size:.0f} MB of output in {count} lines, shuffled "
            f"(built in {time.perf_counter() - built:.0f} s)"
        )
        outputs = (str(output_path), str(error_path))
        runs: dict[str, list[dict[str, Any]]] = {
            "floor": [],
            "sorted": [],
            "normalize": [],
            "warm": [],
        }
        for attempt in range(repeat):  # alternated, so a busy moment hits every side alike
            runs["floor"].append(run_child(__file__, "floor", *outputs, str(root)))
            sorted_args = (str(input_path), *outputs, str(root))
            runs["sorted"].append(run_child(__file__, "sorted-floor", *sorted_args))
            # Each attempt normalizes a fresh copy of the ledger, its job still `downloaded`.
            fresh = root / f"ledger-{attempt}.db"
            shutil.copyfile(db, fresh)
            runs["normalize"].append(run_child(__file__, "normalize", str(fresh), str(job_id)))
            shutil.copyfile(db, fresh)
            ids = (str(job_id), str(warm_up_job))
            runs["warm"].append(run_child(__file__, "normalize", str(fresh), *ids))
        floor, sorted_floor, normal, warm = (_median(runs[side]) for side in runs)
        if repeat > 1:
            print(f"  medians of {repeat} alternated runs; peak RSS: the highest seen")
        sides = (
            ("floor (parse+dump)", floor),
            ("floor (+sort)", sorted_floor),
            ("normalize_job", normal),
            ("normalize_job, warm", warm),
        )
        for name, seen in sides:
            print(
                f"  {name:<20} {seen['seconds']:6.2f} s  {size / seen['seconds']:6.1f} MB/s  "
                f"peak RSS {seen['peak']:6.1f} MB (at start {seen['rss_before']:.1f} MB)"
            )
        for label, measured in (("normalize", normal), ("warm normalize", warm)):
            transaction, fsync = measured["transaction"], measured["fsync"]
            for name, seen in sides[:2]:
                ratio = measured["seconds"] / seen["seconds"]
                files = (measured["seconds"] - transaction) / seen["seconds"]
                bare = (measured["seconds"] - transaction - fsync) / seen["seconds"]
                print(
                    f"  {label} / {name}: {ratio:.2f}x ({files:.2f}x without the ledger "
                    f"transaction of {transaction:.2f} s, {bare:.2f}x without it and the fsyncs "
                    f"of {fsync:.2f} s)"
                )
        print(
            f"  warm: a reconciler that normalized a job before (the first, of 20 requests, "
            f"took {warm['warm_up'] * 1000:.0f} ms in that process)"
        )
        print(f"  results {normal['results_mb']:.0f} MB")
        print(f"  counts: {normal['counts']}")


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run of median time, with the highest peak RSS of all the runs."""
    middle = sorted(runs, key=itemgetter("seconds"))[len(runs) // 2]
    return {**middle, "peak": max(run["peak"] for run in runs)}


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark normalize_job against a floor.")
    parser.add_argument("--mb", type=float, action="append", help="output size in MB")
    parser.add_argument("--endpoint", choices=["responses", "chat"], default="responses")
    parser.add_argument("--words", type=int, default=450, help="words per answer (450: ~4 KB)")
    parser.add_argument("--repeat", type=int, default=3, help="alternated runs of each side")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "floor":
            result = child_floor([Path(rest[0]), Path(rest[1])], Path(rest[2]))
        elif kind == "sorted-floor":
            paths = [Path(rest[1]), Path(rest[2])]
            result = child_sorted_floor(Path(rest[0]), paths, Path(rest[3]))
        else:
            warm_up_job = int(rest[2]) if len(rest) > 2 else None
            result = child_normalize(Path(rest[0]), int(rest[1]), warm_up_job)
        print(json.dumps(result))
        return
    for megabytes in args.mb or [20, 200]:
        bench(megabytes, args.endpoint, args.words, args.repeat)


if __name__ == "__main__":
    main()
