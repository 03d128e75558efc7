"""An in-memory batch provider that records what was asked of it, for fast tests.

It obeys the same Protocol as the real adapters and produces result files in the OpenAI format,
so the reconciler and normalization run unchanged on it. Outcomes and faults are scripted:
- `plan(outcome)` sets what the next created batches will do (`completed`, `expired`,
  `cancelled`, `failed`, `token_limit`, `all_failed`), and in how many polls;
- `fail_next(method, error, after_effect=...)` makes the next call of a method raise, either
  before doing anything or after doing it (a lost reply: the object exists, the caller does not
  know);
- `clock_offset` sets the provider's clock apart from ours (files and batches are stamped with
  it, and `find_batches` honours `created_after` by it, as the real listings do).
The HTTP-level twin of this, for the real SDK, is `ledger.emulator`.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from adapters.base import (
    TOKEN_LIMIT_EXCEEDED,
    BatchError,
    BatchSnapshot,
    NotFound,
    ProviderError,
    RemoteFile,
)
from ledger.core.states import State

OUTCOMES = ("completed", "expired", "cancelled", "failed", "token_limit", "all_failed")


@dataclass
class FakeBatch:
    id: str
    input_file_id: str
    endpoint: str
    metadata: dict[str, str]
    created_at: int
    outcome: str
    polls_to_finish: int
    polls: int = 0
    status: str = "validating"
    output_file_id: str | None = None
    error_file_id: str | None = None
    counts: tuple[int, int, int] = (0, 0, 0)
    errors: tuple[BatchError, ...] = ()


@dataclass
class Fault:
    error: Callable[[], ProviderError]
    after_effect: bool


@dataclass
class FakeProvider:
    """`adapters.base.BatchProvider` held in memory; `calls` records every call made."""

    name: str = "openai"
    base_url: str | None = "fake://provider"
    default_outcome: str = "completed"
    default_polls: int = 2
    #: Seconds the provider's clock runs ahead of ours (negative: behind).
    clock_offset: float = 0.0
    calls: list[tuple[str, str]] = field(default_factory=list)
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    batches: dict[str, FakeBatch] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)
    #: Each file's creation time by the provider's clock.
    file_times: dict[str, int] = field(default_factory=dict)
    _planned: list[tuple[str, int]] = field(default_factory=list)
    _faults: dict[str, list[Fault]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.RLock = field(default_factory=threading.RLock)

    # -- scripting --------------------------------------------------------------------------

    def plan(self, outcome: str, polls: int | None = None) -> None:
        """The next created batch ends with `outcome` after `polls` polls."""
        assert outcome in OUTCOMES, outcome
        self._planned.append((outcome, self.default_polls if polls is None else polls))

    def fail_next(
        self, method: str, error: Callable[[], ProviderError], *, after_effect: bool = False
    ) -> None:
        """The next call of `method` raises `error()`, before or after taking effect."""
        self._faults.setdefault(method, []).append(Fault(error, after_effect))

    def now(self) -> int:
        """The provider's clock."""
        return int(time.time() + self.clock_offset)

    def created(self) -> Counter[str]:
        """Batches created per `ledger_job` metadata value."""
        return Counter(b.metadata.get("ledger_job", "") for b in self.batches.values())

    # -- Protocol ---------------------------------------------------------------------------

    def upload_input(self, path: Path, *, filename: str) -> RemoteFile:
        with self._lock:
            fault = self._fault("upload_input")
            file_id = f"file-{next(self._ids)}"
            self.files[file_id] = (filename, path.read_bytes())
            self.file_times[file_id] = self.now()
            self._raise_after(fault)
            return self._remote(file_id)

    def find_uploads(self, filename: str) -> list[RemoteFile]:
        with self._lock:
            self._raise_after(self._fault("find_uploads"))
            return [self._remote(i) for i, (name, _) in self.files.items() if name == filename]

    def create_batch(
        self,
        *,
        input_file_id: str,
        endpoint: str,
        metadata: dict[str, str],
        output_expires_after: int | None = None,
    ) -> BatchSnapshot:
        with self._lock:
            fault = self._fault("create_batch")
            if input_file_id not in self.files:
                raise NotFound(f"no file {input_file_id}")
            outcome, polls = (
                self._planned.pop(0)
                if self._planned
                else (self.default_outcome, self.default_polls)
            )
            batch = FakeBatch(
                id=f"batch_{next(self._ids)}",
                input_file_id=input_file_id,
                endpoint=endpoint,
                metadata=dict(metadata),
                created_at=self.now(),
                outcome=outcome,
                polls_to_finish=polls,
            )
            self.batches[batch.id] = batch
            self._raise_after(fault)
            return self._snapshot(batch)

    def find_batches(
        self, *, input_file_id: str, metadata: dict[str, str], created_after: int
    ) -> list[BatchSnapshot]:
        with self._lock:
            self._raise_after(self._fault("find_batches"))
            return [
                self._snapshot(b)
                for b in self.batches.values()
                if b.input_file_id == input_file_id
                and b.created_at >= created_after
                and all(b.metadata.get(k) == v for k, v in metadata.items())
            ]

    def get_batch(self, batch_id: str) -> BatchSnapshot:
        with self._lock:
            fault = self._fault("get_batch")
            batch = self.batches.get(batch_id)
            if batch is None:
                raise NotFound(f"no batch {batch_id}")
            batch.polls += 1
            if batch.status in ("validating", "in_progress", "cancelling"):
                if batch.polls >= batch.polls_to_finish:
                    self._finish(batch)
                elif batch.status == "validating":
                    batch.status = "in_progress"
            self._raise_after(fault)
            return self._snapshot(batch)

    def cancel_batch(self, batch_id: str) -> BatchSnapshot:
        with self._lock:
            fault = self._fault("cancel_batch")
            batch = self.batches[batch_id]
            if batch.status in ("validating", "in_progress"):
                batch.status = "cancelling"
                batch.outcome = "cancelled"
            self._raise_after(fault)
            return self._snapshot(batch)

    def download_file(self, file_id: str, destination: Path) -> int:
        with self._lock:
            fault = self._fault("download_file")
            if file_id not in self.files:
                raise NotFound(f"no file {file_id}")
            content = self.files[file_id][1]
            destination.write_bytes(content)
            self._raise_after(fault)
            return len(content)

    def delete_file(self, file_id: str) -> None:
        with self._lock:
            self._raise_after(self._fault("delete_file"))
            self.files.pop(file_id, None)
            self.deleted.append(file_id)

    # -- internals --------------------------------------------------------------------------

    def _fault(self, method: str) -> Fault | None:
        self.calls.append((method, ""))
        queue = self._faults.get(method)
        fault = queue.pop(0) if queue else None
        if fault is not None and not fault.after_effect:
            raise fault.error()
        return fault

    @staticmethod
    def _raise_after(fault: Fault | None) -> None:
        if fault is not None:
            raise fault.error()

    def _remote(self, file_id: str) -> RemoteFile:
        name, content = self.files[file_id]
        return RemoteFile(file_id, name, len(content), self.file_times.get(file_id, 0))

    def _finish(self, batch: FakeBatch) -> None:
        if batch.outcome in ("failed", "token_limit"):
            code = TOKEN_LIMIT_EXCEEDED if batch.outcome == "token_limit" else "invalid_json_line"
            batch.status = "failed"
            batch.errors = (BatchError(code, f"scripted {batch.outcome}", None),)
            return
        requests = [
            json.loads(line) for line in self.files[batch.input_file_id][1].splitlines() if line
        ]
        # completed: all succeed; all_failed: every request 400; expired/cancelled: half ran.
        ran = len(requests) if batch.outcome in ("completed", "all_failed") else len(requests) // 2
        output, errors = [], []
        for index, request in enumerate(reversed(requests)):  # results are unordered
            custom_id = request["custom_id"]
            if index >= ran:
                code = "batch_expired" if batch.outcome == "expired" else "batch_cancelled"
                errors.append(_line(custom_id, None, {"code": code, "message": "not run"}))
            elif batch.outcome == "all_failed":
                body = {
                    "error": {
                        "message": "bad",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": "bad_request",
                    }
                }
                errors.append(_line(custom_id, {"status_code": 400, "body": body}, None))
            else:
                output.append(_line(custom_id, _answer(request, batch.endpoint), None))
        batch.output_file_id = self._store_result(batch, "output", output)
        batch.error_file_id = self._store_result(batch, "error", errors)
        failed = len(requests) - len(output)
        batch.counts = (len(requests), len(output), failed)
        batch.status = (
            "completed" if batch.outcome in ("completed", "all_failed") else batch.outcome
        )

    def _store_result(self, batch: FakeBatch, kind: str, lines: list[str]) -> str | None:
        if not lines:
            return None
        file_id = f"file-{next(self._ids)}"
        self.files[file_id] = (f"{batch.id}_{kind}.jsonl", "".join(lines).encode())
        return file_id

    def _snapshot(self, batch: FakeBatch) -> BatchSnapshot:
        from adapters.openai.batch import STATUS_TO_STATE

        total, completed, failed = batch.counts
        return BatchSnapshot(
            id=batch.id,
            state=STATUS_TO_STATE.get(batch.status, State.IN_PROGRESS),
            provider_status=batch.status,
            input_file_id=batch.input_file_id,
            created_at=batch.created_at,
            output_file_id=batch.output_file_id,
            error_file_id=batch.error_file_id,
            requests_total=total,
            requests_completed=completed,
            requests_failed=failed,
            errors=batch.errors,
            metadata=dict(batch.metadata),
        )


def _line(custom_id: str, response: dict[str, object] | None, error: object) -> str:
    if response is not None:
        response = {"request_id": f"req_{custom_id}", **response}
    record = {
        "id": f"batch_req_{custom_id}",
        "custom_id": custom_id,
        "response": response,
        "error": error,
    }
    return json.dumps(record) + "\n"


def _answer(request: dict[str, object], endpoint: str) -> dict[str, object]:
    body = request.get("body")
    model = body.get("model", "") if isinstance(body, dict) else ""
    text = f"answer to {request['custom_id']}"
    if endpoint == "/v1/responses":
        answer: dict[str, object] = {
            "id": "resp_fake",
            "object": "response",
            "status": "completed",
            "model": model,
            "output": [
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": text, "annotations": []}],
                }
            ],
            "usage": {"input_tokens": 5, "output_tokens": 3, "total_tokens": 8},
        }
    else:
        answer = {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
        }
    return {"status_code": 200, "body": answer}
