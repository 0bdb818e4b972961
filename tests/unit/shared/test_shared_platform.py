"""Pure pieces of the platform: tokens, PHI-safe logging, mailbox classification, X12 envelopes, traces."""

import json
import logging
import time
from datetime import datetime
from decimal import Decimal

import pytest

from rcm.cli.trace import render, trace_for
from shared import auth
from shared.logs import JsonFormatter
from shared.mailbox import classify
from shared.x12 import Interchange, X12Error, amount, detect_separators, split_segments


def test_token_round_trip_and_site_scope():
    token = auth.issue("s3cret", "coder-1", "coder", ["north-clinic"])
    p = auth.verify("s3cret", token)
    assert p.user_id == "coder-1" and p.role == "coder"
    assert p.can_access("north-clinic") and not p.can_access("east-hospital")
    assert auth.verify("s3cret", auth.issue("s3cret", "sup", "supervisor", ["*"])).can_access(
        "anything"
    )


@pytest.mark.parametrize("mutate", ["forged", "expired", "garbage"])
def test_bad_tokens_are_refused(mutate):
    if mutate == "forged":
        token = auth.issue("other-secret", "u", "coder", ["x"])
    elif mutate == "expired":
        token = auth.issue("s3cret", "u", "coder", ["x"], ttl_seconds=-10)
    else:
        token = "not-a-token"
    with pytest.raises(auth.TokenError):
        auth.verify("s3cret", token)


def test_log_lines_drop_non_allow_listed_fields():
    rec = logging.LogRecord("t", logging.INFO, __file__, 1, "posted", None, None)
    rec.fields = {"claim_id": "C1", "patient_name": "Ada Zed", "birth_date": "1970-01-02"}
    line = json.loads(JsonFormatter("payments").format(rec))
    assert line["claim_id"] == "C1"
    assert "Ada" not in json.dumps(line) and "1970" not in json.dumps(line)
    assert line["dropped_fields"] == 2


def _interchange(n_tx=2) -> str:
    ic = Interchange(
        "SENDER", "RECEIVER", 42, 7, "HC", "005010X222A1", "837", datetime(2026, 5, 1, 9, 30)
    )
    for _ in range(n_tx):
        tx = ic.new_transaction()
        tx.add("BHT", "0019", "00", "REF1", "20260501", "0930", "CH")
        tx.add(
            "NM1", "41", "2", "RCM", "", "", "", "", "46", "X", "", ""
        )  # trailing empties dropped
    return ic.render()


def test_interchange_counts_and_separators():
    text = _interchange(2)
    segs, seps = split_segments(text)
    ids = [s[0] for s in segs]
    assert ids.count("ST") == 2 and ids.count("SE") == 2
    se = [s for s in segs if s[0] == "SE"]
    assert all(s[1] == "4" for s in se)  # ST, BHT, NM1, SE
    assert segs[-2] == ["GE", "2", "7"] and segs[-1] == ["IEA", "1", "000000042"]
    assert ["NM1", "41", "2", "RCM", "", "", "", "", "46", "X"] in segs
    assert (seps.element, seps.component, seps.repetition, seps.segment) == ("*", ":", "^", "~")


def test_separators_are_read_from_isa_not_assumed():
    text = _interchange(1).replace("*", "|").replace("~", "\n")
    seps = detect_separators(text)
    assert seps.element == "|" and seps.segment == "\n"
    with pytest.raises(X12Error, match="segment 1"):
        detect_separators("ISA*00*short")


def test_amount_formatting():
    assert amount(Decimal("100.00")) == "100"
    assert amount(Decimal("12.50")) == "12.5"
    assert amount(Decimal("0")) == "0"


def test_classify_reads_type_version_and_control_number():
    kind = classify(_interchange(1))
    assert kind.kind == "837" and kind.version == "005010X222A1"
    assert kind.interchange_control_number == "000000042" and kind.sender == "SENDER"
    assert classify("hello world").kind == "unknown"


def test_trace_tree_nests_children_under_parents():
    now = time.time_ns()
    spans = [
        {
            "trace_id": "t",
            "span_id": "a",
            "parent_id": None,
            "name": "coding handle",
            "service": "coding",
            "start": now,
            "end": now + 2_000_000,
            "status": "UNSET",
            "attributes": {"rcm.encounter_id": "E1"},
        },
        {
            "trace_id": "t",
            "span_id": "b",
            "parent_id": "a",
            "name": "publish",
            "service": "coding",
            "start": now + 1_000_000,
            "end": now + 1_500_000,
            "status": "UNSET",
            "attributes": {},
        },
        {
            "trace_id": "u",
            "span_id": "c",
            "parent_id": None,
            "name": "other",
            "service": "billing",
            "start": now,
            "end": now,
            "status": "UNSET",
            "attributes": {"rcm.encounter_id": "E2"},
        },
    ]
    got = trace_for(spans, "E1")
    assert [s["span_id"] for s in got] == ["a", "b"]
    lines = render(got).splitlines()
    assert lines[0].startswith("coding handle") and lines[1].startswith("  publish")


def test_envelope_check_refuses_cut_or_miscounted_files():
    from shared.x12 import check_envelope

    text = _interchange(2)
    segs, _ = split_segments(text)
    check_envelope(segs)  # whole: fine
    with pytest.raises(X12Error, match="expected IEA"):
        check_envelope(segs[:-1])
    with pytest.raises(X12Error, match="expected SE"):
        check_envelope(segs[:5])
    bad = [s if s[0] != "SE" else ["SE", "9", s[2]] for s in segs]
    with pytest.raises(X12Error, match="SE must count"):
        check_envelope(bad)
    with pytest.raises(X12Error, match="GE must count"):
        check_envelope([s if s[0] != "GE" else ["GE", "3", s[2]] for s in segs])


def test_a_started_service_keeps_the_collector_off_what_start_up_built():
    import gc

    from shared.service import _settle_heap

    threshold = gc.get_threshold()
    built_at_start_up = [{"code": str(i)} for i in range(1000)]
    try:
        _settle_heap()
        assert gc.get_freeze_count() >= len(built_at_start_up)  # frozen: full collections skip them
        assert gc.get_threshold()[0] == 10_000
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
