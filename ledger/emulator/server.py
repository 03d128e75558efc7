"""`Emulator`: the object that starts the emulator's HTTP server, reconfigures it while it runs,
reports on it and stops it; and `run_until_signalled`, the `ledger emulator serve` loop.

The wire is `ledger.emulator.http_server`; what answers a request is `ledger.emulator.dispatch`.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from types import TracebackType
from typing import Any

from ledger.emulator import anthropic_routes, gemini_routes, lifecycle, message_batches, stats
from ledger.emulator.config import EmulatorConfig
from ledger.emulator.faults import FaultBook
from ledger.emulator.http_server import EmulatorHTTPServer, RequestHandler
from ledger.emulator.mistral_routes import MistralApi
from ledger.emulator.routes import Api
from ledger.emulator.store import Store
from ledger.emulator.sync_routes import SyncApi


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
        self.mistral_api = MistralApi(self.api, lambda: self._config, clock)
        self.sync_api = SyncApi(lambda: self._config, clock)
        self.gemini_api = gemini_routes.GeminiApi(lambda: self._config, clock)
        self.faults = FaultBook(self._config.fault_rules())
        self._requests: Counter[str] = Counter()
        self._counter_lock = threading.Lock()
        self._server: EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def config(self) -> EmulatorConfig:
        """The config in force."""
        return self._config

    def start(self) -> Emulator:
        """Bind the configured host and port (0: a free one) and serve in a background thread."""
        if self._server is not None:
            return self
        server = EmulatorHTTPServer((self._config.host, self._config.port), RequestHandler)
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
            collected = stats.collect(self.store, requests, self.faults.served)
        collected["gemini"] = self.gemini_api.stats()
        return collected

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
