"""`chat_batch`: many chat requests answered at batch prices, with the ledger underneath.

What application code wants from a batch API is a function call: requests in, answers out, in
order. `chat_batch` gives exactly that and keeps the ledger's guarantees: the run is recorded
before anything is sent, so a caller that crashes and calls again with the same requests (or the
same run name) resumes the same batch instead of paying for a second one.

- no request: `[]`, and nothing is called;
- one request: the synchronous API answers at once (a batch would take minutes to hours);
- more: a ledger run, submitted, reconciled to the end, its results returned in input order.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.engine import Engine

from ledger.build.run import BuildOptions, build_run
from ledger.chat.types import ChatError, ChatRequest
from ledger.config import LedgerConfig, batch_provider_for, chat_client, load_config
from ledger.config import provider_settings as settings_for
from ledger.core.db import open_ledger, resolve_url, sqlite_path
from ledger.core.models import Job
from ledger.core.states import State
from ledger.errors import InputError, LedgerError
from ledger.reconcile.engine import PauseLoop, ReconcileOptions, Reconciler
from ledger.reconcile.send import adopt_batch, send_run
from ledger.results.export import find_run_results, merged_results

#: The error of a request the batch returned nothing for.
NO_RESULT = "No result returned from batch"

#: How long `chat_batch` waits by default: the Batch API's own completion window.
DEFAULT_TIMEOUT = 24 * 3600.0


@dataclass(frozen=True)
class BatchAnswer:
    """One request's answer, in the order the requests were given."""

    #: The request's id: its own `id` when it gave one, else `request-000001`, ...
    id: str
    #: The parsed JSON when JSON was asked for, else the text; None when there is no answer.
    response: Any
    #: `{"input_tokens", "output_tokens", ...}`, or None when the request never ran.
    usage: dict[str, int] | None
    #: Why there is no answer (None when there is one).
    error: str | None
    #: succeeded, failed, expired, cancelled or missing.
    status: str
    text: str | None = None


RequestLike = ChatRequest | Mapping[str, Any]


def chat_batch(
    requests: Sequence[RequestLike],
    *,
    existing_batch_id: str | None = None,
    on_batch_created: Callable[[str], None] | None = None,
    run: str | None = None,
    provider: str | None = None,
    model: str | None = None,
    db: str | Path | None = None,
    config: LedgerConfig | None = None,
    base_url: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    poll_min: float = ReconcileOptions.poll_min,
    poll_max: float = ReconcileOptions.poll_max,
) -> list[BatchAnswer]:
    """Answer `requests` (ChatRequest objects, or mappings with `messages` or `prompt`, and
    optionally `id`, `model`, `system`, `max_output_tokens`, `temperature`, `json_mode`).

    `existing_batch_id` adopts a batch created elsewhere from the same requests (their `id`s are
    its custom_ids) instead of creating one. `on_batch_created(batch_id)` is called once for each
    batch this call creates. The run is named `run`, or after the requests' digest, so calling
    again resumes it. Raises LedgerError when `timeout` passes first (the run goes on: call
    again to pick it up).
    """
    if not requests:
        return []
    items = [_as_request(r, i) for i, r in enumerate(requests, start=1)]
    ids = [item_id for item_id, _ in items]
    if len(set(ids)) != len(ids):
        raise InputError("chat_batch: request ids must be unique")
    config = config or load_config()
    settings = settings_for(config, provider)
    if base_url:
        settings = _with_base_url(settings, base_url)
    if len(items) == 1 and existing_batch_id is None:
        return [_answer_now(settings, items[0], model)]
    engine = open_ledger(resolve_url(db))
    try:
        run_name = run or _run_name(items, settings.name, model)
        rows = _input_file(engine, run_name, items, model or settings.model)
        json_mode, json_schema = _output_format([request for _, request in items])
        plan = build_run(
            engine,
            rows,
            BuildOptions(
                run_name=run_name,
                provider=settings.name,
                endpoint="chat",
                model=model or settings.model,
                json_mode=json_mode and json_schema is None,
                json_schema=json_schema,
                models=config.models,
            ),
        )
        provider_for = batch_provider_for(config)
        announce = _announcer(engine, on_batch_created)
        if existing_batch_id is not None:
            _adopt(engine, plan.run_id, existing_batch_id, settings.base_url, provider_for)
        report = send_run(
            engine,
            run_name,
            base_url=settings.base_url,
            poll_min=poll_min,
            provider_for=provider_for,
            on_transition=announce,
        )
        if report.paused:
            raise PauseLoop(report.paused)
        _reconcile(
            engine, run_name, settings.base_url, provider_for, announce, timeout, poll_min, poll_max
        )
        return _answers(engine, run_name, ids)
    finally:
        engine.dispose()


def _as_request(value: RequestLike, index: int) -> tuple[str, ChatRequest]:
    if isinstance(value, ChatRequest):
        request, given_id = value, None
    else:
        fields = dict(value)
        given_id = fields.pop("id", None) or fields.pop("custom_id", None)
        if "prompt" in fields:
            request = ChatRequest.prompt(str(fields.pop("prompt")), **fields)
        else:
            request = ChatRequest(**fields)
    request.check()
    return str(given_id) if given_id is not None else f"request-{index:06d}", request


def _with_base_url(settings: Any, base_url: str) -> Any:
    from dataclasses import replace

    return replace(settings, base_url=base_url)


def _answer_now(settings: Any, item: tuple[str, ChatRequest], model: str | None) -> BatchAnswer:
    """One request: the synchronous API, at once."""
    item_id, request = item
    if model and not request.model:
        from dataclasses import replace

        request = replace(request, model=model)
    try:
        result = chat_client(settings).chat(request)
    except ChatError as error:
        return BatchAnswer(item_id, None, None, str(error), "failed")
    usage = {"input_tokens": result.usage.input_tokens, "output_tokens": result.usage.output_tokens}
    response = result.json if request.wants_json else result.text
    return BatchAnswer(item_id, response, usage, None, "succeeded", result.text)


def _run_name(items: list[tuple[str, ChatRequest]], provider: str, model: str | None) -> str:
    # The same requests to the same provider and model are the same run: calling again resumes.
    digest = hashlib.sha256(orjson.dumps([provider, model, *map(_row, items)])).hexdigest()
    return f"chat-batch-{digest[:16]}"


def _row(item: tuple[str, ChatRequest]) -> dict[str, Any]:
    item_id, request = item
    row: dict[str, Any] = {"id": item_id, "messages": request.conversation()}
    for key in ("model", "max_output_tokens", "temperature"):
        value = getattr(request, key)
        if value is not None:
            row[key] = value
    return row


def _input_file(
    engine: Engine, run_name: str, items: list[tuple[str, ChatRequest]], model: str | None
) -> Path:
    """The requests as a JSONL input, written once beside the ledger (same bytes every call)."""
    if model is None and any(request.model is None for _, request in items):
        raise InputError("chat_batch: name a model (argument, request or provider setting)")
    database = sqlite_path(engine.url.render_as_string(hide_password=False))
    root = database.parent if database is not None else Path.cwd()
    path = root / "chat_batch_inputs" / f"{run_name}.jsonl"
    content = b"".join(orjson.dumps(_row(item)) + b"\n" for item in items)
    if not path.exists() or path.read_bytes() != content:
        from ledger.core.durable import write_durably

        path.parent.mkdir(parents=True, exist_ok=True)
        write_durably(path, content)
    return path


def _output_format(requests: list[ChatRequest]) -> tuple[bool, Any]:
    """JSON mode is a property of a run's shards: every request must ask the same."""
    formats = {
        (r.json_mode, orjson.dumps(r.json_schema.__dict__) if r.json_schema else None)
        for r in requests
    }
    if len(formats) > 1:
        raise InputError("chat_batch: all requests must ask for the same output format (JSON)")
    json_mode = requests[0].json_mode
    return json_mode, requests[0].json_schema


def _announcer(
    engine: Engine, on_batch_created: Callable[[str], None] | None
) -> Callable[[int, State, State], None]:
    announced: set[str] = set()

    def announce(job_id: int, from_state: State, to_state: State) -> None:
        if on_batch_created is None or to_state is not State.SUBMITTED:
            return
        with engine.connect() as connection:
            batch_id = connection.execute(select(Job.batch_id).where(Job.id == job_id)).scalar()
        if batch_id and batch_id not in announced:
            announced.add(batch_id)
            on_batch_created(batch_id)

    return announce


def _adopt(
    engine: Engine,
    run_id: int,
    batch_id: str,
    base_url: str | None,
    provider_for: Callable[[str, str | None], Any],
) -> None:
    with engine.connect() as connection:
        jobs = connection.execute(
            select(Job.id, Job.state, Job.batch_id).where(Job.run_id == run_id)
        ).all()
    if any(job.batch_id == batch_id for job in jobs):
        return  # adopted by an earlier call: resume
    if len(jobs) != 1 or jobs[0].state != State.BUILT.value:
        raise InputError(
            f"existing_batch_id: the run must be one job not yet sent (it has {len(jobs)})"
        )
    adopt_batch(engine, jobs[0].id, batch_id, base_url=base_url, provider_for=provider_for)


def _reconcile(
    engine: Engine,
    run_name: str,
    base_url: str | None,
    provider_for: Callable[[str, str | None], Any],
    announce: Callable[[int, State, State], None],
    timeout: float,
    poll_min: float,
    poll_max: float,
) -> None:
    options = ReconcileOptions(
        run_name=run_name, base_url=base_url, poll_min=poll_min, poll_max=poll_max
    )
    reconciler = Reconciler(engine, options, provider_for=provider_for, on_transition=announce)
    deadline = time.monotonic() + timeout
    while reconciler.pending_jobs():
        if time.monotonic() > deadline:
            raise LedgerError(
                f"chat_batch: run {run_name} not finished after {timeout:g} s; call again to "
                "resume it"
            )
        report = reconciler.run_pass()
        if report.paused:
            raise PauseLoop(report.paused)
        remaining = deadline - time.monotonic()
        time.sleep(max(0.0, min(reconciler.seconds_to_next_due(), poll_max, remaining)))


def _answers(engine: Engine, run_name: str, ids: list[str]) -> list[BatchAnswer]:
    found: dict[str, BatchAnswer] = {}
    for _, record in merged_results(find_run_results(engine, run_name).shards):
        error = record.get("error") or None
        message = None
        if record["status"] != "succeeded":
            message = NO_RESULT if record["status"] == "missing" else _error_text(error)
        response = record.get("json") if record.get("json") is not None else record.get("text")
        found[record["custom_id"]] = BatchAnswer(
            id=record["custom_id"],
            response=response if record["status"] == "succeeded" else None,
            usage=record.get("usage"),
            error=message,
            status=record["status"],
            text=record.get("text"),
        )
    return [found.get(i) or BatchAnswer(i, None, None, NO_RESULT, "missing") for i in ids]


def _error_text(error: Mapping[str, Any] | None) -> str:
    if not error:
        return "the request failed"
    code, message = error.get("code"), error.get("message")
    return f"{code}: {message}" if code and message else str(message or code)


__all__ = ["NO_RESULT", "BatchAnswer", "chat_batch"]
