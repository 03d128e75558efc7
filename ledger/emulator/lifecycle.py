"""The batch lifecycle and the clock that drives it.

`validating -> in_progress -> finalizing -> completed`, with the side roads `failed` (validation),
`expired`, `cancelling -> cancelled`. A batch moves lazily, whenever it is read: with the time clock
each stage lasts `stage_seconds` of wall time (a batch read late catches up through every stage it
missed, each timestamp set when that stage would have begun); with the poll clock every
`polls_per_stage` GETs of the batch move it one stage.
"""

from __future__ import annotations

import sys
from dataclasses import replace

from ledger.emulator.config import EmulatorConfig
from ledger.emulator.errors import ApiError
from ledger.emulator.hosts import by_name
from ledger.emulator.scenarios import jsonl, run_requests, usage_json, zipped
from ledger.emulator.store import FINAL_STATUSES as FINAL
from ledger.emulator.store import BatchRecord, Store
from ledger.emulator.validation import InputRequest, check_input_file

#: Default life of result files, when the batch sets no `output_expires_after`.
OUTPUT_FILE_SECONDS = 30 * 24 * 3600

_TOKEN_LIMIT_MESSAGE = (
    "Enqueued token limit reached for {model} in organization org-emulator. Limit: 90,000 "
    "enqueued tokens. Please try again once some in_progress batches have been completed."
)


def advance(
    store: Store, batch: BatchRecord, config: EmulatorConfig, now: float, *, polled: bool
) -> bool:
    """Move `batch` along the clock up to `now`; whether anything changed (to save)."""
    if batch.status in FINAL:
        return False
    if config.polls_per_stage is not None:
        if not polled:
            return False
        batch.polls += 1
        if batch.polls >= config.polls_per_stage:
            _step(store, batch, config, now)
        return True
    changed = False
    while batch.status not in FINAL and now - batch.stage_started >= config.stage_seconds:
        _step(store, batch, config, batch.stage_started + config.stage_seconds)
        changed = True
    return changed


def _step(store: Store, batch: BatchRecord, config: EmulatorConfig, at: float) -> None:
    """One stage passed at time `at`: the batch stays for another stage or moves on."""
    _move(store, batch, config, at)
    if batch.status in FINAL:
        store.drop_content_if_unused(batch.input_file_id)


def cancel(batch: BatchRecord, now: float) -> None:
    """A client's cancel: `cancelling` now, `cancelled` one stage later (409 once final)."""
    if batch.status in ("cancelling", "cancelled"):
        return  # the real API answers a repeated cancel with the batch as it is
    if batch.status in FINAL:
        raise ApiError(409, f"Cannot cancel a batch with status '{batch.status}'.")
    # What already ran stays done: nothing while validating, all of it while finalizing.
    if batch.status == "in_progress":
        batch.done_fraction = batch.plan.partial_fraction
    elif batch.status == "validating":
        batch.done_fraction = 0.0
    _enter(batch, "cancelling", now)
    batch.timestamps["cancelling_at"] = int(now)


def _enter(batch: BatchRecord, status: str, at: float, stages: int = 1) -> None:
    batch.status = status
    batch.stage_started = at
    batch.stages_left = stages
    batch.polls = 0


def _move(store: Store, batch: BatchRecord, config: EmulatorConfig, at: float) -> None:
    batch.stages_left -= 1
    if batch.stages_left > 0:
        _enter(batch, batch.status, at, batch.stages_left)
        return
    stamp = int(at)
    if batch.status == "validating":
        _leave_validating(store, batch, config, at)
    elif batch.status == "in_progress":
        scenario = batch.plan.scenario
        host = by_name(batch.host)
        if scenario == "expire" and host is not None and not host.expires:
            # Azure does not expire a batch past its window: it runs on, then completes.
            _enter(batch, "in_progress", at, 2 + batch.plan.slow_finalizing_stages)
            batch.plan = replace(batch.plan, scenario="overdue")
        elif scenario == "expire":
            batch.done_fraction = batch.plan.partial_fraction
            _enter(batch, "expired", at)
            batch.timestamps["expired_at"] = stamp
            _settle(store, batch, config, stamp)
        elif scenario == "cancel":
            # The provider cancels on its own: the client sees `cancelling` it never asked for.
            batch.done_fraction = batch.plan.partial_fraction
            _enter(batch, "cancelling", at)
            batch.timestamps["cancelling_at"] = stamp
        else:
            _enter(batch, "finalizing", at, 1 + batch.plan.slow_finalizing_stages)
            batch.timestamps["finalizing_at"] = stamp
    elif batch.status == "finalizing":
        _enter(batch, "completed", at)
        batch.timestamps["completed_at"] = stamp
        _settle(store, batch, config, stamp)
    elif batch.status == "cancelling":
        _enter(batch, "cancelled", at)
        batch.timestamps["cancelled_at"] = stamp
        _settle(store, batch, config, stamp)


def _leave_validating(store: Store, batch: BatchRecord, config: EmulatorConfig, at: float) -> None:
    record = store.files.get(batch.input_file_id)
    if record is None:
        _fail(
            batch,
            at,
            "invalid_request",
            f"Cannot find file {batch.input_file_id}, or your organization does not have "
            "access to it.",
            param="file_id",
        )
        return
    requests, errors = check_input_file(
        store.content(record.id),
        batch.endpoint,
        max_requests=config.max_requests_per_batch,
        max_bytes=config.max_batch_file_bytes,
        line_url=_line_url(batch),
    )
    if requests:
        batch.model = requests[0].body["model"]
    if errors:
        _fail_with(batch, at, errors)
    elif batch.plan.scenario == "fail_validation":
        _fail(
            batch,
            at,
            batch.plan.fail_validation_code,
            "The batch failed validation (emulator scenario fail_validation).",
        )
    elif batch.plan.token_limit_fails:
        _fail(batch, at, "token_limit_exceeded", _TOKEN_LIMIT_MESSAGE.format(model=batch.model))
    else:
        batch.validated = True
        batch.request_counts = {"total": len(requests), "completed": 0, "failed": 0}
        _enter(batch, "in_progress", at)
        batch.timestamps["in_progress_at"] = int(at)


def _line_url(batch: BatchRecord) -> str | None:
    """The `url` the batch's lines name, as its host names its endpoint (hosts.py)."""
    host = by_name(batch.host)
    if host is None:
        return batch.endpoint
    if host.body_only_lines:
        return None
    return batch.endpoint if host.v1_endpoints else batch.endpoint.removeprefix("/v1")


def _fail(batch: BatchRecord, at: float, code: str, message: str, param: str | None = None) -> None:
    _fail_with(batch, at, [{"code": code, "message": message, "param": param, "line": None}])


def _fail_with(batch: BatchRecord, at: float, errors: list[dict[str, object]]) -> None:
    batch.errors = {"object": "list", "data": errors}
    _enter(batch, "failed", at)
    batch.timestamps["failed_at"] = int(at)


def _settle(store: Store, batch: BatchRecord, config: EmulatorConfig, stamp: int) -> None:
    """Write the result files of a batch that just became final, and its counts and usage."""
    if not batch.validated:
        return  # cancelled while validating: nothing ran, there are no files
    # The input passed validation; limits changed since then must not drop requests now.
    requests: list[InputRequest]
    requests, _ = check_input_file(
        store.content(batch.input_file_id),
        batch.endpoint,
        max_requests=sys.maxsize,
        max_bytes=sys.maxsize,
        line_url=_line_url(batch),
    )
    results = run_requests(
        batch, requests, seed=config.seed, created=stamp, dims=config.embedding_dimensions
    )
    batch.request_counts = {
        "total": len(requests),
        "completed": results.completed,
        "failed": results.failed,
    }
    batch.usage = usage_json(results.usage)
    lifetime = (batch.output_expires_after or {}).get("seconds", OUTPUT_FILE_SECONDS)
    for kind, lines in (("output", results.output_lines), ("error", results.error_lines)):
        if not lines:
            continue  # the id stays null when there is nothing to put in the file
        if batch.plan.scenario == "zipped_output":
            name, content_type = f"{batch.id}_{kind}.zip", "application/zip"
            content = zipped(lines, batch.plan.zip_members, f"{batch.id}_{kind}")
        else:
            name, content_type = f"{batch.id}_{kind}.jsonl", "application/octet-stream"
            content = jsonl(lines)
        file = store.add_file(
            filename=name,
            purpose="batch_output",
            content=content,
            created_at=stamp,
            expires_at=stamp + lifetime,
            content_type=content_type,
        )
        if kind == "output":
            batch.output_file_id = file.id
        else:
            batch.error_file_id = file.id
