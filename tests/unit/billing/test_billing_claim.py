from datetime import date
from decimal import Decimal

from services.billing.domain.chargemaster import load_sample_chargemaster
from services.billing.domain.claim import build_claim
from shared.events import CodedDiagnosis, CodedProcedure, EncounterCodedPayload
from tests.unit.billing.billing_support import SPOUSE, coverage, make_coded, make_institutional

CM = load_sample_chargemaster("north-clinic")


def test_build_claim_prices_lines_from_chargemaster():
    claim = build_claim(make_coded(), claim_id="C-0001", chargemaster=CM)
    assert claim.claim_type == "professional"
    assert claim.claim_id == "C-0001"
    assert claim.encounter_id == "ENC-1"
    assert claim.site_id == "north-clinic"
    assert claim.frequency_code == "1"
    assert [ln.code for ln in claim.lines] == ["99213", "73610", "29540"]
    assert [ln.charge for ln in claim.lines] == [
        Decimal("125.00"),
        Decimal("85.00"),
        Decimal("45.00"),
    ]
    assert claim.total_charge == Decimal("255.00")
    assert claim.lines[0].modifiers == ("25",)
    assert claim.lines[0].diagnosis_pointers == (1, 2)
    assert claim.lines[0].service_date == date(2024, 3, 5)
    assert claim.place_of_service == "11"  # derived from the AMB encounter class
    assert claim.payer.payer_id == "SAMPLE-COMMERCIAL"
    assert claim.subscriber == claim.patient
    assert [d.code for d in claim.diagnoses] == ["S93401A", "W010XXA"]


def test_units_multiply_the_unit_price_and_unknown_codes_stay_unpriced():
    coded = make_coded(
        procedures=[
            CodedProcedure(code="J1885", units=Decimal("3"), diagnosis_pointers=[1]),
            CodedProcedure(code="99499", diagnosis_pointers=[1]),
        ]
    )
    claim = build_claim(coded, claim_id="C-2", chargemaster=CM)
    assert claim.lines[0].charge == Decimal("24.00")
    assert claim.lines[1].unit_price is None and claim.lines[1].charge is None
    assert claim.total_charge == Decimal("24.00")


def test_missing_data_never_raises():
    coded = make_coded(coverages=[], place_of_service=None)
    claim = build_claim(coded, claim_id="C-3", chargemaster=CM)
    assert claim.payer is None
    assert claim.subscriber == claim.patient


def test_dependent_subscriber_secondary_coverage_and_replacement():
    coded = make_coded(
        coverages=[
            coverage(
                sequence="secondary",
                payer_id="SAMPLE-MEDICAID",
                member_id="MCD1",
                filing_indicator="MC",
            ),
            coverage(relationship="spouse", subscriber=SPOUSE),
        ],
        place_of_service="22",
    )
    claim = build_claim(
        coded,
        claim_id="C-4",
        chargemaster=CM,
        frequency_code="7",
        original_claim_id="C-1",
        payer_claim_control_number="PCN9",
    )
    assert claim.payer.sequence == "primary"
    assert claim.subscriber == SPOUSE
    assert claim.relationship == "spouse"
    assert [c.payer_id for c in claim.other_coverages] == ["SAMPLE-MEDICAID"]
    assert claim.place_of_service == "22"
    assert (claim.frequency_code, claim.original_claim_id, claim.payer_claim_control_number) == (
        "7",
        "C-1",
        "PCN9",
    )


def test_more_than_twelve_diagnoses_keeps_pointed_codes_and_remaps_pointers():
    base = make_coded()
    codes = [f"S9340{i % 10}A" for i in range(14)]
    dx = [CodedDiagnosis(code=c) for c in codes]
    procs = [
        CodedProcedure(code="99213", diagnosis_pointers=[1, 14]),
        CodedProcedure(code="73610", diagnosis_pointers=[13]),
    ]
    coded = EncounterCodedPayload(encounter=base.encounter, diagnoses=dx, procedures=procs)
    claim = build_claim(coded, claim_id="C-5", chargemaster=CM)
    assert len(claim.diagnoses) == 12
    kept = [d.code for d in claim.diagnoses]
    assert kept[0] == codes[0]
    assert claim.diagnoses[claim.lines[0].diagnosis_pointers[1] - 1].code == codes[13]
    assert claim.diagnoses[claim.lines[1].diagnosis_pointers[0] - 1].code == codes[12]
    assert all(p <= 12 for ln in claim.lines for p in ln.diagnosis_pointers)


def test_institutional_claim_has_revenue_codes_and_pcs():
    claim = build_claim(
        make_institutional(), claim_id="H-1", chargemaster=load_sample_chargemaster("east-hospital")
    )
    assert claim.claim_type == "institutional"
    assert [ln.revenue_code for ln in claim.lines] == ["0450", "0320", "0260", "0636"]
    assert [p.code for p in claim.icd10pcs] == ["0QSH04Z"]
    assert len(claim.lines) == 4  # the PCS code is not a service line
    assert claim.lines[3].charge == Decimal("26.00")  # J1885 x2 at 13.00
    assert claim.place_of_service == "23"


def test_event_lines_match_claim_submitted_shape():
    claim = build_claim(make_coded(rendering_provider=None), claim_id="C-6", chargemaster=CM)
    lines = claim.event_lines()
    assert [(ln.line_number, ln.code, ln.charge) for ln in lines] == [
        (1, "99213", Decimal("125.00")),
        (2, "73610", Decimal("85.00")),
        (3, "29540", Decimal("45.00")),
    ]
    assert claim.rendering_provider is None
