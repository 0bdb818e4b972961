"""Lenient intake, strict billing: a claim missing what an 837 requires is held, one finding
per missing field naming its path and no value; the 837 writer never writes junk or crashes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.billing.domain.chargemaster import load_sample_chargemaster
from services.billing.domain.claim import build_claim
from services.billing.domain.scrubber import scrub
from services.billing.domain.x12_837 import build_837, unwritable_reason
from shared.events import Organization, Person
from tests.unit.billing.billing_support import HOME, PATIENT, SITES, SPOUSE, coverage, make_coded

CM = load_sample_chargemaster("north-clinic")


def billable(code, dos):
    return True


def claim_of(coded):
    return build_claim(coded, claim_id="C-1", chargemaster=CM)


def fields(claim):
    return [(r.code, r.field) for r in scrub(claim, is_billable=billable)]


def test_every_missing_837_field_is_one_finding_naming_its_path():
    coded = make_coded(
        billing_provider=Organization(),  # the EHR sent no organisation data at all
        patient=Person(patient_id="MRN9", address=HOME),
        coverages=[coverage(payer_id="", payer_name="Aetna", member_id=None)],
    )
    assert fields(claim_of(coded)) == [
        ("BILLING_NAME_MISSING", "billing_provider.name"),
        ("BILLING_NPI_MISSING", "billing_provider.npi"),
        ("BILLING_TAX_ID_MISSING", "billing_provider.tax_id"),
        ("BILLING_ADDRESS_MISSING", "billing_provider.address"),
        ("PATIENT_NAME_MISSING", "patient.last_name"),
        ("PATIENT_NAME_MISSING", "patient.first_name"),
        ("PATIENT_BIRTH_DATE_MISSING", "patient.birth_date"),
        # a payer known by name only (intake leaves the id nobody sent empty): not routable
        ("PAYER_ID_MISSING", "payer.payer_id"),
        ("MEMBER_ID_MISSING", "payer.member_id"),
    ]


def test_bad_npi_zip_and_no_coverage_are_named():
    site = SITES["north-clinic"]
    bad = site.model_copy(
        update={
            "npi": "1234567890",  # check digit fails
            "address": site.address.model_copy(update={"postal_code": "62701"}),
        }
    )
    coded = make_coded(billing_provider=bad, coverages=[])
    assert fields(claim_of(coded)) == [
        ("BILLING_NPI_INVALID", "billing_provider.npi"),
        ("BILLING_ZIP_NOT_ZIP4", "billing_provider.address.postal_code"),
        ("PAYER_MISSING", "payer"),
    ]


def test_subscriber_name_and_birth_date_are_required():
    sub = SPOUSE.model_copy(update={"first_name": None, "birth_date": None})
    coded = make_coded(coverages=[coverage(relationship="spouse", subscriber=sub)])
    assert fields(claim_of(coded)) == [
        ("SUBSCRIBER_NAME_MISSING", "payer.subscriber.first_name"),
        ("SUBSCRIBER_BIRTH_DATE_MISSING", "payer.subscriber.birth_date"),
    ]


def test_messages_carry_no_value():
    patient = PATIENT.model_copy(update={"birth_date": None})
    coded = make_coded(patient=patient, coverages=[coverage(member_id=None)])
    for r in scrub(claim_of(coded), is_billable=billable):
        for value in ("Jane", "Doe", "MRN0001", "SAMPLE-COMMERCIAL", "North Clinic"):
            assert value.upper() not in r.message.upper()


@pytest.mark.parametrize(
    ("patient", "site", "expected"),
    [
        (PATIENT.model_copy(update={"birth_date": None}), None, "patient.birth_date"),
        (PATIENT.model_copy(update={"last_name": None}), None, "patient.last_name"),
        (PATIENT, SITES["north-clinic"].model_copy(update={"name": None}), "billing_provider.name"),
    ],
)
def test_writer_refuses_naming_the_field_instead_of_none_or_a_crash(patient, site, expected):
    coded = make_coded(patient=patient, billing_provider=site or SITES["north-clinic"])
    claim = claim_of(coded)
    assert expected in unwritable_reason(claim)
    with pytest.raises(ValueError, match=expected.replace(".", r"\.")):
        build_837(
            [claim],
            interchange_control_number=1,
            group_control_number=1,
            sender_id="S",
            created_at=datetime(2024, 3, 6, 9, 0, tzinfo=UTC),
            receiver_id="R",
        )


def test_clean_claim_writes_no_none():
    text = build_837(
        [claim_of(make_coded())],
        interchange_control_number=1,
        group_control_number=1,
        sender_id="S",
        created_at=datetime(2024, 3, 6, 9, 0, tzinfo=UTC),
        receiver_id="R",
    ).text
    assert "NONE" not in text
