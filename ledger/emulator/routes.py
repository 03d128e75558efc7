"""The Files and Batches routes: a request in, a response out, with no HTTP plumbing.

`Api.handle` turns one parsed request into one `Response`; every failure is an `ApiError` with a
4xx status, so the server only ever writes the API's error JSON.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import unquote

from ledger.emulator import lifecycle, multipart
from ledger.emulator.config import OPENAI_ROUTE_NAMES, EmulatorConfig
from ledger.emulator.errors import (
    ApiError,
    bad_request,
    invalid_type,
    invalid_value,
    missing_parameter,
    not_found,
)
from ledger.emulator.hosts import Host, create_body, present_batch, present_file
from ledger.emulator.scenarios import (
    SCENARIO_HEADER,
    SCENARIO_METADATA_KEY,
    choose_scenario,
    make_plan,
)
from ledger.emulator.store import BatchRecord, FileRecord, Store, new_batch_id
from ledger.emulator.validation import (
    api_error_for_file,
    check_batch_params,
    check_expiry,
    check_upload,
)

#: How long a batch has before it expires, and an input file before it is deleted.
BATCH_WINDOW_SECONDS = 24 * 3600
BATCH_INPUT_FILE_SECONDS = 30 * 24 * 3600

#: The route table: method, path pattern, route name.
_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("POST", re.compile(r"/v1/files"), "upload_file"),
    ("GET", re.compile(r"/v1/files"), "list_files"),
    ("GET", re.compile(r"/v1/files/([^/]+)"), "retrieve_file"),
    ("DELETE", re.compile(r"/v1/files/([^/]+)"), "delete_file"),
    ("GET", re.compile(r"/v1/files/([^/]+)/content"), "file_content"),
    ("POST", re.compile(r"/v1/batches"), "create_batch"),
    ("GET", re.compile(r"/v1/batches"), "list_batches"),
    ("GET", re.compile(r"/v1/batches/([^/]+)"), "retrieve_batch"),
    ("POST", re.compile(r"/v1/batches/([^/]+)/cancel"), "cancel_batch"),
]
assert sorted(name for _, _, name in _ROUTES) == sorted(OPENAI_ROUTE_NAMES)


@dataclass
class Request:
    """One HTTP request, parsed: header names are lower case."""

    method: str
    path: str
    query: dict[str, list[str]] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    #: The compatible host whose prefix the path came under (hosts.py); None: OpenAI's.
    host: Host | None = None


@dataclass
class Response:
    """One HTTP answer."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def json_response(value: Any, status: int = 200) -> Response:
    """A JSON answer."""
    return Response(status, json.dumps(value).encode())


def match_route(method: str, path: str) -> tuple[str, str | None] | None:
    """The route name and path id for a request, or None when no route matches."""
    for route_method, pattern, name in _ROUTES:
        found = pattern.fullmatch(path)
        if found and route_method == method:
            return name, unquote(found.group(1)) if found.groups() else None
    return None


class Api:
    """The Files and Batches API over one store, under the current config."""

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
        """Answer one request to a known route."""
        handler: Callable[[str | None, Request], Response] = getattr(self, f"_{route}")
        return handler(object_id, request)

    # Files

    def _upload_file(self, _: str | None, request: Request) -> Response:
        boundary = multipart.boundary_of(request.headers.get("content-type"))
        fields: dict[str, multipart.Part] = {}
        for part in multipart.parse(request.body, boundary):
            if part.name not in (
                "file",
                "purpose",
                "expires_after[anchor]",
                "expires_after[seconds]",
            ):
                raise bad_request(
                    f"Unknown parameter: '{part.name}'.", param=part.name, code="unknown_parameter"
                )
            fields[part.name] = part
        upload = fields.get("file")
        if upload is None or upload.filename is None:
            raise missing_parameter("file")
        if "purpose" not in fields:
            raise missing_parameter("purpose")
        purpose = fields["purpose"].content.decode("utf-8", "replace")
        expiry = _form_expiry(fields)
        config = self._config()
        batch_purpose = request.host.upload_purpose if request.host else "batch"
        if purpose == batch_purpose:
            purpose = "batch"  # stored as OpenAI's word; checked as a batch input
        elif purpose == "batch":
            raise invalid_value("purpose", purpose, [batch_purpose])
        check_upload(upload.filename, purpose, upload.content, config.max_upload_bytes)
        now = int(self._clock())
        if expiry is not None:
            expires_at: int | None = now + expiry["seconds"]
        else:
            expires_at = now + BATCH_INPUT_FILE_SECONDS if purpose == "batch" else None
        with self.store.lock:
            record = self.store.add_file(
                filename=upload.filename,
                purpose=purpose,
                content=upload.content,
                created_at=now,
                expires_at=expires_at,
            )
            self.store.save()
        return json_response(present_file(request.host, record.to_api()))

    def _list_files(self, _: str | None, request: Request) -> Response:
        purpose = _query(request, "purpose")
        if request.host is not None and purpose == request.host.upload_purpose:
            purpose = "batch"
        order = _query(request, "order") or "desc"
        if order not in ("asc", "desc"):
            raise invalid_value("order", order, ["asc", "desc"])
        limit = _limit(request, default=10_000, maximum=10_000)
        after = _query(request, "after")
        with self.store.lock:
            files = sorted(self.store.files.values(), key=lambda f: f.seq, reverse=order == "desc")
            page = _page(
                files, after, limit, lambda f: not f.deleted and purpose in (None, f.purpose)
            )
            page["data"] = [present_file(request.host, f) for f in page["data"]]
            return json_response(page)

    def _retrieve_file(self, file_id: str | None, request: Request) -> Response:
        return json_response(present_file(request.host, self._file(file_id).to_api()))

    def _file_content(self, file_id: str | None, _: Request) -> Response:
        with self.store.lock:
            record = self._file(file_id)
            return Response(200, self.store.content(record.id), content_type=record.content_type)

    def _delete_file(self, file_id: str | None, _: Request) -> Response:
        with self.store.lock:
            record = self._file(file_id)
            self.store.delete_file(record.id)
            self.store.save()
        return json_response({"id": record.id, "object": "file", "deleted": True})

    # Batches

    def _create_batch(self, _: str | None, request: Request) -> Response:
        body, longer_window = create_body(request.host, _json_body(request))
        params = check_batch_params(body)
        if longer_window is not None:
            params = replace(params, completion_window=longer_window)
        config = self._config()
        now = self._clock()
        with self.store.lock:
            file = self.store.live_file(params.input_file_id)
            if file is None and config.unknown_input_file == "reject":
                raise api_error_for_file(params.input_file_id)
            if file is not None and file.purpose != "batch":
                raise bad_request(
                    f"The input file {file.id} has purpose '{file.purpose}'; a batch needs a "
                    "file uploaded with purpose 'batch'.",
                    param="input_file_id",
                    code="invalid_value",
                )
            file_name = "" if file is None else file.filename
            try:
                scenario = choose_scenario(
                    config, params.metadata, request.headers.get(SCENARIO_HEADER.lower()), file_name
                )
            except ValueError as error:
                param = f"metadata.{SCENARIO_METADATA_KEY}"
                if not (params.metadata and SCENARIO_METADATA_KEY in params.metadata):
                    param = SCENARIO_HEADER
                raise bad_request(str(error), param=param, code="invalid_value") from None
            earlier = sorted(self.store.batches.values(), key=lambda b: b.seq)
            plan = make_plan(config, scenario, earlier, file_name)
            batch = BatchRecord(
                id=new_batch_id(),
                endpoint=params.endpoint,
                input_file_id=params.input_file_id,
                completion_window=params.completion_window,
                created_at=int(now),
                expires_at=int(now) + BATCH_WINDOW_SECONDS,
                metadata=params.metadata,
                output_expires_after=params.output_expires_after,
                seq=self.store.next_seq(),
                input_filename=file_name,
                plan=plan,
                stage_started=now,
                hidden_gets=plan.not_found_gets,
                host=request.host.name if request.host else None,
            )
            self.store.add_batch(batch)
            self.store.save()
            shown = present_batch(request.host, batch.to_api())
            wraps = request.host is not None and request.host.create_wraps_job
            return json_response({"job": shown} if wraps else shown)

    def _list_batches(self, _: str | None, request: Request) -> Response:
        limit = _limit(request, default=20, maximum=100)
        after = _query(request, "after")
        config, now = self._config(), self._clock()
        with self.store.lock:
            batches = sorted(self.store.batches.values(), key=lambda b: b.seq, reverse=True)
            changed = [lifecycle.advance(self.store, b, config, now, polled=False) for b in batches]
            if any(changed):
                self.store.save()
            # Each host is its own service: it lists only the batches made through it.
            host = request.host.name if request.host else None
            page = _page(batches, after, limit, lambda b: b.host == host)
            page["data"] = [present_batch(request.host, b) for b in page["data"]]
            return json_response(page)

    def _retrieve_batch(self, batch_id: str | None, request: Request) -> Response:
        config, now = self._config(), self._clock()
        with self.store.lock:
            batch = self._batch(batch_id)
            if batch.hidden_gets > 0:
                # not_found_grace: the new batch is not visible to a GET yet.
                batch.hidden_gets -= 1
                self.store.save()
                raise _no_batch(batch.id)
            if lifecycle.advance(self.store, batch, config, now, polled=True):
                self.store.save()
            return json_response(present_batch(request.host, batch.to_api()))

    def _cancel_batch(self, batch_id: str | None, request: Request) -> Response:
        config, now = self._config(), self._clock()
        with self.store.lock:
            batch = self._batch(batch_id)
            lifecycle.advance(self.store, batch, config, now, polled=False)
            lifecycle.cancel(batch, now)
            self.store.save()
            return json_response(present_batch(request.host, batch.to_api()))

    # Lookups

    def _file(self, file_id: str | None) -> FileRecord:
        record = self.store.live_file(file_id or "")
        # A file past its `expires_at` (`expires_after` on upload, `output_expires_after` on
        # the batch, or the defaults) is gone, as the API deletes it: 404 from then on.
        expires_at = record.expires_at if record is not None else None
        if expires_at is not None and expires_at <= self._clock():
            record = None
        if record is None:
            raise not_found(f"No such File object: {file_id}", param="id")
        return record

    def _batch(self, batch_id: str | None) -> BatchRecord:
        batch = self.store.batches.get(batch_id or "")
        if batch is None:
            raise _no_batch(batch_id)
        return batch


def _no_batch(batch_id: str | None) -> ApiError:
    return not_found(f"No batch found with id '{batch_id}'.")


def _page(
    items: list[Any], after: str | None, limit: int, visible: Callable[[Any], bool]
) -> dict[str, Any]:
    """One cursor page of `items` (already in list order) after the item with id `after`."""
    if after is not None:
        ids = [item.id for item in items]
        # The cursor may name a deleted file: its tombstone keeps its place in the order.
        items = items[ids.index(after) + 1 :] if after in ids else []
    shown = [item for item in items if visible(item)]
    data = [item.to_api() for item in shown[:limit]]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": len(shown) > limit,
    }


def _query(request: Request, name: str) -> str | None:
    values = request.query.get(name)
    return values[0] if values else None


def _limit(request: Request, *, default: int, maximum: int) -> int:
    given = _query(request, "limit")
    if given is None:
        return default
    try:
        limit = int(given)
    except ValueError:
        raise invalid_type("limit", "an integer", given) from None
    if not 1 <= limit <= maximum:
        raise bad_request(
            f"Invalid 'limit': expected a value between 1 and {maximum}, but got {limit} instead.",
            param="limit",
            code="invalid_value",
        )
    return limit


def _json_body(request: Request) -> Any:
    try:
        return json.loads(request.body)
    except (ValueError, RecursionError):  # also UnicodeDecodeError; RecursionError: deep nesting
        raise bad_request(
            "We could not parse the JSON body of your request. (HINT: This likely means you "
            "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, "
            "but what was sent was not valid JSON. If you have trouble figuring out how to fix "
            "this, please contact us through our help center at help.openai.com.)"
        ) from None


def _form_expiry(fields: dict[str, multipart.Part]) -> dict[str, Any] | None:
    anchor = fields.get("expires_after[anchor]")
    seconds = fields.get("expires_after[seconds]")
    if anchor is None and seconds is None:
        return None
    value: dict[str, Any] = {}
    if anchor is not None:
        value["anchor"] = anchor.content.decode("utf-8", "replace")
    if seconds is not None:
        text = seconds.content.decode("utf-8", "replace").strip()
        value["seconds"] = int(text) if re.fullmatch(r"-?\d{1,18}", text) else text
    return check_expiry("expires_after", value)
