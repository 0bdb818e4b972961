"""A visit's messages become ONE encounter: ADT^A04 (patient, guarantor, two coverages in
coordination-of-benefits order), MDM^T02 (the note) and DFT^P03 (charges, diagnoses), in
v2.3, v2.5.1 and v2.8; readiness per site; late messages as updates."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from services.intake.domain.hl7v2 import (
    Hl7Rules,
    VisitAssembler,
    parse_readiness,
    parse_site_map,
    parse_visit_keys,
    read_file,
)
from services.intake.domain.hl7v2.rules import Readiness, RulesError
from tests.unit.intake_hl7v2.hl7v2_support import MESSAGES, msh, registry, rules, seg

V251 = [MESSAGES / f"visit_v251_{n}.hl7" for n in ("adt_a04", "mdm_t02", "dft_p03")]


def assert_full_visit(visit, encounter_id: str, mrn: str, service_date: date):
    enc = visit.encounter
    assert enc.encounter_id == encounter_id and enc.site_id == "north-clinic"
    assert enc.service_date == service_date and enc.encounter_class == "AMB"
    assert enc.place_of_service == "11" and enc.visit_type == "established"
    assert enc.billing_provider.npi == "1245873900" and enc.billing_provider.tax_id == "814203377"
    assert (enc.rendering_provider.npi, enc.rendering_provider.last_name) == (
        "1538204672",
        "Marchetti",
    )
    p = enc.patient
    assert (p.patient_id, p.first_name, p.last_name, p.gender) == (mrn, "Harriet", "Quinlan", "F")
    assert p.birth_date == date(1980, 3, 14)
    assert (p.address.line1, p.address.line2, p.address.state, p.address.postal_code) == (
        "1412 Larkspur Lane", "Apt 2", "OH", "43215",
    )  # fmt: skip
    # IN1 set 2 says IN1-22 = 1: the patient's own plan is primary, the spouse's secondary
    primary, secondary = enc.coverages
    assert (primary.sequence, primary.payer_id, primary.member_id, primary.relationship) == (
        "primary", "AETNA1", "W123456789", "self",
    )  # fmt: skip
    assert (primary.group_number, primary.filing_indicator) == ("GRP-1200", "CI")
    assert enc.prior_authorization == "PA-55821"  # IN1-14 of the primary
    assert (secondary.sequence, secondary.payer_id, secondary.member_id) == (
        "secondary", "BCBS01", "BLX998877",
    )  # fmt: skip
    assert secondary.relationship == "spouse" and secondary.filing_indicator == "BL"
    sub = secondary.subscriber
    assert (sub.first_name, sub.last_name, sub.birth_date, sub.gender) == (
        "Ronan", "Quinlan", date(1978, 7, 22), "M",
    )  # fmt: skip
    assert enc.note.splitlines()[0] == "CC: right ankle injury"
    assert "rest, ice & elevation" in enc.note  # \T\ decoded, \.br\ as line breaks
    assert len(enc.note.splitlines()) == 6
    assert [(d.system, d.code) for d in enc.diagnoses] == [
        ("icd10cm", "S93.401A"),
        ("snomed", "44465007"),
    ]
    assert [(x.system, x.code) for x in enc.procedures] == [("cpt", "99213"), ("cpt", "73610")]
    assert [(c.code, c.modifiers, c.units) for c in visit.charges] == [
        ("99213", [], Decimal(1)),
        ("73610", ["RT"], Decimal(1)),
    ]
    assert visit.guarantor.last_name == "Quinlan"
    assert visit.referring.npi == "1603948252"
    assert visit.missing == [] and visit.warnings == []


def test_v251_adt_mdm_dft_one_encounter_released_when_note_and_charges_are_in():
    asm = VisitAssembler(rules(), registry=registry())
    steps = [asm.add(p.read_bytes()) for p in V251]
    assert [s.status for s in steps] == ["waiting", "waiting", "ready"]
    assert [s.awaiting for s in steps[:2]] == [["charges", "note"], ["charges"]]
    assert {s.received.visit_key for s in steps} == {"north-clinic|PV1-19|V20260511-01"}
    assert all(s.received.ack_code == "AA" and s.received.problems == [] for s in steps)
    assert_full_visit(steps[-1].visit, "V20260511-01", "MRN10001", date(2026, 5, 11))
    assert len(asm.visits()) == 1


@pytest.mark.parametrize(
    ("name", "encounter_id", "mrn", "day"),
    [
        (
            "visit_v23.hl7",
            "V20260512-07",
            "MRN20002",
            date(2026, 5, 12),
        ),  # LF, MSH-9 without structure
        ("visit_v28.hl7", "V20260513-03", "MRN30003", date(2026, 5, 13)),  # CRLF, MSH-2 ^~\&#
        ("batch_v251.hl7", "V20260511-01", "MRN10001", date(2026, 5, 11)),  # FHS/BHS batch
    ],
)
def test_the_same_visit_in_other_versions_and_framings(name, encounter_id, mrn, day):
    result = read_file((MESSAGES / name).read_bytes(), rules(), registry=registry())
    assert result.problems == []
    assert [s.status for s in result.steps] == ["waiting", "waiting", "ready"]
    (visit,) = result.visits
    assert_full_visit(visit, encounter_id, mrn, day)


def test_messages_in_any_order_make_the_same_encounter():
    forward = VisitAssembler(rules(), registry=registry())
    backward = VisitAssembler(rules(), registry=registry())
    for p in V251:
        forward.add(p.read_bytes())
    steps = [backward.add(p.read_bytes()) for p in reversed(V251)]
    # charges, then the note: ready (the rule asks no registration); the ADT then updates it
    assert [s.status for s in steps] == ["waiting", "ready", "update"]
    assert backward.visits()[0].encounter == forward.visits()[0].encounter


def test_resent_and_late_messages():
    asm = VisitAssembler(rules(), registry=registry())
    for p in V251:
        asm.add(p.read_bytes())
    again = asm.add(V251[1].read_bytes())  # the same MSH-10 from the same facility
    assert again.status == "unchanged"
    late = V251[0].read_text().replace("ADT-V20260511-01", "ADT-LATE").replace("ADT^A04", "ADT^A08")
    late = late.replace("Apt 2^Maple Falls", "Apt 9^Maple Falls")
    step = asm.add(late)
    assert step.status == "update"  # released already: the service versions or corrects it
    assert step.visit.encounter.patient.address.line2 == "Apt 9"
    same = asm.add(late.replace("ADT-LATE", "ADT-LATE-2"))
    assert same.status == "unchanged"  # a new message that changes nothing


# --------------------------------------------------------------------------- hospitals


def hospital_messages(visit_no: str = "H1"):
    pid = seg("PID", {1: "1", 3: "M9^^^N^MR", 5: "Roe^Ann", 7: "19600101", 8: "F",
                      11: "9 Elm St^^Ashford^OH^45202"})  # fmt: skip
    pv1 = seg("PV1", {1: "1", 2: "I", 3: "4W^401^A^EASTBROOK", 4: "E", 7: "1159283740^Brennan^Olivia^^^^^^^^^^NPI",
                      14: "7", 19: visit_no, 36: "01", 44: "202605100800"})  # fmt: skip
    discharged = pv1.replace("|202605100800", "|202605100800|202605121000")
    adt = [msh("ADT^A01^ADT_A01", "A1"), "EVN|A01", pid, pv1]
    mdm = [msh("MDM^T02^MDM_T02", "M1"), "EVN|T02", pid, pv1,
           seg("TXA", {1: "1", 2: "DS", 3: "TX", 4: "202605121000", 12: "D1", 17: "DO"}),
           seg("OBX", {1: "1", 2: "TX", 5: "Discharge summary: community acquired pneumonia."})]  # fmt: skip
    signed = [m.replace("|DO", "|LA").replace("|M1|", "|M2|").replace("T02", "T04") for m in mdm]
    a03 = [msh("ADT^A03^ADT_A03", "A3"), "EVN|A03", pid, discharged]
    return ["\r".join(m) for m in (adt, mdm, signed, a03)]


def test_hospital_rule_waits_for_discharge_and_a_signed_note():
    hospital = Hl7Rules(
        facilities={"EASTBROOK": "east-hospital"},
        site_readiness={"east-hospital": parse_readiness("hospital")},
    )
    asm = VisitAssembler(hospital, registry=registry())
    adt, mdm, signed, a03 = hospital_messages()
    assert asm.add(adt).awaiting == ["discharge", "signed_note"]
    assert asm.add(mdm).awaiting == ["discharge", "signed_note"]  # dictated, not signed
    assert asm.add(signed).awaiting == ["discharge"]  # TXA-17 LA: legally authenticated
    step = asm.add(a03)
    assert step.status == "ready"
    enc = step.visit.encounter
    assert enc.encounter_class == "IMP" and enc.place_of_service == "21"
    assert (enc.service_date, enc.end_date) == (date(2026, 5, 10), date(2026, 5, 12))
    inst = enc.institutional
    assert (inst.type_of_bill, inst.admission_date, inst.admission_type) == (
        "0111",
        date(2026, 5, 10),
        "1",
    )
    assert (inst.admission_source, inst.discharge_status) == ("7", "01")
    assert inst.attending.last_name == "Brennan"
    assert enc.note == "Discharge summary: community acquired pneumonia."  # the signed version


def test_a_clinic_with_the_same_messages_releases_at_the_first_note():
    asm = VisitAssembler(Hl7Rules(facilities={"EASTBROOK": "east-hospital"}), registry=registry())
    adt, mdm, *_ = hospital_messages()
    assert asm.add(adt).status == "waiting"
    assert asm.add(mdm).status == "ready"


def test_cancelled_visit_and_cancelled_document():
    asm = VisitAssembler(rules("note"), registry=registry())
    adt, mdm, *_ = hospital_messages()
    asm.add(adt)
    a11 = adt.replace("ADT^A01^ADT_A01|A1", "ADT^A11^ADT_A09|A11").replace("EVN|A01", "EVN|A11")
    assert asm.add(a11).status == "waiting"
    step = asm.add(mdm)
    assert step.visit.cancelled and step.status == "waiting"
    t11 = mdm.replace("MDM^T02^MDM_T02|M1", "MDM^T11^MDM_T01|M11")
    assert asm.add(t11).visit.encounter.note is None


def test_charge_credits_take_back_units():
    asm = VisitAssembler(rules("charges"), registry=registry())
    dft = V251[2].read_text()
    asm.add(dft.replace("|1|||||||||S93", "|3|||||||||S93", 1))
    credit = dft.replace("DFT-V20260511-01", "DFT-CREDIT").replace("TX-V20260511-01-1", "TX-C1")
    credit = credit.replace("|CG|99213", "|CD|99213").replace("\rFT1|2|", "\rZX1|2|")
    visit = asm.add(credit).visit
    assert [(c.code, c.units) for c in visit.charges] == [
        ("99213", Decimal(2)),
        ("73610", Decimal(1)),
    ]


def test_missing_billing_data_is_listed_not_an_error():
    asm = VisitAssembler()  # no registry, no facility map, the default (first note) rule
    steps = [asm.add(p.read_bytes()) for p in V251]
    assert steps[1].status == "ready"
    visit = steps[-1].visit
    assert visit.site_id == "unassigned"
    assert visit.missing == [
        "site_id",
        "billing_provider.name",
        "billing_provider.npi",
        "billing_provider.tax_id",
        "billing_provider.address",
        "coverage.payer_id",
    ]
    assert visit.encounter.coverages[0].payer_id == "AETNA1"  # the sender's id stands in


def test_visit_key_fallback_and_a_visit_without_a_date_yet():
    asm = VisitAssembler(rules("note"), registry=registry())
    pid = "PID|1||M7^^^N^MR||Poe^Al||19700101|M"
    pv1 = seg("PV1", {1: "1", 2: "O", 44: "20260501"})
    first = asm.add("\r".join([msh("ADT^A04", "K1"), pid, pv1]))
    assert first.received.visit_key == "north-clinic|PID-3+PV1-44|M7+2026-05-01"
    assert first.visit.encounter.encounter_id.startswith("h")
    undated = asm.add(
        "\r".join([msh("ADT^A04", "K2"), pid, seg("PV1", {1: "1", 2: "O", 19: "V-X"})])
    )
    assert undated.visit.encounter is None and undated.awaiting == ["note", "date of service"]


def test_rule_settings_parse_and_refuse_nonsense():
    assert parse_readiness("clinic") == Readiness(frozenset({"note"}))
    assert parse_readiness("discharge + signed_note").label == "discharge+signed_note"
    assert parse_visit_keys("PV1-19, PID-3+PV1-44") == (("PV1-19",), ("PID-3", "PV1-44"))
    assert parse_site_map("east-hospital=hospital; north-clinic=clinic", "readiness") == {
        "east-hospital": "hospital",
        "north-clinic": "clinic",
    }
    for bad in (lambda: parse_readiness("whenever"), lambda: parse_visit_keys("OBX-5"),
                lambda: parse_site_map("novalue", "facilities")):  # fmt: skip
        with pytest.raises(RulesError):
            bad()
