"""A state directory's records in SQLite (`state.sqlite3`, stdlib `sqlite3`): one row per file,
batch and Message Batch, written when it changes, instead of one JSON file of everything
rewritten on every change (which took seconds per call with thousands of files).

A Message Batch's requests are written once, at creation, and its results once, when it ends;
its row holds the rest, which is small. Each `save` is one transaction (WAL, synchronous=FULL:
a crash keeps every committed change). A state directory from before, with `state.json`, is
imported on first open and the JSON file renamed `state.json.imported`.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

#: Batch statuses that never change again (as `store.FINAL_STATUSES`).
FINAL_STATUSES = frozenset({"completed", "failed", "expired", "cancelled"})

STATE_VERSION = 2
DB_NAME = "state.sqlite3"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS batches (id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS message_batches (id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS message_batch_requests (id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS message_batch_results (id TEXT PRIMARY KEY, data TEXT NOT NULL);
"""
#: The Message Batch fields kept in tables of their own.
_BULKY = ("requests", "results")


class StateDB:
    """The SQLite side of a `Store`: what was saved, and what changed since."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / DB_NAME
        fresh = not self.path.exists()
        # One connection shared by the handler threads, always under the store's lock.
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        if fresh:
            self._db.execute(
                "INSERT INTO meta VALUES ('version', ?), ('seq', '0')", (str(STATE_VERSION),)
            )
        version = self._meta("version")
        if version != str(STATE_VERSION):
            raise ValueError(f"{self.path}: unsupported emulator state version {version}")
        #: The JSON last written per (table, id): a record is written again only when it differs.
        self._saved: dict[tuple[str, str], str] = {}
        #: Final batches (and deleted Message Batches) already written: never looked at again.
        self._settled: set[tuple[str, str]] = set()
        self._requests_saved: set[str] = set()
        self._results_saved: dict[str, int] = {}

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def settled(self, table: str, row_id: str) -> bool:
        """Whether a record is written for good (a final batch, a deleted Message Batch)."""
        return (table, row_id) in self._settled

    def load(self) -> tuple[int, list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
        """Everything saved, as the values of each record: the sequence number, files, batches
        and Message Batches (with their `requests` and `results`)."""
        seq = int(self._meta("seq") or 0)
        files = []
        for file_id, data in self._db.execute("SELECT id, data FROM files"):
            self._saved["files", file_id] = data
            files.append(json.loads(data))
        batches = []
        for batch_id, data in self._db.execute("SELECT id, data FROM batches"):
            self._saved["batches", batch_id] = data
            values = json.loads(data)
            if values["status"] in FINAL_STATUSES:
                self._settled.add(("batches", batch_id))
            batches.append(values)
        requests = dict(self._db.execute("SELECT id, data FROM message_batch_requests"))
        results = dict(self._db.execute("SELECT id, data FROM message_batch_results"))
        message_batches = []
        for batch_id, data in self._db.execute("SELECT id, data FROM message_batches"):
            self._saved["message_batches", batch_id] = data
            values = json.loads(data)
            values["requests"] = json.loads(requests.get(batch_id, "[]"))
            values["results"] = json.loads(results[batch_id]) if batch_id in results else []
            self._requests_saved.add(batch_id)
            self._results_saved[batch_id] = len(values["results"])
            message_batches.append(values)
        return seq, files, batches, message_batches

    def save(
        self,
        seq: int,
        files: list[dict[str, Any]],
        batches: list[dict[str, Any]],
        message_batches: list[dict[str, Any]],
    ) -> None:
        """Write, in one transaction, the given records that changed since they were last
        written (a Message Batch's `requests` once, its `results` when their count changes)."""
        writes: list[tuple[str, str, str]] = []
        for values in files:
            self._stage(writes, "files", values)
        for values in batches:
            self._stage(writes, "batches", values)
            if values["status"] in FINAL_STATUSES:
                self._settled.add(("batches", values["id"]))
        for values in message_batches:
            row_id = values["id"]
            state = {k: v for k, v in values.items() if k not in _BULKY}
            self._stage(writes, "message_batches", state)
            if row_id not in self._requests_saved:
                text = json.dumps(values["requests"], separators=(",", ":"))
                writes.append(("message_batch_requests", row_id, text))
                self._requests_saved.add(row_id)
            if self._results_saved.get(row_id, 0) != len(values["results"]):
                text = json.dumps(values["results"], separators=(",", ":"))
                writes.append(("message_batch_results", row_id, text))
                self._results_saved[row_id] = len(values["results"])
            if values["deleted"]:
                self._settled.add(("message_batches", row_id))
        if not writes and str(seq) == self._meta("seq"):
            return
        with self._db:
            self._db.execute("BEGIN")
            for table, row_id, data in writes:
                # The table names come from this module, never from a request.
                self._db.execute(f"INSERT OR REPLACE INTO {table} VALUES (?, ?)", (row_id, data))
            self._db.execute("UPDATE meta SET value = ? WHERE key = 'seq'", (str(seq),))

    def _stage(
        self, writes: list[tuple[str, str, str]], table: str, values: dict[str, Any]
    ) -> None:
        data = json.dumps(values, separators=(",", ":"))
        if self._saved.get((table, values["id"])) != data:
            self._saved[table, values["id"]] = data
            writes.append((table, values["id"], data))


def import_json_state(path: Path) -> dict[str, Any]:
    """A `state.json` of the first format, read whole (only ever once, to import it)."""
    state = json.loads(path.read_bytes())
    if state.get("version") != 1:
        raise ValueError(f"{path}: unsupported emulator state version {state.get('version')}")
    return state
