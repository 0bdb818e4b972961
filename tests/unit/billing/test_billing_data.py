"""A biller's billing data for a held claim: validated per field, errors name the path only."""

from __future__ import annotations

import pytest

from services.billing.domain import billing_data
from services.billing.domain.chargemaster import load_sample_chargemaster
from services.billing.domain.claim import build_claim
from services.billing.domain.scrubber import scrub
from shared.events import Organization
from tests.unit.billing.billing_support import GOOD_NPI, make_coded

CM = load_sample_chargemaster("north-clinic")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"billing_provider": {"npi": "1234567890"}}, "billing_provider.npi"),
        ({"billing_provider": {"tax_id": "12-34"}}, "billing_provider.tax_id"),
        (
            {
                "billing_provider": {
                    "address": {
                        "line1": "1 A St",
                        "city": "X",
                        "state": "MA",
                        "postal_code": "02139",
                    }
                }
            },
            "billing_provider.address.postal_code",
        ),
        ({"patient": {"birth_date": "1985-13-45"}}, "patient.birth_date"),
        ({"patient": {"ssn": "123456789"}}, "patient.ssn"),
        ({}, "body"),
        (None, "body"),
    ],
)
def test_bad_field_is_named_without_its_value(body, field):
    with pytest.raises(billing_data.BillingDataError) as e:
        billing_data.parse(body)
    assert [p["field"] for p in e.value.problems] == [field]
    text = str(e.value.problems)
    for v in ("1234567890", "12-34", "02139", "1985-13-45", "123456789"):
        assert v not in text


def test_filled_fields_release_the_claim():
    coded = make_coded(billing_provider=Organization(name="North Clinic"), coverages=[])
    claim = build_claim(coded, claim_id="C-1", chargemaster=CM)
    assert {r.field for r in scrub(claim, is_billable=lambda c, d: True)} == {
        "billing_provider.npi",
        "billing_provider.tax_id",
        "billing_provider.address",
        "payer",
    }
    data = billing_data.parse(
        {
            "billing_provider": {
                "npi": GOOD_NPI,
                "tax_id": "12-3456789",
                "address": {
                    "line1": "1 Main St",
                    "city": "Boston",
                    "state": "MA",
                    "postal_code": "02139-4307",
                },
            },
            "payer": {"payer_id": "60054", "payer_name": "Aetna", "member_id": "W1"},
        }
    )
    filled = build_claim(billing_data.apply(coded, data), claim_id="C-1", chargemaster=CM)
    assert scrub(filled, is_billable=lambda c, d: True) == []
    assert filled.billing_provider.tax_id == "123456789"
    assert filled.payer.payer_id == "60054"


def test_payer_without_coverage_needs_an_id():
    coded = make_coded(coverages=[])
    with pytest.raises(billing_data.BillingDataError) as e:
        billing_data.apply(coded, billing_data.parse({"payer": {"member_id": "W1"}}))
    assert e.value.problems[0]["field"] == "payer.payer_id"
