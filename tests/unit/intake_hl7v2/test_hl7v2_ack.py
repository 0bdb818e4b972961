"""ACKs: MSH + MSA, with ERR naming segment, sequence, field and HL7 error code (v2.5+), or
MSA-3 text and ERR-1 (v2.3 style); each ACK parses back with python-hl7."""

from __future__ import annotations

from datetime import UTC, datetime

import hl7
import pytest

from services.intake.domain.hl7v2 import Hl7Problem, MessageMeta, build_ack, receive

NOW = datetime(2026, 5, 11, 9, 30, tzinfo=UTC)
META = MessageMeta(
    control_id="ADT-77",
    sending_application=("REGADT",),
    sending_facility=("NORTHGATE", "2.16.840.1.113883.3.999", "ISO"),
    receiving_application=("RCM",),
    receiving_facility=("RCM-INTAKE",),
    message_type="ADT",
    trigger="A04",
    structure="ADT_A01",
    processing_id="P",
    version="2.5.1",
)
DOB = Hl7Problem(
    "expected a birth date (YYYYMMDD)", "PID", 7, code=102, severity="W", position=3, occurrence=1
)
NO_PV1 = Hl7Problem("required segment missing from ADT^A04", "PV1", code=100)


def test_accept_with_a_warning_v251():
    ack = build_ack(META, "AA", [DOB], now=NOW)
    assert ack.split("\r") == [
        "MSH|^~\\&|RCM|RCM-INTAKE|REGADT|NORTHGATE^2.16.840.1.113883.3.999^ISO|20260511093000||"
        "ACK^A04^ACK|AADT-77|P|2.5.1",
        "MSA|AA|ADT-77",
        "ERR||PID^1^7^1|102^Data type error^HL70357|W|||PID-7: expected a birth date (YYYYMMDD)",
        "",
    ]
    parsed = hl7.parse(ack)
    assert str(parsed.segment("MSA")(2)) == "ADT-77"
    assert str(parsed.segment("ERR")(2)(1)(3)) == "7"


def test_error_v251_names_segment_sequence_and_code():
    ack = build_ack(META, "AE", [NO_PV1], control_id="ACK1", now=NOW)
    assert "\rMSA|AE|ADT-77\r" in ack
    assert "\rERR||PV1^1|100^Segment sequence error^HL70357|E|||PV1: required segment" in ack
    assert "|ACK1|" in ack


def test_v23_style_msa3_text_and_err1():
    meta = MessageMeta(control_id="C9", message_type="ADT", trigger="A08", version="2.3")
    ack = build_ack(
        meta, "AE", [DOB, Hl7Problem("required: the visit number", "PV1", 19, code=101)], now=NOW
    )
    lines = ack.split("\r")
    assert lines[0].endswith("|ACK^A08|AC9|P|2.3")  # no message structure before 2.3.1
    assert lines[1] == "MSA|AE|C9|PV1-19: required: the visit number"  # warnings stay out
    assert lines[2] == "ERR|PV1^1^19^101&Required field missing&HL70357"


def test_v21_message_type_and_long_text_cut_to_80():
    meta = MessageMeta(control_id="C1", message_type="ADT", trigger="A04", version="2.1")
    many = [Hl7Problem("required: " + "x" * 30, "PID", n, code=101) for n in (3, 5, 7)]
    msa = build_ack(meta, "AE", many, now=NOW).split("\r")[1]
    assert msa.startswith("MSA|AE|C1|PID-3: required") and len(msa.split("|")[3]) == 80
    assert build_ack(meta, now=NOW).split("\r")[0].endswith("|ACK|AC1|P|2.1")


def test_values_are_escaped_and_charset_echoed():
    meta = MessageMeta(
        control_id="A|B",
        sending_facility=("F^1",),
        message_type="MDM",
        trigger="T02",
        version="2.8",
        charset="UNICODE UTF-8",
    )
    ack = build_ack(meta, "AA", now=NOW)
    assert "|F\\S\\1|" in ack and "MSA|AA|A\\F\\B" in ack
    assert ack.split("\r")[0].endswith("|2.8||||||UNICODE UTF-8")


def test_unreadable_header_still_gets_an_ack():
    received = receive(b"garbage that is not HL7")
    assert received.meta is None and received.ack_code == "AR"
    ack = build_ack(received.meta, received.ack_code, received.problems, now=NOW)
    assert ack.split("\r")[1] == "MSA|AR"
    assert "ERR|||100^Segment sequence error^HL70357|E|||line 1: expected an MSH segment" in ack


def test_unknown_ack_code_is_refused():
    with pytest.raises(ValueError, match="ACK code"):
        build_ack(META, "OK")
