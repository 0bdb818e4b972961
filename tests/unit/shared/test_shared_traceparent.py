"""rcm reads W3C traceparents itself (hot path); it must agree with OpenTelemetry's propagator."""

from __future__ import annotations

import random

import pytest
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from shared.telemetry import context_from_headers, context_from_traceparent, current_traceparent

_W3C = TraceContextTextMapPropagator()
VALID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def _reference(traceparent: str | None) -> trace.SpanContext:
    return trace.get_current_span(
        _W3C.extract({"traceparent": traceparent} if traceparent else {})
    ).get_span_context()


def _ours(traceparent: str | None) -> trace.SpanContext:
    return trace.get_current_span(context_from_traceparent(traceparent)).get_span_context()


@pytest.mark.parametrize(
    "traceparent",
    [
        VALID,
        VALID[:-2] + "00",
        None,
        "",
        "garbage",
        VALID.upper(),
        "ff" + VALID[2:],
        VALID[:-1] + "g",
        "00-" + "0" * 32 + "-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-" + "0" * 16 + "-01",
        "01" + VALID[2:] + "-future",
        VALID.replace("-", "_"),
        VALID + " ",
        " " + VALID,
    ],
)
def test_reading_a_traceparent_agrees_with_the_propagator(traceparent) -> None:
    assert _ours(traceparent) == _reference(traceparent)


def test_random_damage_to_a_traceparent_is_read_as_the_propagator_reads_it() -> None:
    rng = random.Random(7)
    alphabet = "0123456789abcdefABCDEF-x "
    for _ in range(3000):
        chars = list(VALID)
        for _ in range(rng.randint(1, 3)):
            chars[rng.randrange(len(chars))] = rng.choice(alphabet)
        damaged = "".join(chars)
        assert _ours(damaged) == _reference(damaged), damaged


def test_writing_the_traceparent_of_a_span_round_trips() -> None:
    ctx = _ours(VALID)
    assert current_traceparent(trace.NonRecordingSpan(ctx)) == VALID
    assert current_traceparent(trace.INVALID_SPAN) is None
    assert current_traceparent() is None  # outside any span


def test_headers_with_a_tracestate_keep_it() -> None:
    headers = [("traceparent", VALID.encode()), ("tracestate", b"vendor=opaque")]
    sc = trace.get_current_span(context_from_headers(headers)).get_span_context()
    assert sc.trace_id == int(VALID[3:35], 16) and sc.trace_state.get("vendor") == "opaque"
    assert (
        trace.get_current_span(context_from_headers([("event_type", b"x")]))
        .get_span_context()
        .is_valid
        is False
    )
