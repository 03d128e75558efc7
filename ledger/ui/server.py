"""Running the dashboard on uvicorn, on a socket already listening, until SIGINT or SIGTERM."""

from __future__ import annotations

import signal
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from starlette.applications import Starlette

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _Server(uvicorn.Server):
    """uvicorn's server, ending with exit code 0 on SIGINT or SIGTERM like `ledger reconcile
    --loop` (uvicorn's own raises the signal again once it has shut down: exit 1, "Aborted!")."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def run_until_stopped(app: Starlette, listening: socket.socket) -> None:
    """Serve `app` on `listening` until SIGINT or SIGTERM, then finish the requests under way
    (for at most 2 s) and return."""
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=2
    )
    _Server(config).run(sockets=[listening])
