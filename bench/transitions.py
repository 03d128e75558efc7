"""What one state transition with its event costs, next to one bare fsync'd commit measured in the
same run (SQLite, WAL, synchronous=FULL, as the ledger opens it).

    .venv/bin/python bench/transitions.py [--jobs 500] [--threads 16] [--repeat 3]

It prints, per job:

- floor: a bare sqlite3 `UPDATE jobs ...; COMMIT` (one fsync'd commit);
- one job alone: claim (a transaction) then the guarded advance with its event row (another);
- a pass: `--jobs` jobs claimed in one statement, then advanced by `--threads` worker threads
  through the reconciler's group commit (`ledger.reconcile.group_commit`), as a reconcile pass
  does; with the number of commits it took.

Each line also gives the CPU time a job took (every thread of the process): what is left once
the disk's fsyncs are taken away, which a busy disk can make many times the floor's figure.

Target: a transition in a pass at most 2x one bare commit, and a pass over N jobs a few commits,
not 2N. Runs alternate (floor, alone, pass), `--repeat` times; medians are printed.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ledger_rows import insert_run
from sqlalchemy.engine import Engine

from ledger.core.db import open_ledger
from ledger.core.states import State
from ledger.core.store import Lease, advance, claim, create_job
from ledger.reconcile.group_commit import GroupCommit


def fresh_ledger(directory: Path, jobs: int) -> Engine:
    """A new ledger with `jobs` built jobs of one run."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir()
    engine = open_ledger(directory / "ledger.db")
    with engine.begin() as connection:
        run_id = insert_run(connection, jobs)
        for index in range(1, jobs + 1):
            create_job(
                connection,
                actor="bench",
                run_id=run_id,
                shard_index=index,
                provider="openai",
                endpoint="/v1/chat/completions",
                model="gpt-4o-mini",
                input_path=f"shard-{index}.jsonl",
                input_sha256="0" * 64,
                input_bytes=1,
                request_count=1,
            )
    return engine


def bare_commit(directory: Path, jobs: int) -> float:
    """Seconds per bare sqlite3 UPDATE + fsync'd COMMIT of one job row."""
    fresh_ledger(directory, jobs).dispose()
    raw = sqlite3.connect(directory / "ledger.db", isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=FULL"):
        raw.execute(f"PRAGMA {pragma}")
    started = time.perf_counter()
    for job_id in range(1, jobs + 1):
        raw.execute("BEGIN IMMEDIATE")
        raw.execute("UPDATE jobs SET attempt = attempt + 1 WHERE id = ?", (job_id,))
        raw.execute("COMMIT")
    seconds = time.perf_counter() - started
    raw.close()
    return seconds / jobs


def one_at_a_time(directory: Path, jobs: int) -> tuple[float, float]:
    """Seconds per job claimed alone and advanced in a transaction of its own (wall, CPU)."""
    engine = fresh_ledger(directory, jobs)
    started, cpu = time.perf_counter(), time.process_time()
    for _ in range(jobs):
        with engine.begin() as connection:
            [lease] = claim(connection, "bench", states=[State.BUILT], limit=1)
        with engine.begin() as connection:
            advance(
                connection,
                lease,
                State.BUILT,
                State.UPLOADED,
                input_file_id="f",
                release_lease=True,
            )
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    engine.dispose()
    return seconds / jobs, cpu / jobs


def in_a_pass(directory: Path, jobs: int, threads: int) -> tuple[float, float, int]:
    """Seconds per job of a pass (one claim, group-committed advances; wall, CPU), and its
    commits."""
    engine = fresh_ledger(directory, jobs)
    group = GroupCommit(engine)

    def step(lease: Lease) -> None:
        group.advance(lease, State.BUILT, State.UPLOADED, input_file_id="f", release_lease=True)

    started, cpu = time.perf_counter(), time.process_time()
    with engine.begin() as connection:
        leases = claim(connection, "bench", states=[State.BUILT], limit=jobs)
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(step, leases))
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert group.advances == jobs, group.advances
    engine.dispose()
    return seconds / jobs, cpu / jobs, group.commits + 1


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    floors, alone, alone_cpu, passes, passes_cpu, commits = [], [], [], [], [], []
    with tempfile.TemporaryDirectory(prefix="ledger-bench-") as scratch:
        directory = Path(scratch) / "ledger"
        for _ in range(args.repeat):
            floors.append(bare_commit(directory, args.jobs))
            per_job, cpu = one_at_a_time(directory, args.jobs)
            alone.append(per_job)
            alone_cpu.append(cpu)
            per_job, cpu, pass_commits = in_a_pass(directory, args.jobs, args.threads)
            passes.append(per_job)
            passes_cpu.append(cpu)
            commits.append(pass_commits)
    floor = statistics.median(floors)
    print(f"{args.jobs} jobs, {args.threads} threads, medians of {args.repeat} runs in turns")
    print(f"  floor: bare UPDATE + fsync'd COMMIT       {floor * 1000:7.2f} ms")
    one = statistics.median(alone)
    print(
        f"  one job alone: claim, then advance+event  {one * 1000:7.2f} ms  "
        f"{one / floor:5.2f}x floor  (2 commits a job; CPU "
        f"{statistics.median(alone_cpu) * 1000:.2f} ms)"
    )
    per_job = statistics.median(passes)
    print(
        f"  in a pass: claim all, group-committed     {per_job * 1000:7.2f} ms  "
        f"{per_job / floor:5.2f}x floor  ({statistics.median(commits):.0f} commits for "
        f"{args.jobs} jobs; CPU {statistics.median(passes_cpu) * 1000:.2f} ms; target <= 2x)"
    )


if __name__ == "__main__":
    main()
