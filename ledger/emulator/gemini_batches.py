"""Gemini Batch Mode in the emulator: files, batches on the shared clock, and the result file a
batch ends with.

`BATCH_STATE_PENDING` -> `BATCH_STATE_RUNNING` (a stage each) -> a final state. The scenarios are
the OpenAI routes' (`ledger.emulator.config.SCENARIOS`): `expire` and `cancel` end the batch
`BATCH_STATE_EXPIRED` / `BATCH_STATE_CANCELLED` with no result file (Gemini writes none for a batch
that did not finish); `fail_validation` ends it `BATCH_STATE_FAILED`; `request_failures` /
`all_fail` answer their share with error lines; `not_found_grace` hides a new batch from its first
GETs; `duplicate_key` and `unknown_key` reproduce python-genai #1909 (one answer comes back under
another request's key, or under a key no request has). The others play `normal`. Result lines are
`{"key", "response": GenerateContentResponse}` (an embeddings batch: `EmbedContentResponse`)
or `{"key", "error": {"code", "message", "status"}}`, shuffled as the real file does not keep
input order. A batch of inlined requests (`inputConfig.requests.requests[{request, metadata}]`)
ends with its answers in the batch instead, `output.inlinedResponses.inlinedResponses[{response
| error, metadata}]` in input order, the key in `metadata.key` (the same scenarios apply).
"""

from __future__ import annotations

import json
import random
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ledger.emulator.config import EmulatorConfig
from ledger.emulator.echo import answer_text, count_tokens, cut_to_tokens, digest_hex

#: Stages a batch spends pending, then running, before it ends.
PENDING_STAGES = 1
RUNNING_STAGES = 1
FINAL = frozenset(
    {"BATCH_STATE_SUCCEEDED", "BATCH_STATE_FAILED", "BATCH_STATE_CANCELLED", "BATCH_STATE_EXPIRED"}
)
_FAILURES = (
    (400, "INVALID_ARGUMENT", "Request contains an invalid argument."),
    (500, "INTERNAL", "An internal error has occurred."),
    (429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
)


def new_id() -> str:
    """A resource id as Gemini's look: lower-case letters and digits."""
    return uuid.uuid4().hex[:20]


def rfc3339(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


@dataclass
class GeminiFile:
    """An uploaded file, or a batch's result file (`source: GENERATED`)."""

    name: str
    display_name: str | None
    mime_type: str
    created_at: float
    content: bytes = b""
    expected_bytes: int = 0
    complete: bool = False
    generated: bool = False

    def to_api(self, base_url: str) -> dict[str, Any]:
        value: dict[str, Any] = {
            "name": self.name,
            "mimeType": self.mime_type,
            "sizeBytes": str(len(self.content)),
            "createTime": rfc3339(self.created_at),
            "updateTime": rfc3339(self.created_at),
            "expirationTime": rfc3339(self.created_at + 48 * 3600),
            "uri": f"{base_url}/v1beta/{self.name}",
            "state": "ACTIVE",
            "source": "GENERATED" if self.generated else "UPLOADED",
        }
        if self.display_name is not None:
            value["displayName"] = self.display_name
        if self.generated:
            value["downloadUri"] = f"{base_url}/v1beta/{self.name}:download?alt=media"
        return value


@dataclass
class GeminiBatch:
    """One batch and where it is on the clock."""

    name: str
    model: str
    display_name: str
    input_file: str
    requests: list[dict[str, Any]]
    scenario: str
    created_at: float
    state: str = "BATCH_STATE_PENDING"
    stage_started: float = 0.0
    stages_left: int = PENDING_STAGES
    polls: int = 0
    hidden_gets: int = 0
    ended_at: float | None = None
    output_file: str | None = None
    stats: dict[str, str] = field(default_factory=dict)
    deleted: bool = False
    #: An embeddings batch (`asyncBatchEmbedContent`): EmbedContentResponses, not answers.
    embeddings: bool = False
    #: The vector size of an embeddings answer when the request names none.
    dimensions: int = 8
    #: Sent as inlined requests: the answers are held by the batch, not a file.
    inline: bool = False
    inlined_responses: list[dict[str, Any]] | None = None

    def to_api(self) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch",
            "model": self.model,
            "displayName": self.display_name,
            "inputConfig": {"requests": {}} if self.inline else {"fileName": self.input_file},
            "createTime": rfc3339(self.created_at),
            "updateTime": rfc3339(self.ended_at or self.stage_started),
            "state": self.state,
            "name": self.name,
            "batchStats": self.stats or {"requestCount": str(len(self.requests))},
        }
        if self.ended_at is not None:
            metadata["endTime"] = rfc3339(self.ended_at)
        if self.output_file is not None:
            metadata["output"] = {"responsesFile": self.output_file}
        if self.inlined_responses is not None:
            metadata["output"] = {"inlinedResponses": {"inlinedResponses": self.inlined_responses}}
        value: dict[str, Any] = {"name": self.name, "metadata": metadata}
        if self.state in FINAL:
            value["done"] = True
        if self.state == "BATCH_STATE_FAILED":
            value["error"] = {"code": 3, "message": "The batch's input file is invalid."}
        return value


class GeminiState:
    """Every Gemini file and batch the emulator holds (in memory), under one lock."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.files: dict[str, GeminiFile] = {}
        self.uploads: dict[str, GeminiFile] = {}
        self.batches: dict[str, GeminiBatch] = {}


def read_requests(content: bytes) -> list[dict[str, Any]]:
    """The `{key, request}` lines of an uploaded request file; ValueError for a bad one."""
    requests = []
    for number, raw in enumerate(content.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except ValueError:
            raise ValueError(f"line {number} is not JSON") from None
        if not isinstance(line, dict) or not isinstance(line.get("request"), dict):
            raise ValueError(f"line {number} has no request")
        requests.append(line)
    if not requests:
        raise ValueError("the input file holds no request")
    return requests


def read_inlined(source: dict[str, Any]) -> list[dict[str, Any]]:
    """`inputConfig.requests.requests` as `{key, request}` lines (the key from each request's
    `metadata.key`); ValueError for a bad one."""
    given = (source.get("requests") or {}).get("requests")
    if not isinstance(given, list) or not given:
        raise ValueError("inputConfig.requests.requests holds no request")
    requests = []
    for number, item in enumerate(given):
        if not isinstance(item, dict) or not isinstance(item.get("request"), dict):
            raise ValueError(f"requests[{number}] has no request")
        metadata = item.get("metadata")
        key = metadata.get("key", number) if isinstance(metadata, dict) else number
        requests.append({"key": str(key), "request": item["request"]})
    return requests


def advance(batch: GeminiBatch, state: GeminiState, config: EmulatorConfig, now: float, *,
            polled: bool) -> bool:  # fmt: skip
    """Move `batch` along the clock up to `now`; whether anything changed."""
    if batch.state in FINAL:
        return False
    if config.polls_per_stage is not None:
        if not polled:
            return False
        batch.polls += 1
        if batch.polls >= config.polls_per_stage:
            batch.polls = 0
            _step(batch, state, config, now)
        return True
    changed = False
    while batch.state not in FINAL and now - batch.stage_started >= config.stage_seconds:
        _step(batch, state, config, batch.stage_started + config.stage_seconds)
        changed = True
    return changed


def cancel(batch: GeminiBatch, now: float) -> None:
    """A client's cancel: the batch ends cancelled, with no result file."""
    if batch.state not in FINAL:
        _end(batch, "BATCH_STATE_CANCELLED", now)


def _step(batch: GeminiBatch, state: GeminiState, config: EmulatorConfig, at: float) -> None:
    batch.stages_left -= 1
    batch.stage_started = at
    if batch.stages_left > 0:
        return
    if batch.state == "BATCH_STATE_PENDING":
        batch.state, batch.stages_left = "BATCH_STATE_RUNNING", RUNNING_STAGES
        return
    final = {
        "expire": "BATCH_STATE_EXPIRED",
        "cancel": "BATCH_STATE_CANCELLED",
        "fail_validation": "BATCH_STATE_FAILED",
    }.get(batch.scenario)
    if final is not None:
        _end(batch, final, at)
        return
    lines = _results(batch, config)
    failed = sum(1 for line in lines if "error" in line)
    batch.stats = {
        "requestCount": str(len(batch.requests)),
        "successfulRequestCount": str(len(lines) - failed),
        "failedRequestCount": str(failed),
    }
    if batch.inline:
        batch.inlined_responses = [
            {k: v for k, v in line.items() if k != "key"} | {"metadata": {"key": line["key"]}}
            for line in lines
        ]
        _end(batch, "BATCH_STATE_SUCCEEDED", at)
        return
    result = GeminiFile(
        name=f"files/batch{new_id()}",
        display_name=f"{batch.name}-results",
        mime_type="application/jsonl",
        created_at=at,
        content=b"".join(json.dumps(line).encode() + b"\n" for line in lines),
        complete=True,
        generated=True,
    )
    state.files[result.name] = result
    batch.output_file = result.name
    _end(batch, "BATCH_STATE_SUCCEEDED", at)


def _end(batch: GeminiBatch, final: str, at: float) -> None:
    batch.state = final
    batch.ended_at = at
    batch.stage_started = at
    batch.stages_left = 0


def _results(batch: GeminiBatch, config: EmulatorConfig) -> list[dict[str, Any]]:
    rate = {"request_failures": config.failure_rate, "all_fail": 1.0}.get(batch.scenario, 0.0)
    lines: list[dict[str, Any]] = []
    for line in batch.requests:
        key = str(line.get("key"))
        seed = f"{config.seed}:{batch.name}:{key}"
        request = line["request"]
        if int(digest_hex(seed + ":fail", 13), 16) / 16**13 < rate:
            code, status, message = _FAILURES[int(digest_hex(seed + ":kind", 8), 16) % 3]
            error = {"code": code, "message": message, "status": status}
            lines.append({"key": key, "error": error})
        elif batch.embeddings:
            lines.append({"key": key, "response": embedding(request, batch.dimensions, seed)})
        else:
            lines.append({"key": key, "response": response(batch.model, request, seed)})
    if batch.scenario == "duplicate_key" and len(lines) > 1:
        lines[1]["key"] = lines[0]["key"]  # the second request's answer, labelled the first's
    if batch.scenario == "unknown_key" and lines:
        lines[-1]["key"] = f"{lines[-1]['key']}-not-sent"
    if not batch.inline:  # inlined responses keep input order (the SDK's BatchJobDestination)
        random.Random(f"{config.seed}:{batch.name}:results").shuffle(lines)
    return lines


def response(model: str, request: dict[str, Any], seed: str) -> dict[str, Any]:
    """The GenerateContentResponse answering one request: an echo of its last user text."""
    contents = [c for c in request.get("contents") or () if isinstance(c, dict)]
    users = [c for c in contents if c.get("role", "user") == "user"] or contents
    asked = " ".join(
        str(part.get("text", ""))
        for part in (users[-1].get("parts") or () if users else ())
        if isinstance(part, dict)
    )
    config = request.get("generationConfig") or {}
    limit = config.get("maxOutputTokens") if isinstance(config, dict) else None
    text, cut = cut_to_tokens(answer_text(asked), limit if isinstance(limit, int) else None)
    prompt = prompt_tokens(contents)
    output = count_tokens(text)
    return {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": text}]},
                "finishReason": "MAX_TOKENS" if cut else "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": prompt,
            "candidatesTokenCount": output,
            "totalTokenCount": prompt + output,
        },
        "modelVersion": model.removeprefix("models/"),
        "responseId": digest_hex(seed + ":response", 22),
    }


def prompt_tokens(contents: list[Any]) -> int:
    """The tokens of every text part of `contents`, as the emulator counts tokens."""
    return sum(
        count_tokens(str(part.get("text", "")))
        for content in contents
        if isinstance(content, dict)
        for part in content.get("parts") or ()
        if isinstance(part, dict)
    )


def embedding(request: dict[str, Any], dimensions: int, seed: str) -> dict[str, Any]:
    """The EmbedContentResponse for one request: a deterministic unit-free vector of
    `outputDimensionality` (else `dimensions`) values."""
    size = request.get("outputDimensionality")
    size = size if isinstance(size, int) and size > 0 else dimensions
    values = [int(digest_hex(f"{seed}:{i}", 6), 16) / 16**6 - 0.5 for i in range(size)]
    return {"embedding": {"values": [round(v, 6) for v in values]}}
