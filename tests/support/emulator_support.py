"""Helpers for the emulator tests: start one, point the SDK at it, build input files, poll."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

import openai
from openai.types import Batch, FileObject

from ledger.emulator import Emulator, EmulatorConfig

FINAL = {"completed", "failed", "expired", "cancelled"}


@contextmanager
def running(**settings: Any) -> Iterator[Emulator]:
    """An emulator on a free port (one stage per GET unless told otherwise), stopped after."""
    settings.setdefault("polls_per_stage", 1)
    with Emulator(EmulatorConfig(**settings)).start() as emulator:
        yield emulator


def sdk(emulator: Emulator, **options: Any) -> openai.OpenAI:
    """The official client aimed at the emulator, with no retries unless told."""
    options.setdefault("max_retries", 0)
    options.setdefault("timeout", 10.0)
    return openai.OpenAI(api_key="sk-test", base_url=emulator.base_url, **options)


def chat_line(custom_id: str, prompt: str, model: str = "gpt-4o-mini", **body: Any) -> str:
    """One /v1/chat/completions input line."""
    request = {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": model, "messages": [{"role": "user", "content": prompt}], **body},
    }
    return json.dumps(request)


def responses_line(custom_id: str, prompt: str, model: str = "gpt-4o-mini", **body: Any) -> str:
    """One /v1/responses input line."""
    request = {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/responses",
        "body": {"model": model, "input": prompt, **body},
    }
    return json.dumps(request)


def upload(client: openai.OpenAI, lines: list[str], name: str = "input.jsonl") -> FileObject:
    """Upload JSONL lines as a batch input file."""
    content = ("\n".join(lines) + "\n").encode()
    return client.files.create(file=(name, io.BytesIO(content)), purpose="batch")


def submit(
    client: openai.OpenAI,
    lines: list[str],
    *,
    endpoint: str = "/v1/chat/completions",
    name: str = "input.jsonl",
    **options: Any,
) -> Batch:
    """Upload the lines and create a batch over them."""
    file = upload(client, lines, name)
    return client.batches.create(
        input_file_id=file.id,
        endpoint=cast(Any, endpoint),
        completion_window="24h",
        **options,
    )


def finish(client: openai.OpenAI, batch_id: str, polls: int = 50) -> Batch:
    """Poll a batch until it is final (failing the test if it never is)."""
    seen: list[str] = []
    for _ in range(polls):
        batch = client.batches.retrieve(batch_id)
        if batch.status in FINAL:
            return batch
        seen.append(batch.status)
    raise AssertionError(f"batch {batch_id} not final after {polls} polls: {seen[-3:]}")


def statuses(client: openai.OpenAI, batch_id: str, polls: int = 50) -> list[str]:
    """Every status a batch shows, one GET after another, until it is final."""
    seen: list[str] = []
    for _ in range(polls):
        seen.append(client.batches.retrieve(batch_id).status)
        if seen[-1] in FINAL:
            return seen
    raise AssertionError(f"batch {batch_id} never final: {seen}")


def jsonl(client: openai.OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    """A result file's lines, parsed."""
    assert file_id is not None
    return [json.loads(line) for line in client.files.content(file_id).text.splitlines()]
