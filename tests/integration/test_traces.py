"""`ledger reconcile --otlp-endpoint URL`: OpenTelemetry traces over OTLP/HTTP, read back by a
collector on 127.0.0.1 and decoded with OpenTelemetry's own protobuf definitions."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from support.drivers import reconcile_process
from support.factories import add_built_job

from ledger.core.db import open_ledger


class Collector:
    """An OTLP/HTTP trace receiver: keeps every export request's raw body."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        bodies = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                bodies.append(self.rfile.read(length))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1/traces"

    def spans(self) -> list[Any]:
        found = []
        for body in self.bodies:
            request = ExportTraceServiceRequest.FromString(body)
            for resource_spans in request.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    found.extend(scope_spans.spans)
        return found


@pytest.fixture
def collector() -> Iterator[Collector]:
    running = Collector()
    thread = threading.Thread(target=running.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield running
    finally:
        running.server.shutdown()
        running.server.server_close()


def attributes(span: Any) -> dict[str, Any]:
    return {item.key: _value(item.value) for item in span.attributes}


def _value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


def test_each_pass_is_a_trace_with_its_transitions_and_provider_calls(
    tmp_path: Path, emulator: Any, api_key: str, collector: Collector
) -> None:
    """Every span reaches the collector before the command exits: a `reconcile.pass` per pass
    whose events are the job's transitions, and a `provider.<method>` child per provider call
    in the same trace; the key appears in no exported byte."""
    db = tmp_path / "ledger.db"
    engine = open_ledger(db)
    job_id = add_built_job(engine, tmp_path, "r", ["a", "b"])
    engine.dispose()

    result = reconcile_process(
        db, emulator.base_url, "--until-done", "--otlp-endpoint", collector.url, env={}
    )

    assert result.returncode == 0, result.stderr
    spans = collector.spans()
    passes = [span for span in spans if span.name == "reconcile.pass"]
    calls = [span for span in spans if span.name.startswith("provider.")]
    assert passes and calls
    moves = [
        (attributes(event)["ledger.from"], attributes(event)["ledger.to"])
        for span in passes
        for event in span.events
        if event.name == "transition" and attributes(event)["ledger.job_id"] == job_id
    ]
    assert moves[0] == ("built", "uploaded")
    assert moves[-1] == ("downloaded", "normalized")
    methods = {attributes(span)["ledger.method"] for span in calls}
    assert {"upload_input", "create_batch", "get_batch", "download_file"} <= methods
    assert {attributes(span)["ledger.provider"] for span in calls} == {"openai"}
    pass_ids = {(span.trace_id, span.span_id) for span in passes}
    assert all((span.trace_id, span.parent_span_id) in pass_ids for span in calls)
    assert not any(api_key.encode() in body for body in collector.bodies)


def test_a_failing_provider_call_is_an_error_span_with_its_kind(
    tmp_path: Path, api_key: str, collector: Collector
) -> None:
    """A provider that cannot be reached: the call's span has status ERROR and the error's kind."""
    db = tmp_path / "ledger.db"
    engine = open_ledger(db)
    add_built_job(engine, tmp_path, "r", ["a"])
    engine.dispose()

    reconcile_process(db, "http://127.0.0.1:9/v1", "--otlp-endpoint", collector.url, env={})

    failed = [span for span in collector.spans() if span.status.code == 2]
    assert failed, "no error span"
    assert attributes(failed[0])["ledger.method"] == "upload_input"
    assert attributes(failed[0])["ledger.error_kind"]
