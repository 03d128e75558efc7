"""The emulator's objects (files and batches) and where they live: memory, or a state directory.

One re-entrant lock guards everything; a caller holds `store.lock` across a read-modify-write and
calls `save()` before releasing it. With a state directory the records are kept in SQLite
(`state_db.py`): each save writes the files added or deleted since the last one and every batch
that changed, in one transaction; file contents live beside it as `blobs/<id>`, written once, so
a restarted emulator finds every file and batch it had.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import secrets
import string
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledger.emulator.state_db import DB_NAME, StateDB, import_json_state

#: Batch statuses that never change again.
FINAL_STATUSES = frozenset({"completed", "failed", "expired", "cancelled"})
_ALPHABET = string.ascii_letters + string.digits


def new_file_id() -> str:
    """A fresh id in the API's style (`file-` and 22 letters or digits)."""
    return "file-" + "".join(secrets.choice(_ALPHABET) for _ in range(22))


def new_batch_id() -> str:
    """A fresh id in the API's style (`batch_` and 32 hex digits)."""
    return "batch_" + secrets.token_hex(16)


def new_message_batch_id() -> str:
    """A fresh Anthropic Message Batch id (`msgbatch_01` and 22 letters or digits)."""
    return "msgbatch_01" + "".join(secrets.choice(_ALPHABET) for _ in range(22))


@dataclass
class FileRecord:
    """A stored file: the API's FileObject fields plus what the emulator needs."""

    id: str
    filename: str
    purpose: str
    bytes: int
    created_at: int
    expires_at: int | None
    #: Creation order; lists sort on it because `created_at` has one-second ties.
    seq: int
    #: Deleted files stay as tombstones so a list cursor naming one still works.
    deleted: bool = False
    content_type: str = "application/octet-stream"

    def to_api(self) -> dict[str, Any]:
        """The FileObject JSON."""
        return {
            "id": self.id,
            "object": "file",
            "bytes": self.bytes,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "status_details": None,
        }


#: Batch timestamps besides `created_at` and `expires_at`, in lifecycle order.
BATCH_TIMESTAMPS = (
    "in_progress_at",
    "finalizing_at",
    "completed_at",
    "failed_at",
    "expired_at",
    "cancelling_at",
    "cancelled_at",
)


@dataclass
class BatchPlan:
    """What the scenario decided for one batch at creation; later config changes leave it be."""

    scenario: str = "normal"
    failure_rate: float = 0.0
    partial_fraction: float = 0.5
    fail_validation_code: str = "invalid_request"
    #: `token_limit_exceeded`: whether this creation is one that fails.
    token_limit_fails: bool = False
    slow_finalizing_stages: int = 0
    not_found_gets: int = 0
    zip_members: int = 1


@dataclass
class BatchRecord:
    """A stored batch: the API's Batch fields plus its plan and its place on the clock."""

    id: str
    endpoint: str
    input_file_id: str
    completion_window: str
    created_at: int
    expires_at: int
    metadata: dict[str, str] | None
    output_expires_after: dict[str, Any] | None
    seq: int
    #: The input file's name when the batch was created (scenario rules and token limits use it).
    input_filename: str
    plan: BatchPlan
    status: str = "validating"
    timestamps: dict[str, int | None] = field(
        default_factory=lambda: dict.fromkeys(BATCH_TIMESTAMPS)
    )
    model: str | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    errors: dict[str, Any] | None = None
    request_counts: dict[str, int] = field(
        default_factory=lambda: {"total": 0, "completed": 0, "failed": 0}
    )
    usage: dict[str, Any] = field(default_factory=lambda: empty_usage())
    #: Wall time (float seconds) the current stage began; the time clock measures from it.
    stage_started: float = 0.0
    #: GETs of this batch in the current stage; the poll clock counts them.
    polls: int = 0
    #: Stages left in the current status before it moves on.
    stages_left: int = 1
    #: GETs still to answer 404 (`not_found_grace`).
    hidden_gets: int = 0
    #: The share of requests done when the batch was stopped (cancel, expire); None = all.
    done_fraction: float | None = None
    #: Whether the input passed validation (a batch cancelled while validating never ran).
    validated: bool = False
    #: The compatible host whose routes created it (hosts.py); None: OpenAI's `/v1`.
    host: str | None = None
    #: Requests that will answer non-2xx (counted when validation passes): `request_counts`
    #: splits its progress while `in_progress` in this proportion.
    failing: int = 0

    def to_api(self) -> dict[str, Any]:
        """The Batch JSON."""
        return {
            "id": self.id,
            "object": "batch",
            "endpoint": self.endpoint,
            "model": self.model,
            "errors": self.errors,
            "input_file_id": self.input_file_id,
            "completion_window": self.completion_window,
            "status": self.status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": self.created_at,
            **self.timestamps,
            "expires_at": self.expires_at,
            "request_counts": dict(self.request_counts),
            "usage": copy.deepcopy(self.usage),
            "metadata": None if self.metadata is None else dict(self.metadata),
        }


@dataclass
class MessageBatchRecord:
    """A stored Anthropic Message Batch: its requests as sent, its plan and its place on the
    clock, and its result lines once it has ended (`ledger.emulator.message_batches`)."""

    id: str
    #: Epoch seconds (RFC 3339 strings in the API keep the fraction).
    created_at: float
    expires_at: float
    seq: int
    #: `{"custom_id", "params"}` per request, in the order sent.
    requests: list[dict[str, Any]]
    plan: BatchPlan
    #: A digest of the requests' params alone: the same request set, whatever its custom_ids.
    fingerprint: str = ""
    processing_status: str = "in_progress"
    ended_at: float | None = None
    cancel_initiated_at: float | None = None
    archived_at: float | None = None
    request_counts: dict[str, int] = field(default_factory=dict)
    #: The result lines, shuffled, once the batch has ended.
    results: list[dict[str, Any]] = field(default_factory=list)
    stage_started: float = 0.0
    polls: int = 0
    stages_left: int = 1
    hidden_gets: int = 0
    done_fraction: float | None = None
    #: Deleted batches stay as tombstones so a list cursor naming one still works.
    deleted: bool = False


def empty_usage() -> dict[str, Any]:
    """A batch's `usage` before any request ran."""
    return {
        "input_tokens": 0,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 0,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 0,
    }


class Store:
    """Files, their contents and batches, in memory and (optionally) in a state directory."""

    def __init__(self, state_dir: str | Path | None = None) -> None:
        self.lock = threading.RLock()
        self.files: dict[str, FileRecord] = {}
        self.batches: dict[str, BatchRecord] = {}
        self.message_batches: dict[str, MessageBatchRecord] = {}
        self._contents: dict[str, bytes] = {}
        self._seq = 0
        #: Files added or deleted since the last save.
        self._dirty_files: set[str] = set()
        self._dir = None if state_dir is None else Path(state_dir)
        self._db: StateDB | None = None
        if self._dir is not None:
            (self._dir / "blobs").mkdir(parents=True, exist_ok=True)
            self._open(self._dir)

    def next_seq(self) -> int:
        """The next creation number (callers hold the lock)."""
        self._seq += 1
        return self._seq

    def add_file(
        self,
        *,
        filename: str,
        purpose: str,
        content: bytes,
        created_at: int,
        expires_at: int | None,
        content_type: str = "application/octet-stream",
    ) -> FileRecord:
        """Store a new file and its content; the caller saves."""
        with self.lock:
            record = FileRecord(
                id=new_file_id(),
                filename=filename,
                purpose=purpose,
                bytes=len(content),
                created_at=created_at,
                expires_at=expires_at,
                seq=self.next_seq(),
                content_type=content_type,
            )
            if self._dir is None:
                self._contents[record.id] = content
            else:
                _write_atomically(self._dir / "blobs" / record.id, content)
            self.files[record.id] = record
            self._dirty_files.add(record.id)
            return record

    def live_file(self, file_id: str) -> FileRecord | None:
        """The file with this id unless it is unknown or deleted."""
        record = self.files.get(file_id)
        return None if record is None or record.deleted else record

    def content(self, file_id: str) -> bytes:
        """A file's bytes (a deleted file's, while an unfinished batch still holds them)."""
        if self._dir is None:
            return self._contents[file_id]
        return (self._dir / "blobs" / file_id).read_bytes()

    def delete_file(self, file_id: str) -> None:
        """Turn a file into a tombstone; the caller saves.

        The content goes too, unless a batch that has not finished reads it: like the real
        service, a batch keeps the input it was created with.
        """
        with self.lock:
            self.files[file_id].deleted = True
            self._dirty_files.add(file_id)
            self.drop_content_if_unused(file_id)

    def drop_content_if_unused(self, file_id: str) -> None:
        """Forget a deleted file's content once no unfinished batch reads it."""
        with self.lock:
            record = self.files.get(file_id)
            if record is None or not record.deleted:
                return
            if any(
                b.input_file_id == file_id and b.status not in FINAL_STATUSES
                for b in self.batches.values()
            ):
                return
            self._contents.pop(file_id, None)
            if self._dir is not None:
                (self._dir / "blobs" / file_id).unlink(missing_ok=True)

    def add_batch(self, record: BatchRecord) -> None:
        """Store a new batch; the caller saves."""
        with self.lock:
            self.batches[record.id] = record

    def save(self) -> None:
        """Write what changed to the state directory's database (no-op in memory)."""
        if self._db is None:
            return
        with self.lock:
            files = [dataclasses.asdict(self.files[i]) for i in sorted(self._dirty_files)]
            self._dirty_files.clear()
            batches = [
                dataclasses.asdict(b)
                for b in self.batches.values()
                if not self._db.settled("batches", b.id)
            ]
            message_batches = [
                _shallow(b)
                for b in self.message_batches.values()
                if not self._db.settled("message_batches", b.id)
            ]
            self._db.save(self._seq, files, batches, message_batches)

    def close(self) -> None:
        """Close the state directory's database (the store is not used after)."""
        if self._db is not None:
            self._db.close()
            self._db = None

    def _open(self, directory: Path) -> None:
        old = directory / "state.json"
        if not (directory / DB_NAME).exists() and old.exists():
            # A state directory of the first format: import it once, keep the file aside.
            state = import_json_state(old)
            self._db = StateDB(directory)
            self._adopt(state)
            self._dirty_files.update(self.files)
            self.save()
            old.rename(old.with_name("state.json.imported"))
            return
        self._db = StateDB(directory)
        seq, files, batches, message_batches = self._db.load()
        self._adopt(
            {"seq": seq, "files": files, "batches": batches, "message_batches": message_batches}
        )

    def _adopt(self, state: dict[str, Any]) -> None:
        self._seq = int(state["seq"])
        for values in state["files"]:
            record = FileRecord(**values)
            self.files[record.id] = record
        for values in state["batches"]:
            plan = BatchPlan(**values.pop("plan"))
            record = BatchRecord(plan=plan, **values)
            self.batches[record.id] = record
        # A state directory written before the Anthropic routes existed has none.
        for values in state.get("message_batches", []):
            plan = BatchPlan(**values.pop("plan"))
            message_batch = MessageBatchRecord(plan=plan, **values)
            self.message_batches[message_batch.id] = message_batch


def _shallow(batch: MessageBatchRecord) -> dict[str, Any]:
    """A Message Batch's values without copying its requests and results (`asdict` would)."""
    values = {f.name: getattr(batch, f.name) for f in dataclasses.fields(batch)}
    values["plan"] = dataclasses.asdict(batch.plan)
    return values


def _write_atomically(path: Path, data: bytes) -> None:
    # A crash mid-write leaves the old file whole: write beside it, fsync, then rename over it.
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
