"""Trace sampling: a sampled-out encounter stays sampled out across every hop.

Services continue traces from Kafka headers and from traceparents stored with
claims (mailbox hops); with a parent-based sampler the first service's decision
must be what every later service sees, or traces arrive in pieces.
"""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanKind, StatusCode

from shared.telemetry import (
    EventSpans,
    context_from_headers,
    context_from_traceparent,
    current_traceparent,
)


def _hop(provider: TracerProvider, traceparent: str | None, via_headers: bool):
    ctx = (
        context_from_headers([("traceparent", traceparent.encode())])
        if via_headers and traceparent
        else context_from_traceparent(traceparent)
    )
    span = provider.get_tracer("t").start_span("handle", context=ctx)
    recording, tp = span.is_recording(), current_traceparent(span)
    span.end()
    return recording, tp


def _sampled(traceparent: str) -> bool:
    return bool(int(traceparent.split("-")[3], 16) & 1)  # W3C trace-flags bit 0


def test_a_sampled_out_trace_stays_out_and_keeps_its_trace_id() -> None:
    first = TracerProvider(
        sampler=ParentBased(ALWAYS_OFF)
    )  # the intake service decided: not sampled
    later = TracerProvider(
        sampler=ParentBased(ALWAYS_ON)
    )  # a later service would sample a new root
    recording, tp = _hop(first, None, via_headers=True)
    assert not recording and tp is not None and not _sampled(tp)
    trace_id = tp.split("-")[1]
    for via_headers in (True, False, True):  # Kafka, stored claim traceparent (mailbox), Kafka
        recording, tp = _hop(later, tp, via_headers)
        assert not recording
        assert tp.split("-")[1] == trace_id and not _sampled(tp)


def test_a_sampled_trace_is_recorded_at_every_hop() -> None:
    first = TracerProvider(sampler=ParentBased(ALWAYS_ON))
    later = TracerProvider(
        sampler=ParentBased(ALWAYS_OFF)
    )  # would drop a new root, not a sampled child
    recording, tp = _hop(first, None, via_headers=True)
    assert recording and _sampled(tp)
    for via_headers in (True, False):
        recording, tp = _hop(later, tp, via_headers)
        assert recording and _sampled(tp)


# Event spans (shared.telemetry.EventSpans) skip the SDK's span object; they must decide,
# propagate and export exactly as an SDK span would.


def _event_hop(sampler, traceparent: str | None):
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler)
    spans = EventSpans(provider.sampler, SimpleSpanProcessor(exporter), provider.resource)
    headers = [("traceparent", traceparent.encode())] if traceparent else []
    span = spans.start("billing handle encounter.coded", headers, {"rcm.encounter_id": "E1"})
    span.end()
    return span, exporter.get_finished_spans()


@pytest.mark.parametrize(
    "sampler",
    [
        ParentBased(ALWAYS_ON),
        ParentBased(ALWAYS_OFF),
        ALWAYS_ON,
        ALWAYS_OFF,
        ParentBased(TraceIdRatioBased(0.5)),
        TraceIdRatioBased(0.5),
    ],
)
@pytest.mark.parametrize(
    "parent",
    [
        None,
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
        "00-0000000000000000ffffffffffffffff-00f067aa0ba902b7-03",
    ],
)
def test_an_event_span_decides_and_propagates_as_an_sdk_span_does(sampler, parent) -> None:
    span, exported = _event_hop(sampler, parent)
    assert len(exported) == int(span.recording)
    ours = span.traceparent.split("-")
    if parent is None:  # a new trace: a ratio sampler decides by the (random) trace id
        decision = sampler.should_sample(None, int(ours[1], 16), "x").decision
        assert (
            span.recording == decision.is_recording()
            and _sampled(span.traceparent) == decision.is_sampled()
        )
        assert int(ours[3], 16) & 2  # random-trace-id, as the SDK marks its roots
        return
    recording, tp = _hop(TracerProvider(sampler=sampler), parent, via_headers=True)
    assert span.recording == recording
    sdk = tp.split("-")
    assert ours[3] == sdk[3]  # the same flags: sampled bit and random-trace-id bit
    assert ours[1] == sdk[1] == parent.split("-")[1] and ours[2] != parent.split("-")[2]


def test_an_event_span_is_exported_as_the_child_of_its_message() -> None:
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    span, (exported,) = _event_hop(ParentBased(ALWAYS_ON), parent)
    assert exported.name == "billing handle encounter.coded" and exported.kind is SpanKind.CONSUMER
    assert exported.parent.span_id == int("00f067aa0ba902b7", 16) and exported.parent.is_remote
    assert exported.context.trace_id == int("4bf92f3577b34da6a3ce929d0e0e4736", 16)
    assert f"{exported.context.span_id:016x}" == span.traceparent.split("-")[2]
    assert exported.attributes == {"rcm.encounter_id": "E1"}
    assert (
        exported.start_time <= exported.end_time and exported.status.status_code is StatusCode.UNSET
    )
    _, (root,) = _event_hop(ParentBased(ALWAYS_ON), None)
    assert (
        root.parent is None and root.context.trace_id != exported.context.trace_id
    )  # no traceparent: a new trace


def test_a_failed_event_span_carries_the_error_type() -> None:
    exporter = InMemorySpanExporter()
    spans = EventSpans(ParentBased(ALWAYS_ON), SimpleSpanProcessor(exporter))
    spans.start("payments handle claim.submitted", [], {}).end("ConnectionError")
    (exported,) = exporter.get_finished_spans()
    assert (
        exported.status.status_code is StatusCode.ERROR
        and exported.status.description == "ConnectionError"
    )


def test_without_a_tracing_pipeline_the_message_context_passes_through() -> None:
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    span = EventSpans().start("x", [("traceparent", parent.encode())], {})
    assert span.traceparent == parent and not span.recording and span.link() is None
    assert EventSpans().start("x", [], {}).traceparent is None
