"""Builders for billing tests: a realistic coded encounter (pyx12 validation is ``tests.x12_support``)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from shared.events import (
    Address,
    CodedDiagnosis,
    CodedProcedure,
    Coverage,
    Encounter,
    EncounterCodedPayload,
    Institutional,
    Organization,
    Person,
    Provider,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "x12" / "billing"
GOOD_NPI = "1234567893"
GOOD_NPI_2 = "1245319599"  # check digit valid (Luhn with 80840 prefix)

SITES = {
    "north-clinic": Organization(
        name="North Clinic",
        npi=GOOD_NPI,
        tax_id="123456789",
        taxonomy="207Q00000X",
        address=Address(
            line1="100 Main St", city="Springfield", state="IL", postal_code="62701-1234"
        ),
    ),
    "south-urgent-care": Organization(
        name="South Urgent Care",
        npi=GOOD_NPI_2,
        tax_id="98-7654321",
        address=Address(
            line1="9 Harbor Rd",
            line2="Suite 2",
            city="Riverton",
            state="IL",
            postal_code="627050001",
        ),
    ),
    "east-hospital": Organization(
        name="East Hospital",
        npi=GOOD_NPI,
        tax_id="111222333",
        taxonomy="282N00000X",
        address=Address(
            line1="1 Hospital Way", city="Eastville", state="IL", postal_code="627100002"
        ),
    ),
}
HOME = Address(line1="12 Elm St", city="Springfield", state="IL", postal_code="62704")
PATIENT = Person(
    patient_id="MRN0001",
    first_name="Jane",
    last_name="Doe",
    birth_date=date(1985, 4, 12),
    gender="F",
    address=HOME,
)
SPOUSE = Person(
    first_name="John", last_name="Doe", birth_date=date(1983, 1, 2), gender="M", address=HOME
)
RENDERING = Provider(npi=GOOD_NPI_2, first_name="Ann", last_name="Lee", taxonomy="207Q00000X")


def coverage(**kw) -> Coverage:
    base = dict(
        payer_id="SAMPLE-COMMERCIAL",
        payer_name="Sample Commercial Health Plan",
        member_id="W123456789",
        group_number="GRP100",
    )
    base.update(kw)
    return Coverage(**base)


def make_coded(
    *,
    encounter_id: str = "ENC-1",
    site_id: str = "north-clinic",
    diagnoses: list[str] | None = None,
    procedures: list[CodedProcedure] | None = None,
    coverages: list[Coverage] | None = None,
    **encounter_kw,
) -> EncounterCodedPayload:
    """A sprained-ankle office visit: 99213-25 + ankle x-ray + strapping, commercial payer."""
    enc = Encounter(
        encounter_id=encounter_id,
        site_id=site_id,
        service_date=encounter_kw.pop("service_date", date(2024, 3, 5)),
        billing_provider=encounter_kw.pop("billing_provider", SITES[site_id]),
        rendering_provider=encounter_kw.pop("rendering_provider", RENDERING),
        patient=encounter_kw.pop("patient", PATIENT),
        coverages=coverages if coverages is not None else [coverage()],
        **encounter_kw,
    )
    dx = diagnoses or ["S93401A", "W010XXA"]
    procs = procedures or [
        CodedProcedure(code="99213", modifiers=["25"], diagnosis_pointers=[1, 2]),
        CodedProcedure(code="73610", diagnosis_pointers=[1]),
        CodedProcedure(code="29540", diagnosis_pointers=[1]),
    ]
    return EncounterCodedPayload(
        encounter=enc, diagnoses=[CodedDiagnosis(code=c) for c in dx], procedures=procs
    )


def make_institutional(**kw) -> EncounterCodedPayload:
    """An emergency department visit billed on a UB-04 (837I, type of bill 0131)."""
    inst = Institutional(
        type_of_bill="0131",
        admission_type="1",
        admission_source="7",
        discharge_status="01",
        attending=Provider(
            npi=GOOD_NPI, first_name="Raj", last_name="Patel", taxonomy="207P00000X"
        ),
    )
    args = dict(
        site_id="east-hospital",
        encounter_class="EMER",
        institutional=inst,
        diagnoses=["S93401A", "W010XXA", "E119"],
        procedures=[
            CodedProcedure(code="99284", modifiers=["25"], diagnosis_pointers=[1]),
            CodedProcedure(code="73610", diagnosis_pointers=[1]),
            CodedProcedure(code="96372", diagnosis_pointers=[1]),
            CodedProcedure(code="J1885", units=2, diagnosis_pointers=[1]),
            CodedProcedure(code="0QSH04Z", system="icd10pcs"),
        ],
    )
    args.update(kw)
    return make_coded(**args)
