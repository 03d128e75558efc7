"""A provider that misbehaves on purpose, on 127.0.0.1: one `answer` function serves every GET."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

#: Writes a whole answer (status line, headers, body) to the handler.
Answer = Callable[[BaseHTTPRequestHandler], None]


@contextmanager
def hostile_server(answer: Answer) -> Iterator[str]:
    """Serve `answer` to every request; yields the base URL (`http://127.0.0.1:PORT/v1`)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            # The client gave up, as it should.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                answer(self)

        do_POST = do_GET

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
