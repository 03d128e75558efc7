"""The HTTP side: a `ThreadingHTTPServer` speaking the OpenAI wire protocol (and Anthropic's on
`/v1/messages`), and `Emulator`, the object that starts, reconfigures, reports on and stops it.

Each request is read whole (Content-Length or chunked) before anything else, so an error answer
never leaves a connection out of step. Then: bearer auth, the fault book, the route; any failure
becomes the API's error JSON. The control plane under `/_emulator/` needs no key.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
import signal
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ledger.emulator import anthropic_routes, lifecycle, message_batches, stats
from ledger.emulator.config import SYNC_ROUTE_NAMES, EmulatorConfig, FaultRule
from ledger.emulator.errors import ApiError, bad_request
from ledger.emulator.faults import FaultBook
from ledger.emulator.routes import Api, Request, Response, json_response, match_route
from ledger.emulator.store import Store
from ledger.emulator.sync_routes import (
    SyncApi,
    match_sync_route,
)

log = logging.getLogger("ledger.emulator")

#: Largest request body read beyond `max_upload_bytes` (multipart framing, JSON bodies).
_BODY_SLACK = 1024 * 1024
_SERVER_ERROR = "The server had an error while processing your request. Sorry about that!"


class Emulator:
    """A local OpenAI Files + Batches API. `start()` it, point the SDK at `base_url`, `stop()`."""

    def __init__(
        self, config: EmulatorConfig | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._config = config or EmulatorConfig()
        self._clock = clock
        self.store = Store(self._config.state_dir)
        self.api = Api(self.store, lambda: self._config, clock)
        self.message_batch_api = anthropic_routes.MessageBatchApi(
            self.store, lambda: self._config, clock
        )
        self.sync_api = SyncApi(lambda: self._config, clock)
        self.faults = FaultBook(self._config.fault_rules())
        self._requests: Counter[str] = Counter()
        self._counter_lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def config(self) -> EmulatorConfig:
        """The config in force."""
        return self._config

    def start(self) -> Emulator:
        """Bind the configured host and port (0: a free one) and serve in a background thread."""
        if self._server is not None:
            return self
        server = _Server((self._config.host, self._config.port), _Handler)
        server.emulator = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    @property
    def port(self) -> int:
        """The bound port."""
        if self._server is None:
            raise RuntimeError("the emulator is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The server's root URL, e.g. `http://127.0.0.1:54321`: what to pass as
        `anthropic.Anthropic(base_url=...)`, whose paths carry `/v1` themselves."""
        host = self._config.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What to pass as `openai.OpenAI(base_url=...)`, e.g. `http://127.0.0.1:54321/v1`."""
        return self.url + "/v1"

    def configure(self, **changes: Any) -> EmulatorConfig:
        """Change scenario, faults, clock or limits while running; ValueError when invalid.

        New faults start with fresh counters; scenarios apply to batches created afterwards; the
        clock applies at once to every unfinished batch.
        """
        config = self._config.with_changes(changes)
        if "faults" in changes:
            self.faults.replace(config.fault_rules())
        self._config = config
        return config

    def stats(self) -> dict[str, Any]:
        """Counts of files, batches, requests per route and faults served (as GET stats)."""
        config, now = self._config, self._clock()
        with self.store.lock:
            changed = [
                lifecycle.advance(self.store, b, config, now, polled=False)
                for b in self.store.batches.values()
            ] + [
                message_batches.advance(b, config, now, polled=False)
                for b in self.store.message_batches.values()
            ]
            if any(changed):
                self.store.save()
            with self._counter_lock:
                requests = dict(self._requests)
            return stats.collect(self.store, requests, self.faults.served)

    def stop(self) -> None:
        """Stop serving, close open connections and release the port."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    def count_request(self, route: str) -> None:
        """Record one request to a route (for the stats)."""
        with self._counter_lock:
            self._requests[route] += 1


def run_until_signalled(emulator: Emulator, on_ready: Callable[[Emulator], None]) -> None:
    """Start `emulator`, call `on_ready`, serve until SIGINT or SIGTERM, then stop cleanly."""
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        emulator.start()
        on_ready(emulator)
        while not stop.wait(0.2):
            pass
    finally:
        emulator.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Connections are closed by `close_connections`, so nothing is left to wait for.
    block_on_close = False
    emulator: Emulator

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = super().get_request()
        with self._open_lock:
            self._open.add(connection)
        return connection, address

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """End every open keep-alive connection, so no old handler serves after a stop."""
        with self._open_lock:
            for connection in self._open:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
            self._open.clear()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ledger-emulator"
    sys_version = ""
    # An idle keep-alive connection, or a client that stops mid-body, is dropped after this.
    timeout = 60

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in separate writes; without this, Nagle's algorithm and the
        # client's delayed ACK add some 40 ms to every answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_OPTIONS(self) -> None:
        self._dispatch()

    def log_message(self, format: str, *args: Any) -> None:
        if self._emulator().config.verbose:
            super().log_message(format, *args)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # http.server's own errors (bad request line, unsupported method) as API error JSON.
        self.close_connection = True
        status = 404 if code == 501 else code
        text = message or "Invalid request."
        if code == 501:
            text = f"Invalid URL ({self.command} {getattr(self, 'path', '')})"
        self._write(json_response(ApiError(status, text).body(), status))

    def _emulator(self) -> Emulator:
        server = self.server
        assert isinstance(server, _Server)
        return server.emulator

    def _dispatch(self) -> None:
        emulator = self._emulator()
        try:
            response = self._answer(emulator)
        except ApiError as error:
            anthropic = anthropic_routes.owns(urlsplit(self.path).path)
            body = anthropic_routes.error_body(error) if anthropic else error.body()
            response = json_response(body, error.status)
            response.headers.update(error.headers)
        except _Dropped:
            self.close_connection = True
            return
        except Exception:
            log.exception("emulator: unexpected error on %s %s", self.command, self.path)
            self.close_connection = True
            response = json_response(
                ApiError(500, _SERVER_ERROR, type="server_error").body(), status=500
            )
        if response is not None:
            self._write(response)

    def _answer(self, emulator: Emulator) -> Response | None:
        body = self._read_body(emulator.config)
        parts = urlsplit(self.path)
        headers = {name.lower(): value for name, value in self.headers.items()}
        request = Request(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers=headers,
            body=body,
        )
        if request.path.startswith("/_emulator/"):
            return _control(emulator, request)
        anthropic = anthropic_routes.owns(request.path)
        if anthropic:
            matched = anthropic_routes.match_route(request.method, request.path)
        else:
            matched = match_route(request.method, request.path)
        # The synchronous routes (chat, responses, embeddings, Anthropic messages) come last.
        matched = matched or match_sync_route(request.method, request.path)
        if matched is None:
            raise ApiError(404, f"Invalid URL ({request.method} {request.path})")
        route, object_id = matched
        emulator.count_request(route)
        if anthropic:
            anthropic_routes.authenticate(emulator.config, headers)
        else:
            _authenticate(emulator.config, headers.get("authorization"))
        if route in SYNC_ROUTE_NAMES:
            return self._serve(emulator, route, lambda: emulator.sync_api.handle(route, request))
        api = emulator.message_batch_api if anthropic else emulator.api
        return self._serve(emulator, route, lambda: api.handle(route, object_id, request))

    def _serve(
        self, emulator: Emulator, route: str, handle: Callable[[], Response]
    ) -> Response | None:
        """Apply the fault book to one authenticated request, and handle it unless refused."""
        decision = emulator.faults.decide(route)
        if decision.latency:
            time.sleep(decision.latency)
        rule = decision.answer
        refusal = _refusal(rule)
        if refusal is not None and rule is not None:
            emulator.faults.count_served(rule.kind)
            raise refusal
        response = handle()
        if rule is not None and rule.kind == "drop_response":
            emulator.faults.count_served(rule.kind)
            raise _Dropped
        if rule is not None and rule.kind == "truncate_download":
            cut = math.floor(len(response.body) * rule.fraction)
            if cut < len(response.body):
                emulator.faults.count_served(rule.kind)
                self._write(response, send=cut)
                self.close_connection = True
                return None
        return response

    def _read_body(self, config: EmulatorConfig) -> bytes:
        """The request body, read whole (a GET's too, to keep the connection in step)."""
        limit = config.max_upload_bytes + _BODY_SLACK
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked(limit)
        given = self.headers.get("Content-Length")
        if given is None:
            return b""
        if not given.strip().isdigit():
            self.close_connection = True
            raise bad_request("Invalid Content-Length header.")
        length = int(given)
        if length > limit:
            self.close_connection = True
            raise ApiError(413, f"Request too large: {length} bytes (the limit is {limit}).")
        return self._read_exactly(length)

    def _read_exactly(self, length: int) -> bytes:
        data = self.rfile.read(length) if length else b""
        if len(data) < length:
            self.close_connection = True
            raise bad_request("The request body ended before its Content-Length.")
        return data

    def _read_chunked(self, limit: int) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024).split(b";", 1)[0].strip()
            if not re.fullmatch(rb"[0-9A-Fa-f]{1,16}", line):
                self.close_connection = True
                raise bad_request("Invalid chunked request body.")
            size = int(line, 16)
            total += size
            if total > limit:
                self.close_connection = True
                raise ApiError(413, "Request too large.")
            if size == 0:
                while self.rfile.readline(1024).strip():
                    pass  # trailers
                return b"".join(chunks)
            chunks.append(self._read_exactly(size))
            self._read_exactly(2)

    def _write(self, response: Response, *, send: int | None = None) -> None:
        if self.request_version == "HTTP/0.9":
            # http.server would send an HTTP/0.9 answer, a bare body with no status line.
            self.request_version = "HTTP/1.0"
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        request_id = f"req_{uuid.uuid4().hex}"
        self.send_header("x-request-id", request_id)
        self.send_header("request-id", request_id)  # where Anthropic's SDK looks for it
        self.send_header("openai-version", "2020-10-01")
        self.send_header("openai-processing-ms", "1")
        for name, value in response.headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body if send is None else response.body[:send])
        self.wfile.flush()


class _Dropped(Exception):
    """The request was processed, and its answer is to be dropped."""


def _authenticate(config: EmulatorConfig, header: str | None) -> None:
    scheme, _, key = (header or "").partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise ApiError(
            401,
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or "
            "as the password field (with blank username) if you're accessing the API from your "
            "browser and are prompted for a username. You can obtain an API key from "
            "https://platform.openai.com/account/api-keys.",
        )
    if config.api_key is not None and key != config.api_key:
        shown = f"{key[:3]}***{key[-2:]}" if len(key) > 6 else "***"
        raise ApiError(
            401,
            f"Incorrect API key provided: {shown}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            code="invalid_api_key",
        )


def _refusal(rule: FaultRule | None) -> ApiError | None:
    """The error answer an `http_500` / `http_429` rule gives instead of handling the request."""
    if rule is None:
        return None
    if rule.kind == "http_500":
        return ApiError(500, _SERVER_ERROR, type="server_error")
    if rule.kind == "http_429":
        return ApiError(
            429,
            "Rate limit reached for requests. Please try again later.",
            type="requests",
            code="rate_limit_exceeded",
            headers={
                "retry-after": str(max(1, math.ceil(rule.seconds))),
                "retry-after-ms": str(round(rule.seconds * 1000)),
            },
        )
    return None


def _control(emulator: Emulator, request: Request) -> Response:
    """The control plane: stats, and the config (read or change)."""
    if request.path == "/_emulator/stats" and request.method == "GET":
        return json_response(emulator.stats())
    if request.path == "/_emulator/config" and request.method == "GET":
        return json_response(emulator.config.public())
    if request.path == "/_emulator/config" and request.method == "POST":
        try:
            changes = json.loads(request.body)
        except (ValueError, RecursionError):
            raise bad_request("The body must be a JSON object of settings.") from None
        if not isinstance(changes, Mapping):
            raise bad_request("The body must be a JSON object of settings.")
        try:
            return json_response(
                emulator.configure(**{str(k): v for k, v in changes.items()}).public()
            )
        except (ValueError, TypeError) as error:
            raise bad_request(str(error)) from None
    raise ApiError(404, f"Invalid URL ({request.method} {request.path})")
