"""Anthropic Message Batches in the emulator: what a create may carry, the lifecycle on the
shared clock, and the deterministic result lines a batch ends with.

`in_progress` (two stages: the first read after a create still shows it running) -> `ended`;
a cancel (the client's, or the `cancel` scenario's) goes `in_progress -> canceling -> ended`
one stage later. At the end every request has one result line: `succeeded` with a `Message`,
`errored` (the `request_failures` / `all_fail` share, or params the Messages API would refuse),
or `canceled` / `expired` for the requests the batch never reached. The routes are in
`ledger.emulator.anthropic_routes`, the `Message` answers in `ledger.emulator.message_answers`.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from datetime import UTC, datetime
from typing import Any

from ledger.emulator.config import EmulatorConfig
from ledger.emulator.echo import digest_hex
from ledger.emulator.errors import ApiError, bad_request
from ledger.emulator.message_answers import message, params_problem
from ledger.emulator.model_rules import anthropic_problem
from ledger.emulator.store import MessageBatchRecord

#: Stages a batch spends `in_progress`, and `canceling`, before it ends.
IN_PROGRESS_STAGES = 2
CANCELING_STAGES = 1
#: How long a batch may run before it expires (reported only: `expire` is a scenario).
WINDOW_SECONDS = 24 * 3600

_CUSTOM_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_CUSTOM_ID_RULE = "^[a-zA-Z0-9_-]{1,64}$"
_FAILURES = (
    ("invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"),
    ("api_error", "Internal server error"),
    ("overloaded_error", "Overloaded"),
)


def rfc3339(epoch: float | None) -> str | None:
    """An epoch time as the API writes it (`2026-11-21T06:43:00.123456Z`), or None."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def to_api(batch: MessageBatchRecord, base_url: str) -> dict[str, Any]:
    """The MessageBatch JSON; `results_url` is absolute under `base_url`, once ended."""
    ended = batch.processing_status == "ended"
    return {
        "id": batch.id,
        "type": "message_batch",
        "processing_status": batch.processing_status,
        "request_counts": counts(batch),
        "ended_at": rfc3339(batch.ended_at),
        "created_at": rfc3339(batch.created_at),
        "expires_at": rfc3339(batch.expires_at),
        "archived_at": rfc3339(batch.archived_at),
        "cancel_initiated_at": rfc3339(batch.cancel_initiated_at),
        "results_url": f"{base_url}/v1/messages/batches/{batch.id}/results" if ended else None,
    }


def counts(batch: MessageBatchRecord) -> dict[str, int]:
    """`request_counts`: every request `processing` until the batch ends."""
    if batch.processing_status != "ended":
        zero = dict.fromkeys(("succeeded", "errored", "canceled", "expired"), 0)
        return {"processing": len(batch.requests), **zero}
    return dict(batch.request_counts)


def fingerprint(requests: list[dict[str, Any]]) -> str:
    """A digest of the requests' params in order, custom_ids left out: two batches with one
    fingerprint carry the same request set."""
    params = json.dumps([r["params"] for r in requests], sort_keys=True).encode()
    return hashlib.sha256(params).hexdigest()[:16]


def check_create(body: Any, size: int, config: EmulatorConfig) -> list[dict[str, Any]]:
    """The requests of a create body, or a 400/413 ApiError for what the API refuses at once:
    the shape, the custom_ids (pattern, uniqueness), the count and the size. A request's params
    are checked only when it runs, as the API does."""
    if size > config.max_message_batch_bytes:
        raise ApiError(
            413,
            f"Request exceeds the maximum allowed number of bytes "
            f"({config.max_message_batch_bytes}).",
            type="request_too_large",
        )
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    for key in body:
        if key != "requests":
            raise bad_request(f"{key}: Extra inputs are not permitted")
    requests = body.get("requests")
    if not isinstance(requests, list):
        raise bad_request("requests: Field required")
    if not requests:
        raise bad_request("requests: List should have at least 1 item after validation, not 0")
    if len(requests) > config.max_message_batch_requests:
        raise bad_request(
            f"requests: List should have at most {config.max_message_batch_requests} items "
            f"after validation, not {len(requests)}"
        )
    seen: set[str] = set()
    for index, request in enumerate(requests):
        where = f"requests.{index}"
        if not isinstance(request, dict):
            raise bad_request(f"{where}: Input should be a valid dictionary")
        for key in request:
            if key not in ("custom_id", "params"):
                raise bad_request(f"{where}.{key}: Extra inputs are not permitted")
        custom_id = request.get("custom_id")
        if not isinstance(custom_id, str):
            raise bad_request(f"{where}.custom_id: Field required")
        if not _CUSTOM_ID.fullmatch(custom_id):
            raise bad_request(f"{where}.custom_id: String should match pattern '{_CUSTOM_ID_RULE}'")
        if custom_id in seen:
            raise bad_request(
                f"Duplicate custom_id {custom_id!r}: custom_id values must be unique within a "
                "Message Batch."
            )
        seen.add(custom_id)
        if not isinstance(request.get("params"), dict):
            raise bad_request(f"{where}.params: Field required")
    return requests


# -- the clock ----------------------------------------------------------------------------------


def advance(batch: MessageBatchRecord, config: EmulatorConfig, now: float, *, polled: bool) -> bool:
    """Move `batch` along the clock up to `now`; whether anything changed (to save)."""
    if batch.deleted:
        return False
    if batch.processing_status == "ended":
        return _archive_if_due(batch, config, now)
    if config.polls_per_stage is not None:
        if not polled:
            return False
        batch.polls += 1
        if batch.polls >= config.polls_per_stage:
            _step(batch, config, now)
        return True
    changed = False
    while batch.processing_status != "ended" and now - batch.stage_started >= config.stage_seconds:
        _step(batch, config, batch.stage_started + config.stage_seconds)
        changed = True
    return changed


def _archive_if_due(batch: MessageBatchRecord, config: EmulatorConfig, now: float) -> bool:
    """An ended batch's results are kept `message_results_seconds` after its creation (29 days,
    docs.anthropic.com/en/api/retrieving-message-batch-results); then `archived_at` is set and
    the results answer 404."""
    due = batch.created_at + config.message_results_seconds
    if batch.archived_at is not None or now < due:
        return False
    batch.archived_at = due
    batch.results = []
    return True


def cancel(batch: MessageBatchRecord, now: float) -> None:
    """A client's cancel: `canceling` now, `ended` one stage later; 400 once ended."""
    if batch.processing_status == "canceling":
        return
    if batch.processing_status == "ended":
        raise bad_request(f"Message Batch {batch.id} has already ended and cannot be canceled.")
    batch.done_fraction = batch.plan.partial_fraction
    batch.cancel_initiated_at = now
    _enter(batch, "canceling", now, CANCELING_STAGES)


def _enter(batch: MessageBatchRecord, status: str, at: float, stages: int) -> None:
    batch.processing_status = status
    batch.stage_started = at
    batch.stages_left = stages
    batch.polls = 0


def _step(batch: MessageBatchRecord, config: EmulatorConfig, at: float) -> None:
    batch.stages_left -= 1
    if batch.stages_left > 0:
        _enter(batch, batch.processing_status, at, batch.stages_left)
        return
    if batch.processing_status == "canceling":
        _end(batch, config, at, not_run="canceled")
    elif batch.plan.scenario == "expire":
        batch.done_fraction = batch.plan.partial_fraction
        _end(batch, config, at, not_run="expired")
    elif batch.plan.scenario == "cancel":
        # The provider cancels on its own: the client sees `canceling` it never asked for.
        batch.done_fraction = batch.plan.partial_fraction
        batch.cancel_initiated_at = at
        _enter(batch, "canceling", at, CANCELING_STAGES)
    else:
        _end(batch, config, at, not_run="expired")  # every request ran: none is left unrun


def _end(batch: MessageBatchRecord, config: EmulatorConfig, at: float, *, not_run: str) -> None:
    """The batch ended at `at`: one result line per request, shuffled, and the counts."""
    ran = _ran(batch, config.seed)
    tally = dict.fromkeys(("succeeded", "errored", "canceled", "expired"), 0)
    lines: list[dict[str, Any]] = []
    for request in batch.requests:
        custom_id = request["custom_id"]
        key = f"{config.seed}:{batch.id}:{custom_id}"
        if custom_id not in ran:
            result: dict[str, Any] = {"type": not_run}
        else:
            problem = params_problem(request["params"])
            refused = None if problem is not None else anthropic_problem(request["params"])
            if refused is not None:
                problem = ("invalid_request_error", refused)
            if problem is None and _fraction(key + ":fail") < batch.plan.failure_rate:
                problem = _FAILURES[int(digest_hex(key + ":kind", 8), 16) % len(_FAILURES)]
            if problem is not None:
                error = {"type": problem[0], "message": problem[1]}
                result = {"type": "errored", "error": {"type": "error", "error": error}}
            else:
                result = {"type": "succeeded", "message": message(request["params"], key)}
        tally[result["type"]] += 1
        lines.append({"custom_id": custom_id, "result": result})
    random.Random(f"{config.seed}:{batch.id}:results").shuffle(lines)
    batch.results = lines
    batch.request_counts = {"processing": 0, **tally}
    batch.ended_at = at
    _enter(batch, "ended", at, 0)


def _ran(batch: MessageBatchRecord, seed: int) -> set[str]:
    ids = [r["custom_id"] for r in batch.requests]
    if batch.done_fraction is None:
        return set(ids)
    done = round(batch.done_fraction * len(ids))
    ids.sort(key=lambda cid: digest_hex(f"{seed}:{batch.id}:{cid}:order", 16))
    return set(ids[:done])


def _fraction(key: str) -> float:
    return int(digest_hex(key, 13), 16) / 16**13
