"""Memory stays flat: joining a large output file to input order never holds the file."""

from __future__ import annotations

import random
import tracemalloc
from pathlib import Path

from sqlalchemy.engine import Engine
from support.batchfiles import downloaded_job, input_line, ok_line, response_body

from ledger.results.normalize import normalize_job


def test_peak_memory_does_not_grow_with_the_output_file(engine: Engine, tmp_path: Path) -> None:
    """A 10 MB shuffled output file is normalized with under 6 MB of Python allocations."""
    warm_up = downloaded_job(
        engine, tmp_path, [input_line("w")], output=[ok_line("w", response_body())], run="warm"
    )
    normalize_job(engine, warm_up.lease, warm_up.job_id)  # first-use caches are not the join's
    ids = [f"req-{n:03d}" for n in range(200)]
    rng = random.Random(3)
    output = [
        ok_line(cid, response_body(["".join(rng.choices("abcdefgh ", k=50_000))])) for cid in ids
    ]
    rng.shuffle(output)
    job = downloaded_job(engine, tmp_path, [input_line(cid) for cid in ids], output=output)
    tracemalloc.start()
    try:
        summary = normalize_job(engine, job.lease, job.job_id)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert summary.results_path.stat().st_size > 10_000_000
    assert summary.counts["succeeded"] == 200
    # The spill file's 1 MB buffer, the results' 1 MB blocks (one being filled, at most three
    # with the thread that hashes and writes them) and one line at a time; the whole file would
    # be over 10 MB.
    assert peak < 6_000_000, f"peak {peak / 1e6:.1f} MB"
