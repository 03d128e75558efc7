"""The accepted requests of a build, on disk: duplicate custom_ids are found here, and the ledger's
`requests` rows are read back from here once the whole input is valid.

A scratch SQLite table keyed by custom_id keeps memory flat however large the input (a Python set
of a million ids costs about 100 MB); measured at about 1 µs a request in `bench/build.py`. A
SQLite ledger copies the rows from here in one INSERT ... SELECT (no Python object per row);
another database reads them back in batches.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import chain, islice
from operator import attrgetter
from pathlib import Path

from ledger.build.bodies import BatchRequest
from ledger.build.row_checks import PROVIDER_MODEL

#: Rows handed to the ledger's executemany at a time.
READ_BATCH = 10_000
#: Requests one INSERT statement of the spool takes: the sqlite3 module's work per statement
#: executed cost more than SQLite's insert itself (a statement per request made the spool a third
#: of the build, bench/build.py).
ROWS_PER_INSERT = 64

#: A request's columns of the commonest chunk's rows (`RequestSpool.add`).
_ID_LINE_HASH = attrgetter("custom_id", "line_number", "body_hash")

#: What `RequestSpool.batches` yields of one request: custom_id, line, (provider, model),
#: tokens, body hash, the line whose send answers it (None: its own), its reuse source.
SpooledRequest = tuple[str, int, tuple[str, str], int | None, bytes, int | None, int | None]


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
        # body_hash: the reuse hash; answer_line: the line of the request whose send answers
        # this one (a within-run duplicate's first copy; NULL: its own); first_custom_id: that
        # first copy's custom_id; source: the earlier run's request it is reused from.
        self._db.execute(
            "CREATE TABLE accepted (custom_id TEXT PRIMARY KEY, line_number INTEGER NOT NULL, "
            "model INTEGER NOT NULL, tokens INTEGER, body_hash BLOB, answer_line INTEGER, "
            "first_custom_id TEXT, source INTEGER) WITHOUT ROWID"
        )
        self._db.execute("BEGIN")

    def add(
        self, requests: Sequence[BatchRequest], counted: bool = True
    ) -> list[tuple[BatchRequest, int]]:
        """Record requests; return those whose custom_id an earlier one has, with its line.
        `counted`: whether they carry token counts (False: every `est_tokens` is None)."""
        keys = dict.fromkeys(map(PROVIDER_MODEL, requests))
        if len(keys) == 1 and not counted:
            # The commonest chunk: one model, no counts, both written in the statement.
            (key,) = keys
            rows: list[tuple[object, ...]] = list(map(_ID_LINE_HASH, requests))
            columns = f"?, ?, {self.model_index(key):d}, NULL, ?"
        else:
            models = self.models
            for key in keys:
                self.model_index(key)
            columns = "?, ?, ?, ?, ?"
            rows = [
                (r.custom_id, r.line_number, models[r.provider, r.model], r.est_tokens, r.body_hash)
                for r in requests
            ]
        duplicates = self._inserted(columns, rows)
        return [(requests[place], first) for place, first in duplicates]

    def add_lines(
        self,
        key: tuple[str, str],
        custom_ids: list[str],
        line_numbers: list[int],
        hashes: list[bytes],
    ) -> list[tuple[int, int]]:
        """`add` for requests of one (provider, model) given as their custom_ids, lines and
        body hashes, no tokens counted; the place of each duplicate, with its first line."""
        columns = f"?, ?, {self.model_index(key):d}, NULL, ?"
        return self._inserted(columns, list(zip(custom_ids, line_numbers, hashes, strict=True)))

    def model_index(self, key: tuple[str, str]) -> int:
        """The number of a (provider, model) in the spool (numbered as first seen)."""
        return self.models.setdefault(key, len(self.models))

    def _inserted(self, columns: str, rows: list[tuple[object, ...]]) -> list[tuple[int, int]]:
        """Insert `rows` (custom_id and line first); the place of each whose custom_id an
        earlier one has, with the line that has it."""
        before = self._db.total_changes
        self._insert(columns, rows)
        if self._db.total_changes - before == len(rows):
            return []
        # Rare: find which ones were ignored, and the line that holds their custom_id.
        duplicates = []
        for place, (custom_id, line_number, *_) in enumerate(rows):
            (first,) = self._db.execute(
                "SELECT line_number FROM accepted WHERE custom_id = ?", (custom_id,)
            ).fetchone()
            if first != line_number:
                duplicates.append((place, first))
        return duplicates

    def _insert(self, columns: str, rows: list[tuple[object, ...]]) -> None:
        """INSERT OR IGNORE `rows` (their values for the `?` of `columns`), `ROWS_PER_INSERT` a
        statement (a custom_id seen before, even in the same statement, is left out)."""
        insert = (
            "INSERT OR IGNORE INTO accepted (custom_id, line_number, model, tokens, body_hash) "
            "VALUES "
        )
        whole = len(rows) - len(rows) % ROWS_PER_INSERT
        if whole:
            values = chain.from_iterable(islice(rows, whole))
            width = len(rows[0]) * ROWS_PER_INSERT
            self._db.executemany(
                insert + ", ".join([f"({columns})"] * ROWS_PER_INSERT),
                zip(*[values] * width, strict=True),
            )
        self._db.executemany(f"{insert}({columns})", rows[whole:])

    def record_shards(
        self,
        starts: Iterable[tuple[tuple[str, str], int, int]],
        reused_jobs: Mapping[tuple[str, str], int] | None = None,
    ) -> None:
        """Store ((provider, model), first line, job id) of every shard, and the job id of each
        (provider, model)'s reused requests (`submit --reuse`), and commit, so the ledger's own
        SQLite connection can attach this file and copy the requests in one statement
        (`ledger.build.record.copy_requests`): the shards' `model` is the same (provider, model)
        index as the accepted requests'."""
        models = self.models
        self._db.execute(
            "CREATE TABLE shards (model INTEGER NOT NULL, first_line INTEGER NOT NULL, "
            "job_id INTEGER NOT NULL, PRIMARY KEY (model, first_line)) WITHOUT ROWID"
        )
        self._db.executemany(
            "INSERT INTO shards VALUES (?, ?, ?)",
            [(models[key], line, job) for key, line, job in starts],
        )
        self._db.execute(
            "CREATE TABLE reused_jobs (model INTEGER PRIMARY KEY, job_id INTEGER NOT NULL)"
        )
        self._db.executemany(
            "INSERT INTO reused_jobs VALUES (?, ?)",
            [(models[key], job) for key, job in (reused_jobs or {}).items()],
        )
        # The reuse sources, even of a build without --reuse (the copy reads the table).
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS sources (id INTEGER PRIMARY KEY, job_id INTEGER NOT "
            "NULL, custom_id TEXT NOT NULL, lineage INTEGER NOT NULL)"
        )
        self._db.execute("COMMIT")

    def batches(self) -> Iterator[list[SpooledRequest]]:
        """(custom_id, line_number, (provider, model), tokens, body hash, answer line, source) of
        every accepted request, a batch at a time."""
        names = {index: model for model, index in self.models.items()}
        cursor = self._db.execute(
            "SELECT custom_id, line_number, model, tokens, body_hash, answer_line, source "
            "FROM accepted"
        )
        while rows := cursor.fetchmany(READ_BATCH):
            yield [(c, line, names[m], *rest) for c, line, m, *rest in rows]

    @property
    def connection(self) -> sqlite3.Connection:
        """The scratch database (`ledger.build.reuse` keeps its tables here too)."""
        return self._db

    def close(self) -> None:
        """Close and delete the scratch database."""
        self._db.close()
        self.path.unlink(missing_ok=True)
