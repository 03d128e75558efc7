"""What every bench measures the same way: a process's own memory, and one side of a comparison
run in a child interpreter of its own (so its peak memory is its own, not its parent's).

The scripts run as `python bench/NAME.py`, so this folder is on their import path.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any


def status_mb(field: str) -> float:
    """A memory field of /proc/self/status (VmRSS, VmHWM), in MB (of 2**20 bytes)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def rss_mb() -> float:
    """This process's resident memory now, in MB."""
    return status_mb("VmRSS")


def peak_rss_mb() -> float:
    """This process's peak resident memory, in MB.

    VmHWM rather than `getrusage().ru_maxrss`: Linux carries ru_maxrss across fork and exec, so a
    child would report the parent's peak (a large file builder's) instead of its own.
    """
    return status_mb("VmHWM")


def run_child(script: str, *args: str) -> dict[str, Any]:
    """Run `script --child ARGS...` in a new interpreter; the JSON object it prints last. A child
    that fails ends the bench with its error output."""
    done = subprocess.run(
        [sys.executable, script, "--child", *args], capture_output=True, text=True
    )
    if done.returncode != 0:
        sys.exit(f"child {args[0]} failed:\n{done.stderr}")
    return json.loads(done.stdout)
