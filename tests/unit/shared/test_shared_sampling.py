"""Trace sampling: a sampled-out encounter stays sampled out across every hop.

Services continue traces from Kafka headers and from traceparents stored with
claims (mailbox hops); with a parent-based sampler the first service's decision
must be what every later service sees, or traces arrive in pieces.
"""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased

from shared.telemetry import context_from_headers, context_from_traceparent, current_traceparent


def _hop(provider: TracerProvider, traceparent: str | None, via_headers: bool):
    ctx = (context_from_headers([("traceparent", traceparent.encode())]) if via_headers and traceparent
           else context_from_traceparent(traceparent))  # fmt: skip
    span = provider.get_tracer("t").start_span("handle", context=ctx)
    recording, tp = span.is_recording(), current_traceparent(span)
    span.end()
    return recording, tp


def _sampled(traceparent: str) -> bool:
    return bool(int(traceparent.split("-")[3], 16) & 1)  # W3C trace-flags bit 0


def test_a_sampled_out_trace_stays_out_and_keeps_its_trace_id() -> None:
    first = TracerProvider(sampler=ParentBased(ALWAYS_OFF))  # the intake service decided: not sampled
    later = TracerProvider(sampler=ParentBased(ALWAYS_ON))  # a later service would sample a new root
    recording, tp = _hop(first, None, via_headers=True)
    assert not recording and tp is not None and not _sampled(tp)
    trace_id = tp.split("-")[1]
    for via_headers in (True, False, True):  # Kafka, stored claim traceparent (mailbox), Kafka
        recording, tp = _hop(later, tp, via_headers)
        assert not recording
        assert tp.split("-")[1] == trace_id and not _sampled(tp)


def test_a_sampled_trace_is_recorded_at_every_hop() -> None:
    first = TracerProvider(sampler=ParentBased(ALWAYS_ON))
    later = TracerProvider(sampler=ParentBased(ALWAYS_OFF))  # would drop a new root, not a sampled child
    recording, tp = _hop(first, None, via_headers=True)
    assert recording and _sampled(tp)
    for via_headers in (True, False):
        recording, tp = _hop(later, tp, via_headers)
        assert recording and _sampled(tp)
