"""How long the `ledger` command takes to start, against the floor of starting Python at all.

    .venv/bin/python bench/startup.py [--runs N] [--ledger PATH]

Times whole processes, each run from a fresh interpreter, and prints the median and the fastest
of N runs (default 15) of:

- `python -c pass`: the floor, what any Python command costs;
- `ledger --help`: parsing and help only; should stay close to the floor;
- `ledger status` on an empty ledger (created once beforehand): the cheapest command that opens
  the database.

The commands run in an empty temporary directory with no ledger.toml, $LEDGER_CONFIG or $LEDGER_DB
in the environment. `--ledger` times another installation's script (for a before/after).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def time_process(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    """Seconds from starting `command` to its exit; it must succeed."""
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def measure(command: list[str], runs: int, cwd: Path, env: dict[str, str]) -> list[float]:
    """`runs` timings of `command`, after one untimed run that warms the OS file cache."""
    time_process(command, cwd, env)
    return [time_process(command, cwd, env) for _ in range(runs)]


def main() -> None:
    parser = argparse.ArgumentParser(description="Time the start of the ledger command.")
    parser.add_argument("--runs", type=int, default=15, help="runs of each command (default 15)")
    parser.add_argument(
        "--ledger",
        type=Path,
        default=Path(sys.executable).parent / "ledger",
        help="the ledger script to time (default: the one beside this Python)",
    )
    args = parser.parse_args()
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("LEDGER_CONFIG", "LEDGER_DB", "PYTHONPROFILEIMPORTTIME")
    }
    ledger = str(args.ledger)
    with tempfile.TemporaryDirectory(prefix="ledger-startup-") as directory:
        cwd = Path(directory)
        subprocess.run([ledger, "init"], cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "ledger --help": [ledger, "--help"],
            "ledger status (empty ledger)": [ledger, "status"],
        }
        print(f"{'command':<30} {'median':>9} {'fastest':>9}   ({args.runs} runs each)")
        for name, command in commands.items():
            timings = measure(command, args.runs, cwd, env)
            median, fastest = statistics.median(timings), min(timings)
            print(f"{name:<30} {median * 1000:>7.0f}ms {fastest * 1000:>7.0f}ms")


if __name__ == "__main__":
    main()
