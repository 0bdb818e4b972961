"""The 34 real HL7 v2 messages of the shared corpus (copied byte for byte into
tests/fixtures/realworld/hl7v2 with their licences): every one parses or is refused with an
error naming segment and field, none crashes, and no problem quotes a value."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.intake.domain.hl7v2 import Hl7Message, build_ack, parse_messages, read_file
from services.intake.domain.hl7v2.message import MessageMeta

ROOT = Path(__file__).parents[2] / "fixtures" / "realworld" / "hl7v2"
FILES = sorted(p.relative_to(ROOT).as_posix() for p in ROOT.glob("*/*.hl7"))

# What intake makes of each file: "visit" (a visit is assembled), "ignored" (a message type
# intake does not use: results and orders), or the location of the error that refuses it.
EXPECTED = {
    "cdc-prime-reportstream/Example-hl7-file.hl7": "ignored",  # ORU in an FHS/BHS batch
    "cdc-prime-reportstream/elims_2_52_5068110_35230_NoPII.hl7": "ignored",  # ORU, MSH-2 ^~\&#
    "cdc-trusted-intermediary/001_ADT_A01.hl7": "visit",  # PID-18 account number keys it
    "cdc-trusted-intermediary/002_Epic_ORU_R01.hl7": "ignored",
    # refused: no PV1-19 visit number, no PID-18 account number, no PV1-44 admit date
    "cdc-trusted-intermediary/005_MN_ADT_A01.hl7": "PV1-19",
    # refused: the header has no message type
    "cdc-trusted-intermediary/msh_present_but_missing_msh-9.hl7": "MSH-9",
    "google-healthcare-data-harmonization/adt_a01.hl7": "visit",
    "google-healthcare-data-harmonization/adt_a01_ex1.hl7": "visit",
    "google-healthcare-data-harmonization/adt_a01_ex2.hl7": "visit",
    "google-healthcare-data-harmonization/adt_a04_ex1.hl7": "visit",  # v2.1
    "google-healthcare-data-harmonization/adt_a08_ex1.hl7": "visit",
    "google-healthcare-data-harmonization/orm_o01_ex1.hl7": "ignored",
    "google-healthcare-data-harmonization/oru_r01_ex1.hl7": "ignored",
    "google-healthcare-data-harmonization/oru_r01_ex6.hl7": "ignored",
    "linuxforhealth-hl7v2-fhir-converter/ORU-multiline-short-mixed.hl7": "ignored",
    "linuxforhealth-hl7v2-fhir-converter/ORU-multiline-short.hl7": "ignored",
    "linuxforhealth-hl7v2-fhir-converter/sample_unix.hl7": "visit",  # MSH-2 ^~\\&
    "linuxforhealth-hl7v2-fhir-converter/sample_win.hl7": "visit",  # CRLF
    "ms-fhir-converter/ADT-A01-01.hl7": "visit",
    "ms-fhir-converter/ADT-A04-01.hl7": "visit",
    "ms-fhir-converter/ADT-A04-02.hl7": "visit",
    "ms-fhir-converter/ADT-A08-01.hl7": "visit",
    "ms-fhir-converter/ADT01-23.hl7": "visit",  # UTF-8 BOM
    "ms-fhir-converter/ADT04-23.hl7": "visit",  # UTF-8 BOM
    "ms-fhir-converter/ADT04-28.hl7": "visit",  # UTF-8 BOM
    "ms-fhir-converter/BAR-P01-01.hl7": "visit",
    "ms-fhir-converter/DFT-P03-01.hl7": "visit",
    "ms-fhir-converter/DFT-P03-02.hl7": "visit",
    "ms-fhir-converter/DFT-P11-01.hl7": "visit",
    "ms-fhir-converter/LAB-ORU-1.hl7": "ignored",  # UTF-8 BOM
    "ms-fhir-converter/MDM-T02-01.hl7": "visit",  # ED PDF without data: a warning
    "ms-fhir-converter/MDM-T02-02.hl7": "visit",
    # refused: no PV1-19, no PID-18, no PV1-44 (the MDM names no visit)
    "ms-fhir-converter/MDM-T02-03.hl7": "PV1-19",
    "ms-fhir-converter/ORU-R01-01.hl7": "ignored",  # PRT, a v2.7 segment, in a v2.5.1 message
}


def test_the_corpus_is_all_here():
    assert len(FILES) == 34
    assert sorted(EXPECTED) == FILES


@pytest.mark.parametrize("name", FILES)
def test_every_real_message_parses_or_is_refused_by_segment_and_field(name):
    data = (ROOT / name).read_bytes()
    result = read_file(data)
    assert result.problems == []  # no line outside a message
    assert len(result.steps) == 1
    step = result.steps[0]
    expected = EXPECTED[name]
    if expected == "visit":
        assert step.status in ("waiting", "ready"), [str(p) for p in step.received.problems]
        assert len(result.visits) == 1
    elif expected == "ignored":
        assert step.status == "ignored"
        assert step.received.ack_code == "AA"
        assert result.visits == []
    else:
        assert step.status == "rejected"
        errors = [p for p in step.received.problems if p.is_error]
        assert [p.location for p in errors] == [expected]
        assert step.received.ack_code == ("AR" if expected.startswith("MSH") else "AE")
    # an ACK can be built for every message, and names the control id when there is one
    ack = build_ack(step.received.meta, step.received.ack_code, step.received.problems)
    assert ack.startswith("MSH|^~\\&|") and "\rMSA|" + step.received.ack_code in ack


@pytest.mark.parametrize("name", FILES)
def test_no_problem_quotes_a_value_of_the_message(name):
    data = (ROOT / name).read_bytes().decode("utf-8-sig")
    values = {
        v
        for v in re.split(r"[|^~&\r\n\\]", data)
        if len(v) >= 4 and re.search(r"[A-Za-z0-9]", v) and not re.fullmatch(r"[A-Z0-9]{3}", v)
    }
    result = read_file(data.encode())
    problems = [*result.problems, *(p for s in result.steps for p in s.received.problems)]
    problems += [w for v in result.visits for w in v.warnings]
    for p in problems:
        text = str(p)
        leaked = [v for v in values if v in text and v not in _TEMPLATE_WORDS]
        assert not leaked, (text, leaked)


_TEMPLATE_WORDS = {"segment", "line", "date", "expected", "ZIP+4"}


def test_library_level_parse_of_every_file():
    """python-hl7 reads every message of every file once framed (BOM, LF/CR/CRLF, batch)."""
    parsed = failed = 0
    for name in FILES:
        messages, problems = parse_messages((ROOT / name).read_bytes())
        assert problems == []
        for m in messages:
            if isinstance(m, Hl7Message):
                parsed += 1
                assert m.first("MSH") is not None
            else:
                failed += 1
                assert [p.location for p in m.problems] == ["MSH-9"]
    assert (parsed, failed) == (33, 1)


def test_batch_bom_and_escape_doubling_real_files():
    batch = parse_messages((ROOT / "cdc-prime-reportstream/Example-hl7-file.hl7").read_bytes())[0]
    assert [m.meta.structure for m in batch] == ["ORU_R01"]  # the FHS/BHS/BTS/FTS envelope is gone
    bom = parse_messages((ROOT / "ms-fhir-converter/ADT01-23.hl7").read_bytes())[0][0]
    assert bom.meta.control_id == "599102" and bom.meta.version == "2.3"
    doubled = parse_messages(
        (ROOT / "linuxforhealth-hl7v2-fhir-converter/sample_unix.hl7").read_bytes()
    )[0][0]
    assert [w.location for w in doubled.warnings] == ["MSH-2"]
    assert doubled.first("PID").get(3, 1, rep=2) == "1234568965"  # repetitions still split
    five = parse_messages(
        (ROOT / "cdc-prime-reportstream/elims_2_52_5068110_35230_NoPII.hl7").read_bytes()
    )[0][0]
    assert five.first("PID").get(3, 4, 2) == "2.16.840.1.114222.4.3.3.2.1.1"  # subcomponent


def test_real_adt_with_two_insurances_and_a_self_pay():
    visit = read_file((ROOT / "ms-fhir-converter/ADT01-23.hl7").read_bytes()).visits[0]
    enc = visit.encounter
    assert enc.encounter_id == "40007716" and enc.encounter_class == "IMP"
    assert [(c.sequence, c.payer_name, c.member_id, c.relationship) for c in enc.coverages] == [
        ("primary", "MEDICARE", "123121234A", "self"),
        ("secondary", "MEDICAL MUTUAL CALIF.", "056269770", "self"),
    ]  # IN1 3 is SELF PAY: not a payer
    assert enc.coverages[0].filing_indicator == "MB"
    assert [(d.system, d.code) for d in enc.diagnoses] == [("icd9cm", "71596")]
    assert enc.institutional.type_of_bill == "0111"
    assert enc.institutional.admission_source == "1" and enc.institutional.discharge_status == "01"
    assert visit.guarantor.last_name == "DUCK"
    assert "coverage.payer_id" in visit.missing  # IN1-3 is the sender's id, not a payer id


def test_real_dft_charges_and_spouse_subscriber():
    visit = read_file((ROOT / "ms-fhir-converter/DFT-P03-01.hl7").read_bytes()).visits[0]
    assert [(c.code, c.modifiers, c.units) for c in visit.charges] == [
        ("71045", ["26"], 2),
        ("99011", [], 1),
    ]
    first = visit.charges[0]
    assert first.performed_by.npi == "9941339108"
    assert [d.system for d in first.diagnoses] == ["snomed", "snomed"]
    cov = visit.encounter.coverages[0]
    assert cov.relationship == "spouse" and cov.subscriber.first_name == "Rosallie"
    assert str(cov.subscriber.birth_date) == "1975-02-28"
    assert [p.code for p in visit.encounter.procedures] == ["71045", "99011"]


def test_real_mdm_note_text_and_unreadable_pdf():
    two = read_file((ROOT / "ms-fhir-converter/MDM-T02-02.hl7").read_bytes())
    assert two.steps[0].status == "ready"  # the default rule: a first note
    assert two.visits[0].encounter.note.splitlines() == [
        "Toilet cylinder crackers model step-mother visor opening communication",
        "Columnist draft inn brown income ikebana circulation prince",
    ]
    one = read_file((ROOT / "ms-fhir-converter/MDM-T02-01.hl7").read_bytes())
    assert one.visits[0].encounter.note is None
    assert [w.location for w in one.steps[0].received.problems] == ["OBX-5.5"]


def test_meta_of_a_refused_header_still_acknowledges():
    step = read_file(
        (ROOT / "cdc-trusted-intermediary/msh_present_but_missing_msh-9.hl7").read_bytes()
    ).steps[0]
    assert isinstance(step.received.meta, MessageMeta)
    ack = build_ack(step.received.meta, "AR", step.received.problems)
    assert "MSA|AR|111111\r" in ack and "ERR||MSH^1^9^1|101^Required field missing^HL70357|E" in ack
