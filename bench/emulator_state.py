"""The emulator on a state directory holding many files: one upload and one list, timed.

    .venv/bin/python bench/emulator_state.py                # 10,000 files, 200 batches
    .venv/bin/python bench/emulator_state.py --files 50000 --message-batches 20

The directory is filled through the store itself (one save), then an emulator is started on it
and the official SDK uploads one file, lists every file, lists batches, and retrieves one batch.
Each figure is the best of `--repeat` runs. With the first state format (one `state.json`
rewritten on every change) each upload rewrote every record; with SQLite it writes one row.
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai

from ledger.emulator import Emulator, EmulatorConfig
from ledger.emulator.store import BatchPlan, BatchRecord, MessageBatchRecord, Store


def fill(directory: Path, files: int, batches: int, message_batches: int) -> None:
    """A state directory with `files` small files, `batches` finished batches and
    `message_batches` ended Message Batches of 1,000 requests each."""
    store = Store(directory)
    now = int(time.time())
    with store.lock:
        for i in range(files):
            store.add_file(
                filename=f"shard-{i}.jsonl",
                purpose="batch",
                content=b'{"custom_id": "a"}\n',
                created_at=now,
                expires_at=None,
            )
        ids = list(store.files)
        for i in range(batches):
            batch = BatchRecord(
                id=f"batch_{i:032x}",
                endpoint="/v1/chat/completions",
                input_file_id=ids[i % len(ids)],
                completion_window="24h",
                created_at=now,
                expires_at=now + 86_400,
                metadata={"ledger_job": str(i)},
                output_expires_after=None,
                seq=store.next_seq(),
                input_filename="shard.jsonl",
                plan=BatchPlan(),
                status="completed",
            )
            store.add_batch(batch)
        for i in range(message_batches):
            requests = [
                {"custom_id": f"r{j}", "params": {"model": "claude-haiku-4-5", "max_tokens": 8}}
                for j in range(1000)
            ]
            store.message_batches[f"msgbatch_{i}"] = MessageBatchRecord(
                id=f"msgbatch_{i}",
                created_at=now,
                expires_at=now + 86_400,
                seq=store.next_seq(),
                requests=requests,
                plan=BatchPlan(),
                processing_status="ended",
                results=[
                    {"custom_id": r["custom_id"], "result": {"type": "expired"}} for r in requests
                ],
            )
        store.save()


def best(repeat: int, action: Callable[[], Any]) -> float:
    """The fastest of `repeat` runs of `action`, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description="Emulator state directory: upload and list.")
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--message-batches", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        directory = Path(temporary)
        started = time.perf_counter()
        fill(directory, args.files, args.batches, args.message_batches)
        filled = time.perf_counter() - started
        config = EmulatorConfig(state_dir=directory, polls_per_stage=1)
        with Emulator(config).start() as emu:
            client = openai.OpenAI(api_key="sk-bench", base_url=emu.base_url, max_retries=0)
            some_batch = f"batch_{0:032x}"
            upload = best(
                args.repeat,
                lambda: client.files.create(
                    file=("one.jsonl", io.BytesIO(b'{"custom_id": "x"}\n')), purpose="batch"
                ),
            )
            listed = best(args.repeat, lambda: client.files.list(limit=10_000))
            batches = best(args.repeat, lambda: client.batches.list(limit=100))
            retrieve = best(args.repeat, lambda: client.batches.retrieve(some_batch))
        size = sum(p.stat().st_size for p in directory.iterdir() if p.is_file())
    print(
        f"{args.files:,} files, {args.batches} batches, {args.message_batches} message batches "
        f"(filled in {filled:.2f} s, state {size / 1e6:.1f} MB)"
    )
    print(f"  upload one file     {upload * 1000:9.1f} ms")
    print(f"  list files (10k)    {listed * 1000:9.1f} ms")
    print(f"  list batches (100)  {batches * 1000:9.1f} ms")
    print(f"  retrieve a batch    {retrieve * 1000:9.1f} ms")


if __name__ == "__main__":
    main()
