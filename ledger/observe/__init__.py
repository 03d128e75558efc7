"""Watching a reconciler from outside: Prometheus metrics (`metrics`), OpenTelemetry traces
(`traces`), JSON log lines (`logs`) and a command run when a run ends (`ondone`). Each is imported
only by the option that wants it; `prometheus_client` is the optional extra `metrics`, the
OpenTelemetry SDK the extra `otel`: without them, the option says which extra to install."""

from __future__ import annotations

from typing import Any

from ledger.errors import ConfigError


def metrics_for(engine: Any, run_name: str | None) -> Any:
    """The `Metrics` of `--metrics-port`."""
    try:
        from ledger.observe.metrics import Metrics
    except ImportError:
        raise ConfigError(
            "--metrics-port needs prometheus_client: pip install 'llm-batch-ledger[metrics]'"
        ) from None
    return Metrics(engine, run_name)


def tracing_for(endpoint: str) -> Any:
    """The `Tracing` of `--otlp-endpoint`."""
    try:
        from ledger.observe.traces import Tracing
    except ImportError:
        raise ConfigError(
            "--otlp-endpoint needs OpenTelemetry: pip install 'llm-batch-ledger[otel]'"
        ) from None
    return Tracing(endpoint)


def both(first: Any, second: Any) -> Any:
    """One transition callback calling two."""

    def call_both(*args: Any) -> None:
        first(*args)
        second(*args)

    return call_both
