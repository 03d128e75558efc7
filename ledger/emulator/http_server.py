"""The HTTP wire: a `ThreadingHTTPServer` that can end its keep-alive connections, and the
handler that speaks HTTP/1.1 for the emulator.

Each request is read whole (Content-Length or chunked) before anything else, so an error answer
never leaves a connection out of step; `dispatch.handle` answers it, and any failure becomes the
API's error JSON.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from ledger.emulator.config import EmulatorConfig
from ledger.emulator.dispatch import SERVER_ERROR, Dropped, error_response, handle
from ledger.emulator.errors import ApiError, bad_request
from ledger.emulator.routes import Request, Response, json_response

if TYPE_CHECKING:
    from ledger.emulator.server import Emulator

log = logging.getLogger("ledger.emulator")

#: Largest request body read beyond `max_upload_bytes` (multipart framing, JSON bodies).
_BODY_SLACK = 1024 * 1024


class EmulatorHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that tracks its open connections, so a stop can end them."""

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

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (mid-request or mid-answer) is one log line, not a traceback;
        anything else is reported as socketserver reports it."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            log.warning(
                "emulator: client %s hung up: %s", _address(client_address), type(error).__name__
            )
            return
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        """End every open keep-alive connection, so no old handler serves after a stop."""
        with self._open_lock:
            for connection in self._open:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
            self._open.clear()


def _address(client_address: Any) -> str:
    if isinstance(client_address, tuple) and len(client_address) >= 2:
        return f"{client_address[0]}:{client_address[1]}"
    return str(client_address)


class RequestHandler(BaseHTTPRequestHandler):
    """Reads each request whole, has `dispatch` answer it, and writes the answer."""

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
        assert isinstance(server, EmulatorHTTPServer)
        return server.emulator

    def _dispatch(self) -> None:
        emulator = self._emulator()
        try:
            response = self._answer(emulator)
        except ApiError as error:
            response = error_response(urlsplit(self.path).path, error)
        except Dropped:
            self.close_connection = True
            return
        except ConnectionError:
            raise  # the client hung up mid-request: `handle_error` logs one line
        except Exception:
            log.exception("emulator: unexpected error on %s %s", self.command, self.path)
            self.close_connection = True
            response = json_response(
                ApiError(500, SERVER_ERROR, type="server_error").body(), status=500
            )
        if response is not None:
            self._write(response)

    def _answer(self, emulator: Emulator) -> Response | None:
        """The answer to write; None when it was written already (cut short, then closed)."""
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
        reply = handle(emulator, request)
        if reply.cut is not None:
            self._write(reply.response, send=reply.cut)
            self.close_connection = True
            return None
        return reply.response

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
