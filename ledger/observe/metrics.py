"""Prometheus metrics for `ledger reconcile --metrics-port N`.

The ledger's own counts (jobs by provider and state, requests by run and status, cost by run)
are read from the database at each scrape, so every reconciler sharing a ledger reports the same
truth. What only this process knows is counted as it happens: each provider call's latency and
errors (a proxy around the provider the engine gets from `provider_for`; no step changes),
each pass's duration, and the dead owners whose leases it took over.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, cast

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from adapters.base import BatchProvider
from ledger.console import run_progress
from ledger.query.report import status_report

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from ledger.reconcile.engine import Reconciler

#: The methods of BatchProvider the proxy times (every provider call the steps make).
PROVIDER_METHODS = frozenset(
    {
        "upload_input",
        "find_uploads",
        "create_batch",
        "find_batches",
        "get_batch",
        "cancel_batch",
        "download_file",
        "delete_file",
    }
)


class LedgerCollector(Collector):
    """The ledger's counts, read at each scrape."""

    def __init__(self, engine: Engine, run_name: str | None) -> None:
        self.engine = engine
        self.run_name = run_name

    def collect(self) -> Iterator[GaugeMetricFamily]:
        jobs = GaugeMetricFamily(
            "ledger_jobs", "Jobs by provider and state.", labels=["provider", "state"]
        )
        requests = GaugeMetricFamily(
            "ledger_requests", "Requests by run and status.", labels=["run", "status"]
        )
        cost = GaugeMetricFamily(
            "ledger_cost_usd",
            "Cost so far of each run's normalized jobs (absent while a model has no price).",
            labels=["run"],
        )
        by_state: dict[tuple[str, str], int] = {}
        for run in status_report(self.engine, self.run_name):
            for state, count in run["job_states"].items():
                key = (run["provider"], state)
                by_state[key] = by_state.get(key, 0) + count
            for status, count in run["request_statuses"].items():
                requests.add_metric([run["run"], status], count)
            progress = run_progress(run)
            if progress.cost_usd is not None:
                cost.add_metric([run["run"]], progress.cost_usd)
        for (provider, state), count in sorted(by_state.items()):
            jobs.add_metric([provider, state], count)
        yield jobs
        yield requests
        yield cost


class TimedProvider:
    """A batch provider whose every call is timed, and counted by error kind when it raises."""

    def __init__(self, inner: BatchProvider, metrics: Metrics) -> None:
        self._inner = inner
        self._metrics = metrics

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if name not in PROVIDER_METHODS:
            return attribute
        provider = self._inner.name

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return attribute(*args, **kwargs)
            except Exception as error:
                self._metrics.call_errors.labels(provider, name, type(error).__name__).inc()
                raise
            finally:
                elapsed = time.perf_counter() - start
                self._metrics.call_seconds.labels(provider, name).observe(elapsed)

        return timed


class _TakeoverCounter(logging.Handler):
    """Counts the engine's "took over the leases of <owner>" records (one per dead owner)."""

    def __init__(self, counter: Counter) -> None:
        super().__init__(logging.INFO)
        self.counter = counter

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg.startswith("took over the leases"):
            self.counter.inc()


class Metrics:
    """One reconciler's metrics, in a registry of their own."""

    def __init__(self, engine: Engine, run_name: str | None = None) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(LedgerCollector(engine, run_name))
        self.call_seconds = Histogram(
            "ledger_provider_call_seconds",
            "Provider calls by provider and method, in seconds.",
            ["provider", "method"],
            registry=self.registry,
        )
        self.call_errors = Counter(
            "ledger_provider_call_errors",
            "Provider calls that raised, by provider, method and error kind.",
            ["provider", "method", "kind"],
            registry=self.registry,
        )
        self.pass_seconds = Histogram(
            "ledger_pass_seconds", "Reconcile passes, in seconds.", registry=self.registry
        )
        self.lease_takeovers = Counter(
            "ledger_lease_takeovers",
            "Dead reconcilers (on this host) whose leases this one ended.",
            registry=self.registry,
        )
        self._server: Any = None
        self._takeovers = _TakeoverCounter(self.lease_takeovers)

    def wrap(
        self, provider_for: Callable[[str, str | None], BatchProvider]
    ) -> Callable[[str, str | None], BatchProvider]:
        """`provider_for` whose providers are timed."""

        def timed_provider_for(name: str, base_url: str | None) -> BatchProvider:
            return cast(BatchProvider, TimedProvider(provider_for(name, base_url), self))

        return timed_provider_for

    def watch(self, reconciler: Reconciler) -> None:
        """Time each of the reconciler's passes, and count the leases it takes over."""
        run_pass = reconciler.run_pass

        def timed_pass() -> Any:
            with self.pass_seconds.time():
                return run_pass()

        # The loop calls self.run_pass(): timing it from outside leaves the engine unchanged.
        reconciler.run_pass = timed_pass  # type: ignore[method-assign]
        logger = logging.getLogger("ledger.reconcile")
        logger.addHandler(self._takeovers)
        if not logger.isEnabledFor(logging.INFO):
            logger.setLevel(logging.INFO)

    def serve(self, port: int, host: str = "127.0.0.1") -> int:
        """Serve /metrics on a thread of its own; returns the port (0 picks a free one)."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        self._server = server
        return int(server.server_port)

    def close(self) -> None:
        logging.getLogger("ledger.reconcile").removeHandler(self._takeovers)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
