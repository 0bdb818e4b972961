"""Tracing: one tracer provider per service process.

With ``OTEL_EXPORTER_OTLP_ENDPOINT`` set, spans go to an OTLP/HTTP collector
(Jaeger, Tempo, ...). Otherwise they are appended as JSON lines to
``<run dir>/traces/spans.jsonl``, which ``rcm trace`` reads. W3C trace context
travels in Kafka headers (``traceparent``), never in payloads. Span attributes
carry ids only (encounter, claim, event), never PHI.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_propagator = TraceContextTextMapPropagator()


class JsonlSpanExporter(SpanExporter):
    """Append finished spans to a JSON-lines file (one write per batch)."""

    def __init__(self, path: Path, service: str):
        self.path = path
        self.service = service
        path.parent.mkdir(parents=True, exist_ok=True)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = []
        for s in spans:
            ctx = s.get_span_context()
            lines.append(
                json.dumps(
                    {
                        "trace_id": f"{ctx.trace_id:032x}",
                        "span_id": f"{ctx.span_id:016x}",
                        "parent_id": f"{s.parent.span_id:016x}" if s.parent else None,
                        "name": s.name,
                        "service": self.service,
                        "start": s.start_time,
                        "end": s.end_time,
                        "status": s.status.status_code.name,
                        "attributes": dict(s.attributes or {}),
                    },
                    default=str,
                )
            )
        data = ("\n".join(lines) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def setup_tracing(service: str, *, otlp_endpoint: str | None, jsonl_path: Path) -> TracerProvider:
    """Install this process's tracer provider and return it (call once, in app wiring)."""
    provider = TracerProvider(resource=Resource.create({"service.name": f"rcm-{service}"}))
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter: SpanExporter = OTLPSpanExporter(endpoint=otlp_endpoint.rstrip("/") + "/v1/traces")
    else:
        exporter = JsonlSpanExporter(jsonl_path, service)
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=500, max_queue_size=65536,
                                                   max_export_batch_size=2048))
    trace.set_tracer_provider(provider)
    return provider


def tracer(name: str = "rcm") -> trace.Tracer:
    return trace.get_tracer(name)


def context_from_headers(headers: Sequence[tuple[str, bytes]] | None) -> otel_context.Context:
    traceparent = tracestate = None
    for k, v in headers or ():
        if k == "traceparent":
            traceparent = v.decode("latin-1")
        elif k == "tracestate":
            tracestate = v.decode("latin-1")
    if tracestate is None:
        return context_from_traceparent(traceparent)
    return _propagator.extract({"traceparent": traceparent or "", "tracestate": tracestate})


_HEX = frozenset("0123456789abcdef")


def context_from_traceparent(traceparent: str | None) -> otel_context.Context:
    """The context a W3C traceparent continues (an empty context when there is none or it is invalid).

    Version-00 headers, the only ones rcm writes, are read directly: the propagator's regular
    expressions were a tenth of the per-event cost of a consumer. Anything else goes to it.
    """
    if not traceparent:
        return otel_context.Context()
    tp = traceparent
    if (len(tp) != 55 or tp[:3] != "00-" or tp[35] != "-" or tp[52] != "-" or not _HEX.issuperset(tp[3:35])
            or not _HEX.issuperset(tp[36:52]) or not _HEX.issuperset(tp[53:])):  # fmt: skip
        return _propagator.extract({"traceparent": tp})
    trace_id, span_id = int(tp[3:35], 16), int(tp[36:52], 16)
    if not trace_id or not span_id:
        return otel_context.Context()
    parent = trace.SpanContext(trace_id, span_id, is_remote=True, trace_flags=trace.TraceFlags(int(tp[53:], 16)))
    return trace.set_span_in_context(trace.NonRecordingSpan(parent))


def current_traceparent(span: trace.Span | None = None) -> str | None:
    """The W3C traceparent of ``span`` (default: the current span), or None outside any trace."""
    sc = (span if span is not None else trace.get_current_span()).get_span_context()
    if not sc.is_valid:
        return None
    return f"00-{sc.trace_id:032x}-{sc.span_id:016x}-{sc.trace_flags:02x}"
