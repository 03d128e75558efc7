"""OpenTelemetry traces for `ledger reconcile --otlp-endpoint URL` (the `otel` extra).

Each reconcile pass is one trace: a `reconcile.pass` span whose events are the pass's transitions
(job id, run, from, to), with a child span per provider call (`provider.<method>`, with the
provider's name and, when it raised, the error kind and a scrubbed message). Spans leave through
the OTLP/HTTP exporter, batched on a thread of its own, so a slow collector never slows a pass.

Like the metrics, tracing wraps the engine from outside (a proxy around the providers that
`provider_for` returns, and around `run_pass`): no step knows it is traced. The steps run on a
thread pool, where the pass's context does not follow by itself; the pass span is therefore kept
here and named as the parent of every provider call explicitly.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import Span, Status, StatusCode

from adapters.base import BatchProvider, scrub
from ledger.core.states import State
from ledger.observe.metrics import PROVIDER_METHODS

if TYPE_CHECKING:
    from ledger.reconcile.engine import Reconciler

#: The instrumentation scope every ledger span carries.
TRACER_NAME = "ledger.reconcile"


class TracedProvider:
    """A batch provider whose every call is a span under the current pass."""

    def __init__(self, inner: BatchProvider, tracing: Tracing) -> None:
        self._inner = inner
        self._tracing = tracing

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if name not in PROVIDER_METHODS:
            return attribute
        provider = self._inner.name

        def traced(*args: Any, **kwargs: Any) -> Any:
            with self._tracing.child_span(f"provider.{name}") as span:
                span.set_attribute("ledger.provider", provider)
                span.set_attribute("ledger.method", name)
                try:
                    return attribute(*args, **kwargs)
                except Exception as error:
                    # The message may quote a provider's answer: scrubbed like every error.
                    span.set_attribute("ledger.error_kind", type(error).__name__)
                    span.set_status(Status(StatusCode.ERROR, scrub(str(error), None)))
                    raise

        return traced


class Tracing:
    """One reconciler's tracer, exporting to an OTLP/HTTP endpoint (or any exporter, in tests)."""

    def __init__(self, endpoint: str | None = None, exporter: SpanExporter | None = None) -> None:
        resource = Resource.create(
            {"service.name": "ledger-reconciler", "host.name": socket.gethostname()}
        )
        self.provider = TracerProvider(resource=resource)
        self.provider.add_span_processor(
            BatchSpanProcessor(exporter or OTLPSpanExporter(endpoint=endpoint))
        )
        self.tracer = self.provider.get_tracer(TRACER_NAME)
        self._pass_span: Span | None = None
        self._lock = threading.Lock()

    def child_span(self, name: str) -> Any:
        """A span under the running pass (a root span between passes)."""
        parent = self._pass_span
        context = trace.set_span_in_context(parent) if parent is not None else None
        return self.tracer.start_as_current_span(name, context=context)

    def wrap(
        self, provider_for: Callable[[str, str | None], BatchProvider]
    ) -> Callable[[str, str | None], BatchProvider]:
        """`provider_for` whose providers are traced."""

        def traced_provider_for(name: str, base_url: str | None) -> BatchProvider:
            return cast(BatchProvider, TracedProvider(provider_for(name, base_url), self))

        return traced_provider_for

    def on_transition(self, job_id: int, before: State, after: State) -> None:
        """Each transition, an event on the pass that made it."""
        with self._lock:
            span = self._pass_span
        if span is not None:
            span.add_event(
                "transition",
                {"ledger.job_id": job_id, "ledger.from": str(before), "ledger.to": str(after)},
            )

    def watch(self, reconciler: Reconciler) -> None:
        """Make each of the reconciler's passes a trace."""
        run_pass = reconciler.run_pass

        def traced_pass() -> Any:
            with self.tracer.start_as_current_span("reconcile.pass") as span:
                with self._lock:
                    self._pass_span = span
                try:
                    report = run_pass()
                    span.set_attribute("ledger.claimed", report.claimed)
                    span.set_attribute("ledger.errors", len(report.errors))
                    return report
                finally:
                    with self._lock:
                        self._pass_span = None

        # The loop calls self.run_pass(): tracing it from outside leaves the engine unchanged.
        reconciler.run_pass = traced_pass  # type: ignore[method-assign]

    def close(self) -> None:
        """Send what is still batched, then stop the exporter's thread."""
        self.provider.shutdown()
