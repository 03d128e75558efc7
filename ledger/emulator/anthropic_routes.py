"""The Anthropic Message Batches routes: a request in, a response out, on the emulator's store,
clock, scenarios and faults.

The Anthropic SDK's base URL has no `/v1` (it puts `/v1/messages/batches` in every path), so
clients point at the emulator's root, `Emulator.url`. Auth is the `x-api-key` header (or the
`Authorization: Bearer` the SDK sends for an API key), and `anthropic-version` is required.
Errors are Anthropic's shape, `{"type": "error", "error": {"type", "message"}, "request_id"}`.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote

from ledger.emulator import message_batches
from ledger.emulator.config import ANTHROPIC_ROUTE_NAMES, EmulatorConfig
from ledger.emulator.errors import ApiError, bad_request, invalid_type, not_found
from ledger.emulator.routes import Request, Response
from ledger.emulator.scenarios import SCENARIO_HEADER, choose_scenario, make_plan
from ledger.emulator.store import MessageBatchRecord, Store, new_message_batch_id

_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("POST", re.compile(r"/v1/messages/batches"), "create_message_batch"),
    ("GET", re.compile(r"/v1/messages/batches"), "list_message_batches"),
    ("GET", re.compile(r"/v1/messages/batches/([^/]+)"), "retrieve_message_batch"),
    ("DELETE", re.compile(r"/v1/messages/batches/([^/]+)"), "delete_message_batch"),
    ("POST", re.compile(r"/v1/messages/batches/([^/]+)/cancel"), "cancel_message_batch"),
    ("GET", re.compile(r"/v1/messages/batches/([^/]+)/results"), "message_batch_results"),
]
assert sorted(name for _, _, name in _ROUTES) == sorted(ANTHROPIC_ROUTE_NAMES)

#: Error `type` by HTTP status, for errors raised without an Anthropic type.
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
_ANTHROPIC_TYPES = frozenset(_ERROR_TYPES.values())


def owns(path: str) -> bool:
    """Whether a path is in the Anthropic API's space (its errors take Anthropic's shape)."""
    return path == "/v1/messages" or path.startswith("/v1/messages/")


def match_route(method: str, path: str) -> tuple[str, str | None] | None:
    """The route name and path id for a Message Batches request, or None."""
    for route_method, pattern, name in _ROUTES:
        found = pattern.fullmatch(path)
        if found and route_method == method:
            return name, unquote(found.group(1)) if found.groups() else None
    return None


def error_body(error: ApiError) -> dict[str, Any]:
    """An ApiError in Anthropic's shape."""
    # Errors shared with the OpenAI routes (not found, the fault book's 429 and 500) carry
    # OpenAI's types; the status says which Anthropic type they are.
    specific = error.type in _ANTHROPIC_TYPES and error.type != "invalid_request_error"
    kind = error.type if specific else _ERROR_TYPES.get(error.status)
    if kind is None:
        kind = "api_error" if error.status >= 500 else "invalid_request_error"
    return {
        "type": "error",
        "error": {"type": kind, "message": error.message},
        "request_id": f"req_01{uuid.uuid4().hex[:22]}",
    }


def authenticate(config: EmulatorConfig, headers: Mapping[str, str]) -> None:
    """401 without a key (or with the wrong one, when the emulator has one); 400 without
    `anthropic-version`, as the API answers."""
    key = headers.get("x-api-key", "").strip()
    if not key:
        scheme, _, bearer = headers.get("authorization", "").partition(" ")
        key = bearer.strip() if scheme.lower() == "bearer" else ""
    if not key:
        raise ApiError(401, "x-api-key header is required", type="authentication_error")
    if config.api_key is not None and key != config.api_key:
        raise ApiError(401, "invalid x-api-key", type="authentication_error")
    if not headers.get("anthropic-version"):
        raise bad_request("anthropic-version: header is required")


class MessageBatchApi:
    """The Message Batches API over one store, under the current config."""

    def __init__(
        self,
        store: Store,
        config: Callable[[], EmulatorConfig],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self._config = config
        self._clock = clock

    def handle(self, route: str, object_id: str | None, request: Request) -> Response:
        """Answer one request to a known Message Batches route."""
        handler: Callable[[str | None, Request], Response] = getattr(self, f"_{route}")
        response = handler(object_id, request)
        response.headers.setdefault("request-id", f"req_01{uuid.uuid4().hex[:22]}")
        return response

    def _create_message_batch(self, _: str | None, request: Request) -> Response:
        try:
            body = json.loads(request.body)
        except (ValueError, RecursionError):
            raise bad_request("The request body is not valid JSON.") from None
        config, now = self._config(), self._clock()
        requests = message_batches.check_create(body, len(request.body), config)
        try:
            scenario = choose_scenario(
                config, None, request.headers.get(SCENARIO_HEADER.lower()), requests[0]["custom_id"]
            )
        except ValueError as error:
            raise bad_request(str(error)) from None
        plan = make_plan(config, scenario, [], "")
        with self.store.lock:
            batch = MessageBatchRecord(
                id=new_message_batch_id(),
                created_at=now,
                expires_at=now + message_batches.WINDOW_SECONDS,
                seq=self.store.next_seq(),
                requests=requests,
                plan=plan,
                fingerprint=message_batches.fingerprint(requests),
                stage_started=now,
                stages_left=message_batches.IN_PROGRESS_STAGES,
                hidden_gets=plan.not_found_gets,
            )
            self.store.message_batches[batch.id] = batch
            self.store.save()
            return self._json(batch, request)

    def _list_message_batches(self, _: str | None, request: Request) -> Response:
        limit = _limit(request)
        after, before = _query(request, "after_id"), _query(request, "before_id")
        if after is not None and before is not None:
            raise bad_request("Cannot specify both after_id and before_id.")
        config, now = self._config(), self._clock()
        with self.store.lock:
            ordered = sorted(self.store.message_batches.values(), key=lambda b: b.seq, reverse=True)
            changed = [message_batches.advance(b, config, now, polled=False) for b in ordered]
            if any(changed):
                self.store.save()
            ids = [b.id for b in ordered]
            # A cursor may name a deleted batch: its tombstone keeps its place in the order.
            if after is not None:
                window = ordered[ids.index(after) + 1 :] if after in ids else []
            elif before is not None:
                window = ordered[: ids.index(before)] if before in ids else []
            else:
                window = ordered
            shown = [b for b in window if not b.deleted]
            page = shown[-limit:] if before is not None else shown[:limit]
            base = _base_url(request)
            data = [message_batches.to_api(b, base) for b in page]
            return _json_response(
                {
                    "data": data,
                    "has_more": len(shown) > limit,
                    "first_id": data[0]["id"] if data else None,
                    "last_id": data[-1]["id"] if data else None,
                }
            )

    def _retrieve_message_batch(self, batch_id: str | None, request: Request) -> Response:
        config, now = self._config(), self._clock()
        with self.store.lock:
            batch = self._batch(batch_id)
            if batch.hidden_gets > 0:
                # not_found_grace: the new batch is not visible to a GET yet.
                batch.hidden_gets -= 1
                self.store.save()
                raise _no_batch(batch.id)
            if message_batches.advance(batch, config, now, polled=True):
                self.store.save()
            return self._json(batch, request)

    def _cancel_message_batch(self, batch_id: str | None, request: Request) -> Response:
        config, now = self._config(), self._clock()
        with self.store.lock:
            batch = self._batch(batch_id)
            message_batches.advance(batch, config, now, polled=False)
            message_batches.cancel(batch, now)
            self.store.save()
            return self._json(batch, request)

    def _message_batch_results(self, batch_id: str | None, _: Request) -> Response:
        config, now = self._config(), self._clock()
        with self.store.lock:
            batch = self._batch(batch_id)
            if message_batches.advance(batch, config, now, polled=False):
                self.store.save()
            if batch.processing_status != "ended":
                raise bad_request(
                    f"Message Batch {batch.id} has not ended yet: its results are available "
                    "once processing_status is 'ended'."
                )
            if batch.archived_at is not None:
                raise not_found(
                    f"The results of Message Batch {batch.id} have been archived: results are "
                    "available for 29 days after a batch is created."
                )
            content = b"".join(json.dumps(line).encode() + b"\n" for line in batch.results)
            return Response(200, content, content_type="application/binary")

    def _delete_message_batch(self, batch_id: str | None, _: Request) -> Response:
        config, now = self._config(), self._clock()
        with self.store.lock:
            batch = self._batch(batch_id)
            message_batches.advance(batch, config, now, polled=False)
            if batch.processing_status != "ended":
                raise bad_request(
                    f"Message Batch {batch.id} is still processing: cancel it and wait for it "
                    "to end before deleting it."
                )
            batch.deleted = True
            self.store.save()
            return _json_response({"id": batch.id, "type": "message_batch_deleted"})

    def _batch(self, batch_id: str | None) -> MessageBatchRecord:
        batch = self.store.message_batches.get(batch_id or "")
        if batch is None or batch.deleted:
            raise _no_batch(batch_id)
        return batch

    def _json(self, batch: MessageBatchRecord, request: Request) -> Response:
        return _json_response(message_batches.to_api(batch, _base_url(request)))


def _no_batch(batch_id: str | None) -> ApiError:
    return not_found(f"message_batch: {batch_id} not found")


def _json_response(value: Any) -> Response:
    return Response(200, json.dumps(value).encode())


def _base_url(request: Request) -> str:
    # `results_url` is absolute, as the real API gives it; the Host header says where we are.
    host = request.headers.get("host")
    return f"http://{host}" if host else ""


def _query(request: Request, name: str) -> str | None:
    values = request.query.get(name)
    return values[0] if values else None


def _limit(request: Request) -> int:
    given = _query(request, "limit")
    if given is None:
        return 20
    try:
        limit = int(given)
    except ValueError:
        raise invalid_type("limit", "an integer", given) from None
    if not 1 <= limit <= 1000:
        raise bad_request(f"limit: Input should be between 1 and 1000, not {limit}")
    return limit
