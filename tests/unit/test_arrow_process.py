"""`lean_arrow`: the settings `ledger results --format parquet` gives Arrow in its own process,
for the block only (each case in a fresh interpreter: both are chosen when Arrow first loads)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("pandas")

SCRIPT = """
import json, os, sys
from ledger.results.arrow_process import ALLOCATOR_VARIABLE, lean_arrow

seen = {}
with lean_arrow():
    import pyarrow as pa

    pa.array(["a list converted"], pa.string())
    seen["allocator"] = pa.default_memory_pool().backend_name
    seen["pandas_inside"] = "pandas" in sys.modules
seen["variable_after"] = os.environ.get(ALLOCATOR_VARIABLE)
frame = pa.table({"n": [1, None]}).to_pandas()
seen["frame_after"] = [None if v != v else v for v in frame["n"].tolist()]
print(json.dumps(seen))
"""


def run(env: dict[str, str]) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, env=env
    )
    return json.loads(done.stdout)


def test_arrow_allocates_with_malloc_and_never_imports_pandas_in_the_block() -> None:
    """Inside: the system allocator, no pandas; after: the variable is gone, pandas works."""
    seen = run({k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"})
    assert seen == {
        "allocator": "system",
        "pandas_inside": False,
        "variable_after": None,
        "frame_after": [1.0, None],
    }


def test_an_allocator_the_user_chose_is_kept() -> None:
    """ARROW_DEFAULT_MEMORY_POOL set by the user wins, and is left set."""
    seen = run({**os.environ, "ARROW_DEFAULT_MEMORY_POOL": "jemalloc"})
    assert seen["allocator"] == "jemalloc"
    assert seen["variable_after"] == "jemalloc"
