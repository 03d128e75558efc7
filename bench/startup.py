"""How long the `ledger` command takes to start, against the floor of starting Python at all.

    .venv/bin/python bench/startup.py [--runs N] [--ledger PATH]

Times whole processes, each run from a fresh interpreter, and prints the median and the fastest
of N runs (default 15) of:

- `python -c pass`: the floor, what any Python command costs;
- `ledger --help`: parsing and help only; should stay close to the floor;
- `ledger status` on an empty ledger (created once beforehand): the cheapest command that opens
  the database.

The commands run in an empty temporary directory with no ledger.toml, $LEDGER_CONFIG or $LEDGER_DB
in the environment. `--ledger PATH` times another installation's script; given more than once, the
scripts are timed in turns (for a before/after on a machine whose load varies).
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


def measure(
    commands: dict[str, list[str]], runs: int, cwd: Path, env: dict[str, str]
) -> dict[str, list[float]]:
    """`runs` timings of each command, taken in turns so that a busy machine slows all alike,
    after one untimed round that warms the OS file cache."""
    timings: dict[str, list[float]] = {name: [] for name in commands}
    for round_number in range(runs + 1):
        for name, command in commands.items():
            seconds = time_process(command, cwd, env)
            if round_number:
                timings[name].append(seconds)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description="Time the start of the ledger command.")
    parser.add_argument("--runs", type=int, default=15, help="runs of each command (default 15)")
    parser.add_argument(
        "--ledger",
        type=Path,
        action="append",
        help="a ledger script to time, repeatable to compare installations (default: the one "
        "beside this Python)",
    )
    args = parser.parse_args()
    scripts = [str(p.absolute()) for p in args.ledger or [Path(sys.executable).parent / "ledger"]]
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("LEDGER_CONFIG", "LEDGER_DB", "PYTHONPROFILEIMPORTTIME")
    }
    commands = {"python -c pass": [sys.executable, "-c", "pass"]}
    for script in scripts:
        label = "ledger" if len(scripts) == 1 else script
        commands[f"{label} --help"] = [script, "--help"]
        commands[f"{label} status (empty ledger)"] = [script, "status"]
    with tempfile.TemporaryDirectory(prefix="ledger-startup-") as directory:
        cwd = Path(directory)
        subprocess.run(
            [scripts[0], "init"], cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL
        )
        timings = measure(commands, args.runs, cwd, env)
    width = max(len(name) for name in commands)
    print(f"{'command':<{width}} {'median':>9} {'fastest':>9}   ({args.runs} runs each)")
    for name, seconds in timings.items():
        median, fastest = statistics.median(seconds), min(seconds)
        print(f"{name:<{width}} {median * 1000:>7.0f}ms {fastest * 1000:>7.0f}ms")


if __name__ == "__main__":
    main()
