"""Tracing: one tracer provider per service process.

With ``OTEL_EXPORTER_OTLP_ENDPOINT`` set, spans go to an OTLP/HTTP collector
(Jaeger, Tempo, ...). Otherwise they are appended as JSON lines to
``<run dir>/traces/spans.jsonl``, which ``rcm trace`` reads. With a Zipkin endpoint
(``OTEL_EXPORTER_ZIPKIN_ENDPOINT``, e.g. the viewer ``rcm stack up --traces`` starts) they
also go to Zipkin, whose UI shows each encounter's trace. W3C trace context
travels in Kafka headers (``traceparent``), never in payloads. Span attributes
carry ids only (encounter, claim, event), never PHI.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import (
    ReadableSpan,
    SpanLimits,
    SpanProcessor,
    SynchronousMultiSpanProcessor,
    TracerProvider,
)
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ParentBased, Sampler
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from shared.settings import MAX_BATCH_RECORDS

_log = logging.getLogger("rcm.telemetry")
_propagator = TraceContextTextMapPropagator()
_encode = json.JSONEncoder(
    default=str, separators=(",", ":")
).encode  # one encoder, not one per call


class JsonlSpanExporter(SpanExporter):
    """Append finished spans to a JSON-lines file (one write per batch)."""

    def __init__(self, path: Path, service: str):
        self.path = path
        self.service = service
        path.parent.mkdir(parents=True, exist_ok=True)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        service = _encode(self.service)
        lines = []
        for s in spans:
            ctx, parent = s.context, s.parent
            # Batch spans link to the event spans they applied (`rcm trace` follows them).
            links = (
                ',"links":[' + ",".join(f'"{link.context.span_id:016x}"' for link in s.links) + "]"
                if s.links
                else ""
            )
            # Written out directly: one json.dumps of a dict per span cost twice as much.
            parent_id = f'"{parent.span_id:016x}"' if parent else "null"
            lines.append(
                f'{{"trace_id":"{ctx.trace_id:032x}","span_id":"{ctx.span_id:016x}",'
                f'"parent_id":{parent_id},"name":{_encode(s.name)},'
                f'"service":{service},"start":{s.start_time},"end":{s.end_time},'
                f'"status":"{s.status.status_code.name}","attributes":{_encode(dict(s.attributes or {}))}{links}}}'
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


class ZipkinSpanExporter(SpanExporter):
    """OpenTelemetry's Zipkin (JSON v2) exporter; a viewer that is away loses those spans with
    one warning, not a traceback per export (the JSON lines or OTLP keep them all)."""

    def __init__(self, endpoint: str):
        from opentelemetry.exporter.zipkin.json import ZipkinExporter

        self.endpoint = endpoint
        self._exporter = ZipkinExporter(endpoint=endpoint, timeout=5)
        self._warned = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self._exporter.export(spans)
        except OSError as e:  # requests' errors are OSErrors: connection refused, timeout
            if not self._warned:
                self._warned = True
                _log.warning(
                    "Zipkin at %s unreachable (%s); its spans are dropped until it answers",
                    self.endpoint,
                    type(e).__name__,
                )
            return SpanExportResult.FAILURE
        self._warned = False
        return result

    def shutdown(self) -> None:
        self._exporter.shutdown()


def setup_tracing(
    service: str,
    *,
    otlp_endpoint: str | None,
    jsonl_path: Path,
    zipkin_endpoint: str | None = None,
) -> TracerProvider:
    """Install this process's tracer provider and return it (call once, in app wiring).

    Spans go to OTLP (``otlp_endpoint``) or else the JSON-lines file, and also to Zipkin's
    span API when ``zipkin_endpoint`` is given (``http://host:9411/api/v2/spans``; None: the
    OpenTelemetry variable ``OTEL_EXPORTER_ZIPKIN_ENDPOINT``, as OTel's exporters read it).
    """
    global _event_spans
    # A batch span links every event it applied (at most RCM_CONSUMER_MAX_RECORDS).
    provider = TracerProvider(
        resource=Resource.create({"service.name": f"rcm-{service}"}),
        span_limits=SpanLimits(max_links=MAX_BATCH_RECORDS),
    )
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter: SpanExporter = OTLPSpanExporter(endpoint=otlp_endpoint.rstrip("/") + "/v1/traces")
    else:
        exporter = JsonlSpanExporter(jsonl_path, service)
    exporters = [exporter]
    if zipkin_endpoint:
        exporters.append(ZipkinSpanExporter(zipkin_endpoint))
    batches = [
        BatchSpanProcessor(
            e, schedule_delay_millis=500, max_queue_size=65536, max_export_batch_size=2048
        )
        for e in exporters
    ]
    processor: SpanProcessor = batches[0]
    if len(batches) > 1:
        processor = SynchronousMultiSpanProcessor()
        for b in batches:
            processor.add_span_processor(b)
    provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    _event_spans = EventSpans(provider.sampler, processor, provider.resource)
    return provider


class EventSpan:
    """The span of one consumed event's handling, continuing the event's trace.

    ``traceparent`` is what the handler's own spans and the events it emits continue from.
    """

    __slots__ = (
        "_factory",
        "name",
        "trace_id",
        "span_id",
        "flags",
        "trace_state",
        "parent",
        "attributes",
        "start_time",
        "recording",
    )

    def __init__(
        self,
        factory: EventSpans,
        name: str,
        ids: tuple[int, int, int],
        trace_state,
        parent: SpanContext | None,
        attributes: Mapping[str, str | int],
        recording: bool,
    ):
        self._factory = factory
        self.name = name
        self.trace_id, self.span_id, self.flags = (
            ids  # kept as ints: a SpanContext is built only if recorded
        )
        self.trace_state = trace_state
        self.parent = parent
        self.attributes = attributes
        self.recording = recording
        self.start_time = time.time_ns()

    @property
    def traceparent(self) -> str | None:
        if not self.trace_id:
            return None
        return f"00-{self.trace_id:032x}-{self.span_id:016x}-{self.flags:02x}"

    @property
    def context(self) -> SpanContext:
        return SpanContext(
            self.trace_id,
            self.span_id,
            is_remote=False,
            trace_flags=TraceFlags(self.flags),
            trace_state=self.trace_state,
        )

    def link(self) -> trace.Link | None:
        return trace.Link(self.context) if self.recording else None

    def end(self, error: str | None = None) -> None:
        """Finish the span; ``error`` (an exception type name) marks it failed."""
        if self.recording:
            self._factory.finish(self, error)


class EventSpans:
    """Makes the per-event consumer spans: ten or so per encounter across the services.

    The SDK's span object (a lock, bounded attribute/event/link lists, a sampler call,
    attribute validation) costs 35-50 us to start and end, about a tenth of a consumer's
    CPU at these rates. An event span needs only ids, times, a status and a few id
    attributes, so it is handed to the span processor already finished, as the same
    ``ReadableSpan`` the SDK's spans end as: exporters cannot tell them apart.

    Sampling matches the SDK's: with the default parent-based samplers (every value of
    ``OTEL_TRACES_SAMPLER`` named ``parentbased_*``) a child follows its parent's sampled
    flag; without a parent, or with another sampler, the provider's sampler decides.
    Without a tracing pipeline (tests, tools) the event's own context passes through.
    """

    def __init__(
        self,
        sampler: Sampler | None = None,
        processor: SpanProcessor | None = None,
        resource: Resource | None = None,
    ):
        self.sampler = sampler
        self.processor = processor
        self.resource = resource or Resource.get_empty()
        # Version "" as the SDK gives its own tracers (None is a null tag Zipkin refuses).
        self.scope = InstrumentationScope("rcm", "")
        self._follow_parent = isinstance(sampler, ParentBased)

    def start(
        self,
        name: str,
        headers: Sequence[tuple[str, bytes]] | None,
        attributes: Mapping[str, str | int],
    ) -> EventSpan:
        parent = parent_from_headers(headers)
        if (
            self.processor is None or self.sampler is None
        ):  # no pipeline: the message's context passes through
            ids = (
                (parent.trace_id, parent.span_id, parent.trace_flags)
                if parent is not None
                else (0, 0, 0)
            )
            return EventSpan(self, name, ids, None, parent, attributes, recording=False)
        if parent is not None and self._follow_parent:
            trace_id, sampled = parent.trace_id, parent.trace_flags.sampled
            recording, trace_state = sampled, parent.trace_state
        else:
            trace_id = parent.trace_id if parent is not None else random.getrandbits(128) or 1
            ctx = (
                trace.set_span_in_context(trace.NonRecordingSpan(parent))
                if parent is not None
                else None
            )
            result = self.sampler.should_sample(ctx, trace_id, name, SpanKind.CONSUMER, attributes)
            sampled, recording = result.decision.is_sampled(), result.decision.is_recording()
            trace_state = result.trace_state
        # As the SDK sets them: the sampled bit, and the random-trace-id bit a root's random id earns.
        random_id = parent.trace_flags.random_trace_id if parent is not None else True
        flags = (TraceFlags.SAMPLED if sampled else 0) | (
            TraceFlags.RANDOM_TRACE_ID if random_id else 0
        )
        ids = (trace_id, random.getrandbits(64) or 1, flags)
        return EventSpan(self, name, ids, trace_state, parent, attributes, recording)

    def finish(self, span: EventSpan, error: str | None) -> None:
        status = Status(StatusCode.ERROR, error) if error else _UNSET
        self.processor.on_end(
            ReadableSpan(
                name=span.name,
                context=span.context,
                parent=span.parent,
                resource=self.resource,
                attributes=span.attributes,
                kind=SpanKind.CONSUMER,
                instrumentation_scope=self.scope,
                status=status,
                start_time=span.start_time,
                end_time=time.time_ns(),
            )
        )


_UNSET = Status(StatusCode.UNSET)
_event_spans = EventSpans()


def event_spans() -> EventSpans:
    """This process's event span factory (set up by ``setup_tracing``)."""
    return _event_spans


def tracer(name: str = "rcm") -> trace.Tracer:
    return trace.get_tracer(name)


def context_from_headers(headers: Sequence[tuple[str, bytes]] | None) -> otel_context.Context:
    parent = parent_from_headers(headers)
    return (
        trace.set_span_in_context(trace.NonRecordingSpan(parent))
        if parent
        else otel_context.Context()
    )


def parent_from_headers(headers: Sequence[tuple[str, bytes]] | None) -> SpanContext | None:
    """The span context a message's W3C trace headers continue (None when absent or invalid)."""
    traceparent = tracestate = None
    for k, v in headers or ():
        if k == "traceparent":
            traceparent = v.decode("latin-1")
        elif k == "tracestate":
            tracestate = v.decode("latin-1")
    if tracestate is None:
        return parent_from_traceparent(traceparent)
    ctx = _propagator.extract({"traceparent": traceparent or "", "tracestate": tracestate})
    return _valid(trace.get_current_span(ctx).get_span_context())


_HEX = frozenset("0123456789abcdef")


def context_from_traceparent(traceparent: str | None) -> otel_context.Context:
    """The context a W3C traceparent continues (an empty context when there is none or it is invalid)."""
    parent = parent_from_traceparent(traceparent)
    return (
        trace.set_span_in_context(trace.NonRecordingSpan(parent))
        if parent
        else otel_context.Context()
    )


def parent_from_traceparent(traceparent: str | None) -> SpanContext | None:
    """The span context of a W3C traceparent (None when there is none or it is invalid).

    Version-00 headers, the only ones rcm writes, are read directly: the propagator's regular
    expressions were a tenth of the per-event cost of a consumer. Anything else goes to it.
    """
    if not traceparent:
        return None
    tp = traceparent
    if (
        len(tp) != 55
        or tp[:3] != "00-"
        or tp[35] != "-"
        or tp[52] != "-"
        or not _HEX.issuperset(tp[3:35])
        or not _HEX.issuperset(tp[36:52])
        or not _HEX.issuperset(tp[53:])
    ):
        return _valid(
            trace.get_current_span(_propagator.extract({"traceparent": tp})).get_span_context()
        )
    trace_id, span_id = int(tp[3:35], 16), int(tp[36:52], 16)
    if not trace_id or not span_id:
        return None
    return SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(int(tp[53:], 16)))


def _valid(sc: SpanContext) -> SpanContext | None:
    return sc if sc.is_valid else None


def current_traceparent(span: trace.Span | None = None) -> str | None:
    """The W3C traceparent of ``span`` (default: the current span), or None outside any trace."""
    sc = (span if span is not None else trace.get_current_span()).get_span_context()
    if not sc.is_valid:
        return None
    return f"00-{sc.trace_id:032x}-{sc.span_id:016x}-{sc.trace_flags:02x}"
