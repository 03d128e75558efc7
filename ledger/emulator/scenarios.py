"""Scenarios: which one a new batch plays, what that decides, and the results it ends with.

A batch's scenario comes from, first to last: its metadata `emulator_scenario`, the request header
`X-Emulator-Scenario`, the first `scenario_rules` entry whose `file_name_contains` is in the input
file's name, and the configured default. It is fixed in a `BatchPlan` when the batch is created.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ledger.emulator.answers import Answer, answer, failure
from ledger.emulator.config import EmulatorConfig, check_scenario
from ledger.emulator.echo import TokenUsage
from ledger.emulator.model_rules import openai_rejection
from ledger.emulator.store import BatchPlan, BatchRecord
from ledger.emulator.validation import InputRequest

#: The metadata key and request header that choose a batch's scenario.
SCENARIO_METADATA_KEY = "emulator_scenario"
SCENARIO_HEADER = "X-Emulator-Scenario"

#: Why a request that never ran is in the error file, by the batch's final status.
NOT_RUN = {
    "expired": (
        "batch_expired",
        "This request could not be executed before the completion window expired.",
    ),
    "cancelled": (
        "batch_cancelled",
        "This request was not executed because the batch was cancelled.",
    ),
}


def choose_scenario(
    config: EmulatorConfig,
    metadata: Mapping[str, str] | None,
    header: str | None,
    file_name: str,
) -> str:
    """The scenario a new batch plays; ValueError when a named one does not exist."""
    if metadata and SCENARIO_METADATA_KEY in metadata:
        return check_scenario(metadata[SCENARIO_METADATA_KEY])
    if header:
        return check_scenario(header.strip())
    for rule in config.scenario_rules:
        if rule["file_name_contains"] in file_name:
            return rule["scenario"]
    return config.scenario


def make_plan(
    config: EmulatorConfig, scenario: str, earlier: list[BatchRecord], file_name: str
) -> BatchPlan:
    """Fix what `scenario` means for a new batch, given the batches created before it."""
    token_limit_fails = False
    if scenario == "token_limit_exceeded":
        # "Fail the first N creations for a file": count by file name, so that re-uploading the
        # same shard and creating again counts as a resubmission too.
        failed_before = sum(
            1 for b in earlier if b.input_filename == file_name and b.plan.token_limit_fails
        )
        limit = config.token_limit_failures
        token_limit_fails = limit is None or failed_before < limit
    failure_rate = {"request_failures": config.failure_rate, "all_fail": 1.0}.get(scenario, 0.0)
    return BatchPlan(
        scenario=scenario,
        failure_rate=failure_rate,
        partial_fraction=config.partial_fraction,
        fail_validation_code=config.fail_validation_code,
        token_limit_fails=token_limit_fails,
        slow_finalizing_stages=config.slow_finalizing_stages
        if scenario == "slow_finalizing"
        else 0,
        not_found_gets=config.not_found_gets if scenario == "not_found_grace" else 0,
        zip_members=config.zip_members,
    )


@dataclass
class Results:
    """What a finished batch produced: its result lines, counts and summed usage."""

    output_lines: list[dict[str, Any]] = field(default_factory=list)
    error_lines: list[dict[str, Any]] = field(default_factory=list)
    completed: int = 0
    failed: int = 0
    usage: TokenUsage = field(default_factory=TokenUsage)


def run_requests(
    batch: BatchRecord,
    requests: list[InputRequest],
    *,
    seed: int,
    created: int,
    dims: int,
) -> Results:
    """Answer the requests that ran before `batch` reached its final status, deterministically.

    All ran unless `batch.done_fraction` says only a share did (a deterministic subset); of those,
    `plan.failure_rate` answer non-2xx. The rest are `batch_expired` / `batch_cancelled`. Both
    line lists are shuffled with a seed of their own, as the real files do not keep input order.
    """
    results = Results()
    ran = _ran(batch, requests, seed)
    totals = [0, 0, 0, 0]
    for request in requests:
        key = f"{seed}:{batch.id}:{request.custom_id}"
        line: dict[str, Any] = {"id": f"batch_req_{_hex(key, 32)}", "custom_id": request.custom_id}
        if request.custom_id not in ran:
            code, message = NOT_RUN[batch.status]
            results.error_lines.append(
                {**line, "response": None, "error": {"code": code, "message": message}}
            )
            continue
        refused = openai_rejection(batch.endpoint, request.body)
        if refused is not None:
            # What the API refuses in a batch is a 400 line in the error file, as it is there.
            result = Answer(refused.status, refused.body(), TokenUsage())
        elif _fraction(key + ":fail") < batch.plan.failure_rate:
            result = failure(batch.endpoint, request.body, selector=int(_hex(key + ":kind", 8), 16))
        else:
            # A deterministic half of the answers stray from their schema in `off_schema`.
            stray = batch.plan.scenario == "off_schema" and _fraction(key + ":stray") < 0.5
            result = answer(
                batch.endpoint, request.body, key=key, created=created, dims=dims, stray=stray
            )
        response = {
            "status_code": result.status_code,
            "request_id": _hex(key + ":request", 32),
            "body": result.body,
        }
        line.update(response=response, error=None)
        if result.status_code < 300:
            results.output_lines.append(line)
            results.completed += 1
            usage = result.usage
            totals = [
                totals[0] + usage.input_tokens,
                totals[1] + usage.output_tokens,
                totals[2] + usage.cached_tokens,
                totals[3] + usage.reasoning_tokens,
            ]
        else:
            results.error_lines.append(line)
            results.failed += 1
    results.usage = TokenUsage(*totals)
    random.Random(f"{seed}:{batch.id}:output").shuffle(results.output_lines)
    random.Random(f"{seed}:{batch.id}:errors").shuffle(results.error_lines)
    return results


def failing_requests(batch: BatchRecord, requests: list[InputRequest], *, seed: int) -> int:
    """How many of the requests will answer non-2xx when they run (as `run_requests` decides):
    what `request_counts.failed` grows to while the batch is in progress."""
    return sum(
        1
        for request in requests
        if openai_rejection(batch.endpoint, request.body) is not None
        or _fraction(f"{seed}:{batch.id}:{request.custom_id}:fail") < batch.plan.failure_rate
    )


def usage_json(usage: TokenUsage) -> dict[str, Any]:
    """A batch's `usage` object."""
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_tokens},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.input_tokens + usage.output_tokens,
    }


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    """Result lines as a JSONL file."""
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def zipped(lines: list[dict[str, Any]], members: int, stem: str) -> bytes:
    """Result lines as a ZIP archive of up to `members` JSONL files (no member is empty)."""
    count = max(1, min(members, len(lines)))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for index in range(count):
            archive.writestr(f"{stem}_part{index + 1}.jsonl", jsonl(lines[index::count]))
    return buffer.getvalue()


def _ran(batch: BatchRecord, requests: list[InputRequest], seed: int) -> set[str]:
    ids = [r.custom_id for r in requests]
    if batch.done_fraction is None:
        return set(ids)
    done = round(batch.done_fraction * len(ids))
    ids.sort(key=lambda cid: _hex(f"{seed}:{batch.id}:{cid}:order", 16))
    return set(ids[:done])


def _fraction(key: str) -> float:
    return int(_hex(key, 13), 16) / 16**13


def _hex(key: str, length: int) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:length]
