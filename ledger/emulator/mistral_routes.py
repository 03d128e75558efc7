"""Mistral's Files and Batch Jobs routes under `/mistral/v1/...`, as the `mistralai` SDK drives
them (mistralai 3.7.0: `client/files.py`, `client/jobs.py`, `client/models/batchjob.py`).

A Mistral batch job is an OpenAI batch of the same store in other words: its files and jobs are
the emulator's files and batches (host `mistral`: `{custom_id, body}` lines, `timeout_hours` up
to 7 days), so every scenario and fault of the OpenAI routes plays here too, and the route names
are OpenAI's (a fault rule for `create_batch` fires on a job create). Only the shapes differ:

- upload: multipart `file`, `purpose=batch` (and `visibility`, `expiry`, accepted and ignored);
- files and jobs are listed by `page` and `page_size`; jobs newest first (`order_by=-created`);
- a job: `{id, object: batch, input_files, endpoint, model, metadata, status, errors: [{message,
  count}], output_file, error_file, total/completed/succeeded/failed_requests, created_at,
  started_at, completed_at}`, its status in Mistral's words (`mistral_shapes`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from ledger.emulator import lifecycle, multipart
from ledger.emulator.config import EmulatorConfig
from ledger.emulator.errors import ApiError, bad_request, invalid_value, missing_parameter
from ledger.emulator.hosts import MISTRAL
from ledger.emulator.mistral_shapes import present_file, present_job
from ledger.emulator.routes import Api, Request, Response, json_response
from ledger.emulator.validation import check_upload

#: The path prefix the SDK's `server_url` points at (it adds `/v1/...` itself).
PREFIX = "/mistral"

#: Method, path pattern (after the prefix), route name (OpenAI's, so fault rules apply alike).
_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("POST", re.compile(r"/v1/files"), "upload_file"),
    ("GET", re.compile(r"/v1/files"), "list_files"),
    ("GET", re.compile(r"/v1/files/([^/]+)"), "retrieve_file"),
    ("DELETE", re.compile(r"/v1/files/([^/]+)"), "delete_file"),
    ("GET", re.compile(r"/v1/files/([^/]+)/content"), "file_content"),
    ("POST", re.compile(r"/v1/batch/jobs"), "create_batch"),
    ("GET", re.compile(r"/v1/batch/jobs"), "list_batches"),
    ("GET", re.compile(r"/v1/batch/jobs/([^/]+)"), "retrieve_batch"),
    ("POST", re.compile(r"/v1/batch/jobs/([^/]+)/cancel"), "cancel_batch"),
]


def owns(path: str) -> bool:
    """Whether a request path is one of Mistral's."""
    return path.startswith(PREFIX + "/")


def match_route(method: str, path: str) -> tuple[str, str | None] | None:
    """The route name and path id of a Mistral request, or None when no route matches."""
    inner = path[len(PREFIX) :]
    for route_method, pattern, name in _ROUTES:
        found = pattern.fullmatch(inner)
        if found and route_method == method:
            return name, unquote(found.group(1)) if found.groups() else None
    return None


def error_body(error: ApiError) -> dict[str, Any]:
    """An error as Mistral's API words it: a flat object."""
    return {
        "object": "error",
        "message": error.message,
        "type": error.type,
        "param": error.param,
        "code": error.code,
    }


class MistralApi:
    """Mistral's routes over the OpenAI routes' store and lifecycle."""

    def __init__(
        self, api: Api, config: Callable[[], EmulatorConfig], clock: Callable[[], float]
    ) -> None:
        self._api = api
        self._config = config
        self._clock = clock

    def handle(self, route: str, object_id: str | None, request: Request) -> Response:
        """Answer one request to a known route."""
        handler: Callable[[str | None, Request], Response] = getattr(self, f"_{route}")
        return handler(object_id, request)

    # Files

    def _upload_file(self, _: str | None, request: Request) -> Response:
        boundary = multipart.boundary_of(request.headers.get("content-type"))
        fields = {part.name: part for part in multipart.parse(request.body, boundary)}
        upload = fields.get("file")
        if upload is None or upload.filename is None:
            raise missing_parameter("file")
        purpose = fields["purpose"].content.decode() if "purpose" in fields else "fine-tune"
        if purpose != "batch":
            raise invalid_value("purpose", purpose, ["batch"])
        store, config = self._api.store, self._config()
        check_upload(upload.filename, purpose, upload.content, config.max_upload_bytes)
        with store.lock:
            record = store.add_file(
                filename=upload.filename,
                purpose="batch",
                content=upload.content,
                created_at=int(self._clock()),
                expires_at=None,
            )
            store.save()
            lines = upload.content.count(b"\n")
        return json_response(present_file(record.to_api(), num_lines=lines))

    def _list_files(self, _: str | None, request: Request) -> Response:
        page, size = _paging(request)
        purpose, search = _query(request, "purpose"), _query(request, "search") or ""
        store = self._api.store
        with store.lock:
            files = [
                f
                for f in sorted(store.files.values(), key=lambda f: f.seq, reverse=True)
                if not f.deleted and purpose in (None, _purpose(f.purpose))
                if search in f.filename or search == f.id
            ]
            shown = files[page * size : (page + 1) * size]
            data = [present_file(f.to_api()) for f in shown]
        return json_response({"object": "list", "data": data, "total": len(files)})

    def _retrieve_file(self, file_id: str | None, request: Request) -> Response:
        answer = self._openai("retrieve_file", file_id, request)
        return json_response({**present_file(json.loads(answer.body)), "deleted": False})

    def _delete_file(self, file_id: str | None, request: Request) -> Response:
        return self._openai("delete_file", file_id, request)

    def _file_content(self, file_id: str | None, request: Request) -> Response:
        answer = self._openai("file_content", file_id, request)
        answer.content_type = "application/octet-stream"  # the SDK accepts nothing else
        return answer

    # Jobs

    def _create_batch(self, _: str | None, request: Request) -> Response:
        body = _json_object(request)
        files = body.get("input_files")
        if not isinstance(files, list) or len(files) != 1 or not isinstance(files[0], str):
            raise bad_request(
                "The emulator takes exactly one input file per job.", param="input_files"
            )
        if not isinstance(body.get("model"), str):
            raise missing_parameter("model")
        hours = body.get("timeout_hours", 24)
        if type(hours) is not int or not 1 <= hours <= MISTRAL.max_window_hours:
            raise bad_request("timeout_hours must be between 1 and 168.", param="timeout_hours")
        openai_body = {
            "input_file_id": files[0],
            "endpoint": body.get("endpoint"),
            "completion_window": f"{max(hours, 24)}h",
            "metadata": body.get("metadata"),
        }
        created = self._openai("create_batch", None, request, openai_body)
        return self._job(json.loads(created.body)["id"])

    def _list_batches(self, _: str | None, request: Request) -> Response:
        page, size = _paging(request)
        order = _query(request, "order_by") or "-created"
        if order not in ("created", "-created"):
            raise invalid_value("order_by", order, ["created", "-created"])
        store, config, now = self._api.store, self._config(), self._clock()
        with store.lock:
            batches = [b for b in store.batches.values() if b.host == MISTRAL.name]
            batches.sort(key=lambda b: b.seq, reverse=order == "-created")
            if any([lifecycle.advance(store, b, config, now, polled=False) for b in batches]):
                store.save()
            shown = batches[page * size : (page + 1) * size]
            data = [present_job(b.to_api()) for b in shown]
        return json_response({"object": "list", "data": data, "total": len(batches)})

    def _retrieve_batch(self, job_id: str | None, request: Request) -> Response:
        return self._job(json.loads(self._openai("retrieve_batch", job_id, request).body)["id"])

    def _cancel_batch(self, job_id: str | None, request: Request) -> Response:
        return self._job(json.loads(self._openai("cancel_batch", job_id, request).body)["id"])

    # Helpers

    def _openai(
        self, route: str, object_id: str | None, request: Request, body: Any = None
    ) -> Response:
        """The OpenAI route's answer for the same object, made through host `mistral`."""
        inner = Request(
            request.method,
            "/v1/" + route,
            {},
            request.headers,
            request.body if body is None else json.dumps(body).encode(),
            MISTRAL,
        )
        return self._api.handle(route, object_id, inner)

    def _job(self, job_id: str) -> Response:
        with self._api.store.lock:
            return json_response(present_job(self._api.store.batches[job_id].to_api()))


def _purpose(stored: str) -> str:
    # Result files are stored with OpenAI's `batch_output`; Mistral lists them as `batch`.
    return "batch" if stored in ("batch", "batch_output") else stored


def _query(request: Request, name: str) -> str | None:
    values = request.query.get(name)
    return values[0] if values else None


def _paging(request: Request) -> tuple[int, int]:
    try:
        page = int(_query(request, "page") or 0)
        size = int(_query(request, "page_size") or 100)
    except ValueError:
        raise bad_request("page and page_size must be integers.") from None
    if page < 0 or not 1 <= size <= 1000:
        raise bad_request("page must be >= 0 and page_size between 1 and 1000.")
    return page, size


def _json_object(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(request.body)
    except (ValueError, RecursionError):
        raise bad_request("The body must be JSON.") from None
    if not isinstance(body, dict):
        raise bad_request("The body must be a JSON object.")
    return body
