"""Parsing messages written per the standard: framing, delimiters, escape sequences,
repetitions, components and subcomponents, character sets (MSH-18), Z-segments, and
malformed messages refused with errors that name segment and field, never a value."""

from __future__ import annotations

import pytest

from services.intake.domain.hl7v2 import (
    Hl7Error,
    Hl7Message,
    parse_message,
    parse_messages,
    receive,
    split_messages,
)

MSH = "MSH|^~\\&|EHR|NORTHGATE|RCM|RCM|20260511090000||ADT^A04^ADT_A01|C1|P|2.5.1"
PID = "PID|1||MRN1^^^NORTHGATE^MR~SSN9^^^US^SS||Doe^Jane^Q||19800314|F"


def seg(seg_id: str, values: dict[int, str]) -> str:
    """A segment with each value at its HL7 field number."""
    fields = [""] * (max(values) + 1)
    for n, v in values.items():
        fields[n] = v
    return seg_id + "|" + "|".join(fields[1:])


def one(text: str) -> Hl7Message:
    return parse_message(text)


def obx5(value: str, msh: str = MSH) -> str:
    return one(f"{msh}\r{PID}\rOBX|1|TX|x||{value}").first("OBX").text(5)


@pytest.mark.parametrize(
    ("written", "read"),
    [
        ("a\\F\\b", "a|b"),
        ("a\\S\\b", "a^b"),
        ("a\\T\\b", "a&b"),
        ("a\\R\\b", "a~b"),
        ("a\\E\\b", "a\\b"),
        ("\\X41\\", "A"),
        ("caf\\XC3A9\\", "café"),  # hex bytes in the message's character set (UTF-8 here)
        ("line1\\.br\\line2", "line1\nline2"),
        ("\\H\\bold\\N\\ text", "bold text"),
        ("\\E\\X41\\E\\", "\\X41\\"),  # an escaped escape is text
        ("x\\Zlocal\\y", "xy"),  # local sequences give no text
        ("trailing \\r", "trailing \\r"),  # an unclosed escape character is text
    ],
)
def test_escape_sequences(written, read):
    assert obx5(written) == read


def test_hex_bytes_follow_msh18():
    latin = MSH + "||||||8859/1"
    assert obx5("caf\\XE9\\", latin) == "café"


def test_repetitions_components_subcomponents():
    msg = one(f"{MSH}\r{PID}\rPV1|1|O|FM^101^1^NORTHGATE||||1234^Smith&van^Ann~5678^Lee^Bo")
    pid, pv1 = msg.first("PID"), msg.first("PV1")
    assert pid.get(3) == "MRN1" and pid.get(3, 5, rep=2) == "SS"
    assert [r.get(1) for r in pid.reps(3)] == ["MRN1", "SSN9"]
    assert pid.get(5, 2) == "Jane"
    assert pv1.get(3, 4) == "NORTHGATE"
    assert pv1.get(7, 2, 1) == "Smith" and pv1.get(7, 2, 2) == "van"
    assert pv1.get(7, 2) == "Smith"  # a component read whole gives its first subcomponent
    assert pv1.get(7, 3, rep=2) == "Bo"
    assert pv1.get(99) == "" and pid.get(5, 9) == ""  # absent is empty, never an error


def test_other_delimiters_and_the_null_value():
    msg = one('MSH#*@!%#EHR#F#R#R#20260511##ADT*A08#C9#P#2.3\rPID#1##M1%X*Y##Doe*Ann#""')
    pid = msg.first("PID")
    assert msg.meta.message_type == "ADT" and msg.meta.trigger == "A08"
    assert pid.get(3, 1, 2) == "X" and pid.get(3, 2) == "Y"
    assert pid.get(5, 2) == "Ann" and pid.get(6) == ""  # "" is HL7's null


@pytest.mark.parametrize("terminator", ["\r", "\n", "\r\n"])
def test_any_segment_terminator_and_a_bom(terminator):
    text = "\ufeff" + terminator.join([MSH, PID, "PV1|1|O"]) + terminator
    msg = parse_message(text.encode("utf-8"))
    assert [s.id for s in msg.segments] == ["MSH", "PID", "PV1"]


def test_z_segments_and_unknown_segments_are_kept_by_position_and_ignored():
    msg = one(f"{MSH}\rZPI|1|whatever^x\r{PID}\rROL|1|AD\rZZ1|x")
    assert [(s.id, s.position) for s in msg.segments] == [
        ("MSH", 1),
        ("ZPI", 2),
        ("PID", 3),
        ("ROL", 4),
        ("ZZ1", 5),
    ]
    assert msg.first("ZPI").get(1) == ""  # not parsed: intake never reads it
    assert msg.first("PID").get(5) == "Doe"


def test_a_file_of_messages_with_batch_headers_splits_into_messages():
    msgs = [MSH.replace("C1", f"C{i}") + "\r" + PID for i in (1, 2, 3)]
    text = "FHS|^~\\&|A\nBHS|^~\\&|A\n" + "\n".join(msgs) + "\nBTS|3\nFTS|1\n"
    parsed, problems = parse_messages(text)
    assert problems == []
    assert [m.meta.control_id for m in parsed] == ["C1", "C2", "C3"]
    wrong = split_messages(text.replace("BTS|3", "BTS|5"))
    assert [p.location for p in wrong.problems] == ["BTS-1"]


def test_each_message_of_a_file_is_decoded_by_its_own_msh18():
    latin = (MSH + "||||||8859/1\rPID|1||M||M\xfcller^Ann").encode("latin-1")
    utf8 = (MSH.replace("C1", "C2") + "||||||UNICODE UTF-8\rPID|1||M||M\xfcller^Ann").encode()
    parsed, _ = parse_messages(latin + b"\r" + utf8)
    assert [m.first("PID").get(5) for m in parsed] == ["Müller", "Müller"]


def test_bytes_that_break_the_declared_set_are_read_with_a_warning():
    data = (MSH + "||||||ASCII\rPID|1||M||M\xfcller^Ann").encode("utf-8")
    msg = parse_message(data)
    assert msg.first("PID").get(5) == "Müller"
    assert [(w.location, w.severity) for w in msg.warnings] == [("MSH-18", "W")]
    unknown = parse_message((MSH + "||||||KLINGON\rPID|1").encode())
    assert "not recognised" in unknown.warnings[0].message


def test_utf16_input():
    msg = parse_message(("\ufeff" + MSH + "\r" + PID).encode("utf-16"))
    assert msg.first("PID").get(5, 2) == "Jane"


def test_mllp_frame_bytes_are_tolerated():
    msg = parse_message(b"\x0b" + (MSH + "\r" + PID).encode() + b"\x1c\r")
    assert msg.meta.control_id == "C1"


def test_a_line_that_is_not_a_segment_continues_the_one_before():
    msg = one(f"{MSH}\n{PID}\nOBX|1|TX|x||first line\nsecond line of the same note\nPV1|1|O")
    assert msg.first("OBX").text(5) == "first line\nsecond line of the same note"
    assert [(w.location, w.severity) for w in msg.warnings] == [("line 4", "W")]


def test_header_fields_an_ack_and_the_listener_need():
    m = one(
        "MSH|^~\\&|App^1.2.3^ISO|Fac^9.9^ISO|Rcv|RFac|20260511||DFT^P03^DFT_P03|X-77|T|2.5.1|||AL|NE"
    ).meta
    assert (m.message_type, m.trigger, m.structure, m.control_id) == (
        "DFT",
        "P03",
        "DFT_P03",
        "X-77",
    )
    assert m.sending_application == ("App", "1.2.3", "ISO") and m.facility == "Fac"
    assert (m.processing_id, m.version, m.version_tuple) == ("T", "2.5.1", (2, 5, 1))
    assert (m.accept_ack_type, m.application_ack_type) == ("AL", "NE")


# --------------------------------------------------------------------------- malformed


@pytest.mark.parametrize(
    ("text", "where", "code"),
    [
        ("PID|1||SECRETMRN", "line 1", 100),  # no MSH at all
        ("MSH|^~\\&|A|B|C|D|20260511|||C1|P|2.5", "MSH-9", 101),  # no message type
        ("MSH|^~\\&|A|B|C|D|20260511||ADT^A04||P|2.5", "MSH-10", 101),  # no control id
        ("MSH|^~\\&|A|B|C|D|20260511||ADT^A04|C1|P|3.0", "MSH-12", 203),  # not v2
        ("MSH|^^\\&|A|B|C|D|20260511||ADT^A04|C1|P|2.5", "MSH-2", 102),  # duplicate delimiters
        ("MSH|^~|&|A", "MSH-2", 102),  # two encoding characters
        ("MSHA^~\\&|A", "line 1", 100),  # a letter after MSH: not a segment, so no header
    ],
)
def test_malformed_headers_are_refused_naming_the_field(text, where, code):
    with pytest.raises(Hl7Error) as e:
        parse_message(text + "\r" + PID)
    assert [(p.location, p.code, p.severity) for p in e.value.problems] == [(where, code, "E")]
    received = receive(text + "\r" + PID)
    assert received.ack_code == "AR"
    assert "SECRETMRN" not in str(e.value) and "Doe" not in str(e.value)


def test_several_messages_in_one_frame_are_refused():
    with pytest.raises(Hl7Error, match="expected one message; found 2"):
        parse_message(MSH + "\r" + PID + "\r" + MSH + "\r" + PID)


@pytest.mark.parametrize(
    ("segments", "where", "text"),
    [
        (
            ["EVN|A04", seg("PV1", {1: "1", 19: "V1"})],
            "PID",
            "required segment missing from ADT^A04",
        ),
        ([PID], "PV1", "required segment missing from ADT^A04"),
        ([PID, "PV1|1|O"], "PV1-19", "required: an identifier of the visit"),
    ],
)
def test_missing_required_segments_and_visit_identifiers_are_application_errors(
    segments, where, text
):
    received = receive("\r".join([MSH, *segments]))
    errors = [p for p in received.problems if p.is_error]
    assert [p.location for p in errors] == [where] and text in errors[0].message
    assert received.ack_code == "AE"


def test_bad_field_values_are_warnings_naming_segment_and_field_not_the_value():
    text = "\r".join(
        [
            MSH,
            "PID|1||MRN1^^^N^MR||Doe^Jane||1980-03-14|F|||1 Main St^^Town^Atlantis^1234",
            seg("PV1", {1: "1", 2: "O", 19: "V1", 44: "notadate"}),
            seg("IN1", {1: "1", 2: "P1", 3: "PAYER9", 4: "Payer", 22: "abc"}),
        ]
    )
    received = receive(text)
    assert received.ack_code == "AA"
    found = sorted((p.location, p.position) for p in received.problems)
    assert found == [("IN1-22", 4), ("PID-11.4", 2), ("PID-7", 2), ("PV1-44", 3)]
    for p in received.problems:
        assert p.severity == "W"
        for value in ("1980-03-14", "Atlantis", "notadate", "abc", "1234"):
            assert value not in str(p)
    assert str(received.problems[0]).startswith("PID-7 (segment 2, line 2): expected a birth date")
