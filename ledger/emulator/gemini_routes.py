"""The Gemini Developer API routes the `google-genai` SDK drives for Batch Mode: the Files API
(resumable upload, list, get, delete, download) and the batches (create, list, get, cancel,
delete), on the emulator's clock, scenarios and faults.

Clients point the SDK at the emulator's root (`http_options={"base_url": Emulator.url}`); the SDK
puts `/v1beta/...` (and `/upload/v1beta/files`) in every path. Auth is the `x-goog-api-key`
header. Errors are Google's shape, `{"error": {"code", "message", "status"}}`. Paths and shapes:
google-genai 3.6.1 `files.py`, `batches.py` (`_BatchJob_from_mldev`), `_api_client.py`
(`_upload_fd`: `X-Goog-Upload-Command`, `X-Goog-Upload-Status`).
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from ledger.emulator import gemini_batches as gb
from ledger.emulator.config import GEMINI_ROUTE_NAMES, EmulatorConfig, check_scenario
from ledger.emulator.errors import ApiError, bad_request
from ledger.emulator.routes import Request, Response
from ledger.emulator.scenarios import SCENARIO_HEADER

_V = "/v1beta"
_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("POST", re.compile(r"/upload/v1beta/files"), "gemini_upload_file"),
    ("GET", re.compile(_V + r"/files"), "gemini_list_files"),
    ("GET", re.compile(_V + r"/files/([a-z0-9-]+):download"), "gemini_download_file"),
    ("GET", re.compile(_V + r"/files/([a-z0-9-]+)"), "gemini_get_file"),
    ("DELETE", re.compile(_V + r"/files/([a-z0-9-]+)"), "gemini_delete_file"),
    ("POST", re.compile(_V + r"/models/([^/:]+):batchGenerateContent"), "gemini_create_batch"),
    (
        "POST",
        re.compile(_V + r"/models/([^/:]+):asyncBatchEmbedContent"),
        "gemini_create_embeddings_batch",
    ),
    ("POST", re.compile(_V + r"/models/([^/:]+):generateContent"), "gemini_generate_content"),
    ("POST", re.compile(_V + r"/models/([^/:]+):countTokens"), "gemini_count_tokens"),
    ("GET", re.compile(_V + r"/batches"), "gemini_list_batches"),
    ("GET", re.compile(_V + r"/batches/([a-z0-9-]+)"), "gemini_get_batch"),
    ("POST", re.compile(_V + r"/batches/([a-z0-9-]+):cancel"), "gemini_cancel_batch"),
    ("DELETE", re.compile(_V + r"/batches/([a-z0-9-]+)"), "gemini_delete_batch"),
]
assert sorted({name for _, _, name in _ROUTES}) == sorted(GEMINI_ROUTE_NAMES)

_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
           404: "NOT_FOUND", 409: "ALREADY_EXISTS", 429: "RESOURCE_EXHAUSTED",
           500: "INTERNAL", 503: "UNAVAILABLE"}  # fmt: skip


def owns(path: str) -> bool:
    """Whether a path is in the Gemini API's space (its errors take Google's shape)."""
    return path.startswith((_V + "/", "/upload/v1beta/"))


def match_route(method: str, path: str) -> tuple[str, str | None] | None:
    """The route name and path id for a Gemini request, or None."""
    for route_method, pattern, name in _ROUTES:
        found = pattern.fullmatch(path)
        if found and route_method == method:
            return name, found.group(1) if found.groups() else None
    return None


def error_body(error: ApiError) -> dict[str, Any]:
    """An ApiError in Google's shape. The `insufficient_quota` fault is a per-day quota spent
    (its `QuotaFailure` detail says so, as Google's does); an `http_429` is plain rate limiting
    (a per-minute quota and a `RetryInfo`)."""
    status = _STATUS.get(error.status, "INTERNAL" if error.status >= 500 else "FAILED_PRECONDITION")
    body: dict[str, Any] = {"code": error.status, "message": error.message, "status": status}
    if error.status == 429:
        daily = error.code == "insufficient_quota"
        quota = "GenerateRequestsPerDayPerProjectPerModel" if daily else "BatchRequestsPerMinute"
        violation = {"quotaMetric": "generativelanguage.googleapis.com/batch_requests",
                     "quotaId": quota, "quotaValue": "250"}  # fmt: skip
        body["details"] = [
            {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [violation]},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "20s"},
        ]
    return {"error": body}


def authenticate(config: EmulatorConfig, request: Request) -> None:
    """401 without `x-goog-api-key`; 400 API_KEY_INVALID with the wrong one (as Google answers).
    An upload's chunks go to the session URL the start returned, whose `upload_id` is their
    credential: the SDK sends them without the key."""
    if request.query.get("upload_id"):
        return
    headers = request.headers
    key = headers.get("x-goog-api-key", "").strip()
    if not key:
        raise ApiError(401, "Method doesn't allow unregistered callers. Please use an API key.")
    if config.api_key is not None and key != config.api_key:
        raise ApiError(400, "API key not valid. Please pass a valid API key.")


class GeminiApi:
    """The Gemini Files and batches routes over one in-memory state, under the current config."""

    def __init__(
        self, config: Callable[[], EmulatorConfig], clock: Callable[[], float] = time.time
    ) -> None:
        self.state = gb.GeminiState()
        self._config = config
        self._clock = clock

    def stats(self) -> dict[str, Any]:
        """Batches and uploaded files created, by status and by display name."""
        with self.state.lock:
            batches = list(self.state.batches.values())
            uploads = [f for f in self.state.files.values() if not f.generated]
            return {
                "batches_created": len(batches),
                "by_state": dict(Counter(b.state for b in batches)),
                "by_display_name": dict(Counter(b.display_name for b in batches)),
                "files_uploaded": len(uploads),
            }

    def handle(self, route: str, object_id: str | None, request: Request) -> Response:
        """Answer one request to a known Gemini route."""
        handler: Callable[[str | None, Request], Response] = getattr(self, f"_{route}")
        with self.state.lock:
            return handler(object_id, request)

    # -- files ------------------------------------------------------------------------------

    def _gemini_upload_file(self, _: str | None, request: Request) -> Response:
        command = request.headers.get("x-goog-upload-command", "")
        upload_id = (request.query.get("upload_id") or [None])[0]
        if upload_id is None:
            if command != "start":
                raise bad_request("Only resumable uploads (X-Goog-Upload-Command: start).")
            body = _json(request).get("file") or {}
            size = request.headers.get("x-goog-upload-header-content-length", "0")
            record = gb.GeminiFile(
                name=f"files/{gb.new_id()}",
                # The SDK sends the File as its Python dump (`display_name`); REST says
                # `displayName`. The API takes either, as proto JSON does.
                display_name=body.get("displayName", body.get("display_name")),
                mime_type=request.headers.get("x-goog-upload-header-content-type", "jsonl"),
                created_at=self._clock(),
                expected_bytes=int(size) if size.isdigit() else 0,
            )
            upload = gb.new_id()
            self.state.uploads[upload] = record
            url = f"{_base_url(request)}/upload/v1beta/files?upload_id={upload}"
            headers = {"x-goog-upload-url": url, "x-goog-upload-status": "active"}
            return Response(200, b"{}", headers=headers)
        record = self.state.uploads.get(upload_id)
        if record is None:
            raise ApiError(404, f"No upload session {upload_id}.")
        offset = request.headers.get("x-goog-upload-offset", "0")
        if not offset.isdigit() or int(offset) != len(record.content):
            raise bad_request(f"Upload offset {offset} is not {len(record.content)}.")
        record.content += request.body
        if "finalize" not in command:
            return Response(200, b"", headers={"x-goog-upload-status": "active"})
        del self.state.uploads[upload_id]
        if len(record.content) != record.expected_bytes:
            raise bad_request("The upload's size does not match the declared content length.")
        record.complete = True
        self.state.files[record.name] = record
        body = json.dumps({"file": record.to_api(_base_url(request))}).encode()
        return Response(200, body, headers={"x-goog-upload-status": "final"})

    def _gemini_list_files(self, _: str | None, request: Request) -> Response:
        files = sorted(self.state.files.values(), key=lambda f: f.created_at, reverse=True)
        page, token = _page(request, [f.to_api(_base_url(request)) for f in files])
        return _ok({"files": page, **({"nextPageToken": token} if token else {})})

    def _gemini_get_file(self, file_id: str | None, request: Request) -> Response:
        return _ok(self._file(file_id).to_api(_base_url(request)))

    def _gemini_delete_file(self, file_id: str | None, _: Request) -> Response:
        del self.state.files[self._file(file_id).name]
        return _ok({})

    def _gemini_download_file(self, file_id: str | None, _: Request) -> Response:
        record = self._file(file_id)
        if not record.generated:
            raise bad_request("Only generated files can be downloaded.")
        return Response(200, record.content, content_type="application/octet-stream")

    def _file(self, file_id: str | None) -> gb.GeminiFile:
        record = self.state.files.get(f"files/{file_id}")
        if record is None:
            raise ApiError(404, f"File files/{file_id} does not exist.")
        return record

    # -- synchronous calls (chat, `ledger doctor`, token counts) ------------------------------

    def _gemini_generate_content(self, model: str | None, request: Request) -> Response:
        body = _json(request)
        if not isinstance(body.get("contents"), list) or not body["contents"]:
            raise bad_request("* GenerateContentRequest.contents: contents is not specified")
        seed = f"{self._config().seed}:sync:{request.body.decode(errors='replace')}"
        return _ok(gb.response(f"models/{model}", body, seed))

    def _gemini_count_tokens(self, _: str | None, request: Request) -> Response:
        body = _json(request)
        return _ok({"totalTokens": gb.prompt_tokens(body.get("contents") or [])})

    # -- batches ----------------------------------------------------------------------------

    def _gemini_create_embeddings_batch(self, model: str | None, request: Request) -> Response:
        return self._gemini_create_batch(model, request, embeddings=True)

    def _gemini_create_batch(
        self, model: str | None, request: Request, *, embeddings: bool = False
    ) -> Response:
        batch = _json(request).get("batch")
        if not isinstance(batch, dict):
            raise bad_request("batch: Field required")
        source = batch.get("inputConfig") or {}
        source = source if isinstance(source, dict) else {}
        # google-genai 3.6.1 sends an embeddings batch's input as `file_name`; proto JSON takes
        # either spelling. Inlined requests come as `requests.requests`.
        file_name = source.get("fileName", source.get("file_name"))
        record = None
        try:
            if "requests" in source and not embeddings:
                requests = gb.read_inlined(source)
            elif isinstance(file_name, str):
                record = self.state.files.get(file_name)
                if record is None:
                    raise ApiError(404, f"File {file_name} does not exist.")
                requests = gb.read_requests(record.content)
            else:
                raise bad_request("inputConfig needs fileName or requests.")
        except ValueError as error:
            raise bad_request(f"{file_name or 'inputConfig'}: {error}") from None
        config, now = self._config(), self._clock()
        header = request.headers.get(SCENARIO_HEADER.lower())
        try:
            scenario = check_scenario(header.strip()) if header else config.scenario
        except ValueError as error:
            raise bad_request(str(error)) from None
        for rule in config.scenario_rules:
            named = record.display_name if record is not None else batch.get("displayName")
            if not header and rule["file_name_contains"] in str(named or ""):
                scenario = rule["scenario"]
                break
        created = gb.GeminiBatch(
            name=f"batches/{gb.new_id()}",
            model=f"models/{model}",
            display_name=str(batch.get("displayName") or ""),
            input_file=file_name if isinstance(file_name, str) else "",
            requests=requests,
            inline=record is None,
            scenario=scenario,
            created_at=now,
            stage_started=now,
            hidden_gets=config.not_found_gets if scenario == "not_found_grace" else 0,
            embeddings=embeddings,
            dimensions=config.embedding_dimensions,
        )
        self.state.batches[created.name] = created
        return _ok(created.to_api())

    def _gemini_list_batches(self, _: str | None, request: Request) -> Response:
        config, now = self._config(), self._clock()
        batches = [b for b in self.state.batches.values() if not b.deleted]
        for batch in batches:
            gb.advance(batch, self.state, config, now, polled=False)
        batches.sort(key=lambda b: b.created_at, reverse=True)
        page, token = _page(request, [b.to_api() for b in batches])
        return _ok({"operations": page, **({"nextPageToken": token} if token else {})})

    def _gemini_get_batch(self, batch_id: str | None, _: Request) -> Response:
        batch = self._batch(batch_id)
        if batch.hidden_gets > 0:
            batch.hidden_gets -= 1  # not_found_grace: a new batch is not visible to a GET yet
            raise ApiError(404, f"Batch {batch.name} not found.")
        gb.advance(batch, self.state, self._config(), self._clock(), polled=True)
        return _ok(batch.to_api())

    def _gemini_cancel_batch(self, batch_id: str | None, _: Request) -> Response:
        batch = self._batch(batch_id)
        gb.advance(batch, self.state, self._config(), self._clock(), polled=False)
        if batch.state in gb.FINAL:
            raise bad_request(f"Batch {batch.name} has already ended and cannot be cancelled.")
        gb.cancel(batch, self._clock())
        return _ok({})

    def _gemini_delete_batch(self, batch_id: str | None, _: Request) -> Response:
        self._batch(batch_id).deleted = True
        return _ok({})

    def _batch(self, batch_id: str | None) -> gb.GeminiBatch:
        batch = self.state.batches.get(f"batches/{batch_id}")
        if batch is None or batch.deleted:
            raise ApiError(404, f"Batch batches/{batch_id} not found.")
        return batch


def _json(request: Request) -> dict[str, Any]:
    try:
        value = json.loads(request.body or b"{}")
    except (ValueError, RecursionError):
        raise bad_request("Invalid JSON payload received.") from None
    if not isinstance(value, dict):
        raise bad_request("Invalid JSON payload received.")
    return value


def _page(request: Request, items: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str]:
    size_given = (request.query.get("pageSize") or ["50"])[0]
    size = int(size_given) if size_given.isdigit() and int(size_given) > 0 else 50
    start_given = (request.query.get("pageToken") or ["0"])[0]
    start = int(start_given) if start_given.isdigit() else 0
    page = items[start : start + size]
    return page, str(start + size) if start + size < len(items) else ""


def _ok(value: Any) -> Response:
    return Response(200, json.dumps(value).encode())


def _base_url(request: Request) -> str:
    host = request.headers.get("host")
    return f"http://{host}" if host else ""
