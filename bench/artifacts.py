"""Putting and reading back a large artifact through each store, next to a plain file copy floor.

    .venv/bin/python bench/artifacts.py                  # 200 MB: floor, local, database on SQLite
    .venv/bin/python bench/artifacts.py --mb 50 --postgres postgresql+psycopg://...

The floor is the least any store must do with the same bytes: copy the file and fsync it (put),
then read it back and hash it (get); a store's get is `open` read to the end, verified. Each case
runs in its own child process, so its peak RSS (VmHWM) is its own; it should stay flat whatever
the file size, since no store holds a file whole.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from ledger.artifacts import CHUNK_BYTES, DatabaseStore, LocalFolderStore
from ledger.artifacts.base import ArtifactStore
from ledger.core.db import open_ledger


def write_source(path: Path, mb: int) -> None:
    """JSONL-like bytes (varied, so nothing compresses to nothing)."""
    with path.open("wb") as out:
        for n in range(mb):
            out.write(os.urandom(CHUNK_BYTES // 2).hex().encode())
            if n % 16 == 0:
                out.write(b"\n")


def floor(source: Path, workdir: Path) -> dict[str, float]:
    copy = workdir / "floor-copy"
    started = time.perf_counter()
    with source.open("rb") as handle, copy.open("wb") as out:
        while block := handle.read(CHUNK_BYTES):
            out.write(block)
        out.flush()
        os.fsync(out.fileno())
    put = time.perf_counter() - started
    started = time.perf_counter()
    digest = hashlib.sha256()
    with copy.open("rb") as handle:
        while block := handle.read(CHUNK_BYTES):
            digest.update(block)
    return {"put_s": put, "get_s": time.perf_counter() - started}


def through_store(store: ArtifactStore, source: Path, workdir: Path) -> dict[str, float]:
    started = time.perf_counter()
    ref = store.put(source)
    put = time.perf_counter() - started
    started = time.perf_counter()
    with store.open(ref) as stream:  # verified as it is read, like the floor's hash
        while stream.read(CHUNK_BYTES):
            pass
    return {"put_s": put, "get_s": time.perf_counter() - started}


def child(case: str, source: Path, workdir: Path, url: str | None) -> dict[str, Any]:
    if case == "floor":
        timings = floor(source, workdir)
    elif case == "local":
        timings = through_store(LocalFolderStore(workdir / "artifacts"), source, workdir)
    else:
        timings = through_store(DatabaseStore(open_ledger(url)), source, workdir)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {**timings, "peak_rss_mib": peak_kib / 1024}


def run_case(case: str, source: Path, url: str | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"bench-artifacts-{case}-") as workdir:
        command = [sys.executable, __file__, "--child", case, str(source), workdir, url or ""]
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


@contextmanager
def postgres_schema(url: str) -> Iterator[str]:
    """A URL on a schema of its own, dropped afterwards: the bench never touches other tables."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    schema = f"bench_artifacts_{os.getpid()}"
    admin = create_engine(url)
    with admin.begin() as connection:
        connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
    parsed = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield parsed.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark of the artifact stores.")
    parser.add_argument("--mb", type=int, default=200, help="artifact size in MiB")
    parser.add_argument("--postgres", help="also run the database store on this PostgreSQL URL")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        case, source, workdir, url = args.child
        print(json.dumps(child(case, Path(source), Path(workdir), url or None)))
        return
    with ExitStack() as stack:
        scratch = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-artifacts-"))
        source = Path(scratch) / "source.jsonl"
        write_source(source, args.mb)
        size_mb = source.stat().st_size / 1e6
        cases: list[tuple[str, str, str | None]] = [
            ("floor: copy + fsync, read + sha256", "floor", None),
            ("local folder store", "local", None),
            ("database store, SQLite", "database", f"sqlite:///{Path(scratch) / 'ledger.db'}"),
        ]
        if args.postgres:
            url = stack.enter_context(postgres_schema(args.postgres))
            cases.append(("database store, PostgreSQL", "database", url))
        print(f"artifact of {size_mb:.0f} MB")
        print(f"{'case':40} {'put s':>7} {'MB/s':>7} {'get s':>7} {'MB/s':>7} {'peak RSS MiB':>13}")
        for label, case, url in cases:
            result = run_case(case, source, url)
            print(
                f"{label:40} {result['put_s']:7.2f} {size_mb / result['put_s']:7.0f} "
                f"{result['get_s']:7.2f} {size_mb / result['get_s']:7.0f} "
                f"{result['peak_rss_mib']:13.0f}"
            )


if __name__ == "__main__":
    main()
