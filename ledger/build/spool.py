"""The accepted requests of a build, on disk: duplicate custom_ids are found here, and the ledger's
`requests` rows are read back from here once the whole input is valid.

A scratch SQLite table keyed by custom_id keeps memory flat however large the input (a Python set
of a million ids costs about 100 MB); measured at about 1 µs a request in `bench/build.py`. A
SQLite ledger copies the rows from here in one INSERT ... SELECT (no Python object per row);
another database reads them back in batches.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from ledger.build.bodies import BatchRequest

#: Rows handed to the ledger's executemany at a time.
READ_BATCH = 10_000


class RequestSpool:
    """custom_id -> (line, (provider, model), estimated tokens) of each accepted request."""

    def __init__(self, path: Path) -> None:
        self.path = path
        #: Each (provider, model) seen, numbered in the order first seen.
        self.models: dict[tuple[str, str], int] = {}
        self._db = sqlite3.connect(path, isolation_level=None)
        # Scratch data: it is rebuilt from the input if anything fails, so no journal, no fsync.
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        # 4 MiB of page cache: the ids arrive mostly in order, and a larger cache only made the
        # build's peak memory grow with the input (bench/build.py, 100k against 1M rows).
        self._db.execute("PRAGMA cache_size=-4096")
        self._db.execute(
            "CREATE TABLE accepted (custom_id TEXT PRIMARY KEY, line_number INTEGER NOT NULL, "
            "model INTEGER NOT NULL, tokens INTEGER) WITHOUT ROWID"
        )
        self._db.execute("BEGIN")

    def add(self, requests: Sequence[BatchRequest]) -> list[tuple[BatchRequest, int]]:
        """Record requests; return those whose custom_id an earlier one has, with its line."""
        models = self.models
        for key in dict.fromkeys((r.provider, r.model) for r in requests):
            models.setdefault(key, len(models))
        rows = [
            (r.custom_id, r.line_number, models[r.provider, r.model], r.est_tokens)
            for r in requests
        ]
        before = self._db.total_changes
        self._db.executemany("INSERT OR IGNORE INTO accepted VALUES (?, ?, ?, ?)", rows)
        if self._db.total_changes - before == len(rows):
            return []
        # Rare: find which ones were ignored, and the line that holds their custom_id.
        duplicates = []
        for request in requests:
            (first,) = self._db.execute(
                "SELECT line_number FROM accepted WHERE custom_id = ?", (request.custom_id,)
            ).fetchone()
            if first != request.line_number:
                duplicates.append((request, first))
        return duplicates

    def record_shards(self, starts: Iterable[tuple[tuple[str, str], int, int]]) -> None:
        """Store ((provider, model), first line, job id) of every shard and commit, so the
        ledger's own SQLite connection can attach this file and copy the requests in one
        statement (`ledger.build.record.copy_requests`): the shards' `model` is the same
        (provider, model) index as the accepted requests'."""
        models = self.models
        self._db.execute(
            "CREATE TABLE shards (model INTEGER NOT NULL, first_line INTEGER NOT NULL, "
            "job_id INTEGER NOT NULL, PRIMARY KEY (model, first_line)) WITHOUT ROWID"
        )
        self._db.executemany(
            "INSERT INTO shards VALUES (?, ?, ?)",
            [(models[key], line, job) for key, line, job in starts],
        )
        self._db.execute("COMMIT")

    def batches(self) -> Iterator[list[tuple[str, int, tuple[str, str], int | None]]]:
        """(custom_id, line_number, (provider, model), tokens) of every accepted request, a batch
        at a time."""
        names = {index: model for model, index in self.models.items()}
        cursor = self._db.execute("SELECT custom_id, line_number, model, tokens FROM accepted")
        while rows := cursor.fetchmany(READ_BATCH):
            yield [(c, line, names[m], tokens) for c, line, m, tokens in rows]

    def close(self) -> None:
        """Close and delete the scratch database."""
        self._db.close()
        self.path.unlink(missing_ok=True)
