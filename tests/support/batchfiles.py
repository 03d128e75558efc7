"""Batch files as the OpenAI Batch API writes them, and a job walked to `downloaded` around them.

Bodies follow the SDK's types (`ChatCompletion`, `Response`, `CreateEmbeddingResponse`,
`Completion`) field for field, so the normalizer is tested on what the provider really sends.
"""

from __future__ import annotations

import base64
import itertools
import json
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Engine

from ledger.core.db import db_now
from ledger.core.models import Request, Run
from ledger.core.states import State
from ledger.core.store import Lease, advance, claim, create_job

CHAT = "/v1/chat/completions"
RESPONSES = "/v1/responses"
EMBEDDINGS = "/v1/embeddings"
COMPLETIONS = "/v1/completions"

_ids = itertools.count(1)


def _id(prefix: str) -> str:
    return f"{prefix}_{next(_ids):08x}"


def chat_body(
    text: str | None = "Hello!",
    *,
    finish_reason: str = "stop",
    refusal: str | None = None,
    model: str = "gpt-4o-mini-2024-07-18",
    prompt_tokens: int = 20,
    completion_tokens: int = 5,
    cached_tokens: int = 0,
    reasoning_tokens: int = 0,
    tool_calls: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A `ChatCompletion` body."""
    message: dict[str, Any] = {
        "role": "assistant",
        "content": text,
        "refusal": refusal,
        "annotations": [],
    }
    if tool_calls is not None:
        message["tool_calls"] = tool_calls
    return {
        "id": _id("chatcmpl"),
        "object": "chat.completion",
        "created": 1_763_700_000,
        "model": model,
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": reasoning_tokens,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "service_tier": "default",
        "system_fingerprint": "fp_0ba0d124f1",
    }


def response_body(
    texts: Sequence[str] = ("Hello!",),
    *,
    status: str = "completed",
    incomplete_reason: str | None = None,
    refusal: str | None = None,
    extra_output: Sequence[dict[str, Any]] = (),
    error: dict[str, Any] | None = None,
    model: str = "gpt-4o-mini-2024-07-18",
    input_tokens: int = 30,
    output_tokens: int = 7,
    cached_tokens: int = 0,
    reasoning_tokens: int = 0,
) -> dict[str, Any]:
    """A Responses API `Response` body: a reasoning item, then one assistant message."""
    content: list[dict[str, Any]] = [
        {"type": "output_text", "text": text, "annotations": [], "logprobs": []} for text in texts
    ]
    if refusal is not None:
        content.append({"type": "refusal", "refusal": refusal})
    output: list[dict[str, Any]] = [
        {"type": "reasoning", "id": _id("rs"), "summary": []},
        *extra_output,
    ]
    if content:
        output.append(
            {
                "type": "message",
                "id": _id("msg"),
                "status": "completed" if status == "completed" else "incomplete",
                "role": "assistant",
                "content": content,
            }
        )
    return {
        "id": _id("resp"),
        "object": "response",
        "created_at": 1_763_700_000,
        "status": status,
        "error": error,
        "incomplete_details": {"reason": incomplete_reason} if incomplete_reason else None,
        "instructions": None,
        "max_output_tokens": None,
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "store": True,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": cached_tokens},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
            "total_tokens": input_tokens + output_tokens,
        },
        "user": None,
        "metadata": {},
    }


def embedding_body(
    vectors: Sequence[Sequence[float]], *, base64_encoded: bool = False, prompt_tokens: int = 8
) -> dict[str, Any]:
    """A `CreateEmbeddingResponse` body, its items listed in reverse index order."""
    data = []
    for index, vector in enumerate(vectors):
        embedding: Any = list(vector)
        if base64_encoded:
            embedding = base64.b64encode(array("f", vector).tobytes()).decode()
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    return {
        "object": "list",
        "data": data[::-1],
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }


def completion_body(text: str, *, finish_reason: str = "stop") -> dict[str, Any]:
    """A legacy `Completion` body."""
    return {
        "id": _id("cmpl"),
        "object": "text_completion",
        "created": 1_763_700_000,
        "model": "gpt-3.5-turbo-instruct",
        "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": 4, "completion_tokens": 3, "total_tokens": 7},
    }


def ok_line(custom_id: str, body: dict[str, Any], status_code: int = 200) -> dict[str, Any]:
    """An output file line."""
    return {
        "id": _id("batch_req"),
        "custom_id": custom_id,
        "response": {"status_code": status_code, "request_id": _id("req"), "body": body},
        "error": None,
    }


def http_error_line(
    custom_id: str,
    status_code: int = 400,
    message: str = "Invalid value for 'model'.",
    *,
    error_type: str = "invalid_request_error",
    code: str | None = None,
) -> dict[str, Any]:
    """An error file line for a request the API answered with a non-2xx status."""
    body = {"error": {"message": message, "type": error_type, "param": None, "code": code}}
    return ok_line(custom_id, body, status_code)


def not_run_line(custom_id: str, code: str = "batch_expired") -> dict[str, Any]:
    """An error file line for a request the batch never ran (expired or cancelled)."""
    message = {
        "batch_expired": "This request could not be executed before the completion window expired.",
        "batch_cancelled": "This request was not executed because the batch was cancelled.",
    }.get(code, "The request failed.")
    return {
        "id": _id("batch_req"),
        "custom_id": custom_id,
        "response": None,
        "error": {"code": code, "message": message},
    }


def input_line(custom_id: str, endpoint: str = RESPONSES, **body: Any) -> dict[str, Any]:
    """A Batch API input line."""
    if not body:
        if endpoint == EMBEDDINGS:
            body = {"model": "text-embedding-3-small", "input": "hello"}
        elif endpoint == CHAT:
            body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}
        else:
            body = {"model": "gpt-4o-mini", "input": [{"role": "user", "content": "Hi"}]}
    return {"custom_id": custom_id, "method": "POST", "url": endpoint, "body": body}


def write_jsonl(path: Path, lines: Iterable[dict[str, Any]]) -> Path:
    """Write one compact JSON object per line, as the API does."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as file:
        for line in lines:
            file.write(json.dumps(line, separators=(",", ":")) + "\n")
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every line of a JSONL file, parsed."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def ensure_run(
    engine: Engine,
    name: str = "eval",
    *,
    endpoint: str = RESPONSES,
    model: str = "gpt-4o-mini",
    options: dict[str, Any] | None = None,
    provider: str = "openai",
) -> int:
    """The id of the run with this name, inserted first when there is none."""
    with engine.begin() as connection:
        found = connection.execute(select(Run.id).where(Run.name == name)).scalar()
        if found is not None:
            return found
        return connection.execute(
            insert(Run)
            .values(
                name=name,
                provider=provider,
                endpoint=endpoint,
                model=model,
                input_path=f"{name}.jsonl",
                input_sha256="0" * 64,
                options=options or {},
                request_count=0,
                created_at=db_now(),
            )
            .returning(Run.id)
        ).scalar_one()


@dataclass(frozen=True)
class DownloadedJob:
    """A job in `downloaded`, leased, with its files on disk."""

    run_id: int
    job_id: int
    lease: Lease
    results_dir: Path


def downloaded_job(
    engine: Engine,
    root: Path,
    inputs: Sequence[dict[str, Any]],
    *,
    output: Sequence[dict[str, Any] | str] | None = (),
    errors: Sequence[dict[str, Any] | str] | None = (),
    run: str = "eval",
    shard_index: int = 1,
    endpoint: str = RESPONSES,
    model: str = "gpt-4o-mini",
    options: dict[str, Any] | None = None,
    final_state: State = State.COMPLETED,
    final_detail: dict[str, Any] | None = None,
    last_error: str | None = None,
    first_line: int = 1,
    parent_job_id: int | None = None,
    requests: str = "insert",
    provider: str = "openai",
) -> DownloadedJob:
    """Write the shard and the provider's files, record the job and walk it to `downloaded`.

    `output` / `errors` of None mean the provider had no such file; a str element is written as a
    raw line. `requests`: "insert" adds a pending row per input line (numbered from `first_line`),
    "repoint" moves the run's existing rows to this job (a retry job), "keep" leaves them alone.
    `provider` names the job's provider, whose reader reads the lines.
    """
    run_id = ensure_run(
        engine, run, endpoint=endpoint, model=model, options=options, provider=provider
    )
    run_dir = root / "runs" / run
    shard = write_jsonl(run_dir / "shards" / f"shard-{shard_index:04d}.jsonl", inputs)
    paths: dict[str, str | None] = {}
    for key, lines in (("output_path", output), ("error_path", errors)):
        if lines is None:
            paths[key] = None
            continue
        path = run_dir / "downloads" / f"shard-{shard_index:04d}.{key.split('_')[0]}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as file:
            for line in lines:
                text = line if isinstance(line, str) else json.dumps(line, separators=(",", ":"))
                file.write(text + "\n")
        paths[key] = str(path)
    custom_ids = [line["custom_id"] for line in inputs]
    with engine.begin() as connection:
        job_id = create_job(
            connection,
            actor="test",
            run_id=run_id,
            shard_index=shard_index,
            provider=provider,
            endpoint=endpoint,
            model=model,
            input_path=str(shard),
            input_sha256="0" * 64,
            input_bytes=shard.stat().st_size,
            request_count=len(inputs),
            parent_job_id=parent_job_id,
        )
        if requests == "insert":
            connection.execute(
                insert(Request),
                [
                    {
                        "run_id": run_id,
                        "job_id": job_id,
                        "custom_id": custom_id,
                        "line_number": first_line + offset,
                        "status": "pending",
                    }
                    for offset, custom_id in enumerate(custom_ids)
                ],
            )
        elif requests == "repoint":
            connection.execute(
                update(Request)
                .where(Request.run_id == run_id, Request.custom_id.in_(custom_ids))
                .values(job_id=job_id, status="pending")
            )
    with engine.begin() as connection:
        [lease] = claim(
            connection, "tester", states=[State.BUILT], limit=1, job_ids=[job_id], due_only=False
        )
        advance(connection, lease, State.BUILT, State.UPLOADED, input_file_id=_id("file"))
        batch_id = _id("batch")
        advance(connection, lease, State.UPLOADED, State.SUBMITTED, batch_id=batch_id)
        advance(
            connection,
            lease,
            State.SUBMITTED,
            final_state,
            detail=final_detail,
            provider_status=final_state.value,
            last_error=last_error,
        )
        advance(
            connection,
            lease,
            final_state,
            State.DOWNLOADED,
            output_path=paths["output_path"],
            error_path=paths["error_path"],
        )
    return DownloadedJob(run_id, job_id, lease, run_dir / "results")
