"""What a biller can fill and what the scrubber holds for: a payer id is missing only when
absent (intake leaves it empty when neither the EHR nor the registry gives one), whatever it
reads like; a rendering NPI failing its check digit (Synthea's, a typo) is replaced through
``PATCH /claims/{id}/billing-data`` like a missing field."""

from __future__ import annotations

import pytest

from services.billing.domain import billing_data
from services.billing.domain.chargemaster import load_sample_chargemaster
from services.billing.domain.claim import build_claim
from services.billing.domain.scrubber import scrub
from shared.events import Provider
from tests.unit.billing.billing_support import GOOD_NPI, RENDERING, coverage, make_coded

CM = load_sample_chargemaster("north-clinic")


def findings(coded) -> list[tuple[str, str | None]]:
    claim = build_claim(coded, claim_id="C-1", chargemaster=CM)
    return [(r.code, r.field) for r in scrub(claim, is_billable=lambda c, d: True)]


def test_a_payer_whose_id_reads_like_its_name_has_an_id():
    # Real payer ids are often the payer's own short name (a registry row "AETNA,AETNA").
    coded = make_coded(coverages=[coverage(payer_id="AETNA", payer_name="AETNA")])
    assert findings(coded) == []


def test_a_payer_known_by_name_only_is_held_for_its_id():
    coded = make_coded(coverages=[coverage(payer_id="", payer_name="UnitedHealthcare")])
    assert findings(coded) == [("PAYER_ID_MISSING", "payer.payer_id")]


def test_an_other_payer_without_id_is_named():
    coded = make_coded(
        coverages=[
            coverage(),
            coverage(payer_id=" ", payer_name="Medicaid", sequence="secondary", member_id="S1"),
        ]
    )
    assert findings(coded) == [("OTHER_PAYER_ID_MISSING", "other_coverages[0].payer_id")]


def test_a_biller_supplied_payer_id_alone_releases_the_claim():
    """With no coverage, the biller gives the payer id only: the name defaults to the id, and
    the claim is not held again for that (the old rule, id equal to name = missing, did)."""
    coded = make_coded(coverages=[])
    data = billing_data.parse({"payer": {"payer_id": "60054", "member_id": "W1"}})
    filled = billing_data.apply(coded, data)
    assert filled.encounter.primary_coverage.payer_name == "60054"
    assert findings(filled) == []


def test_an_invalid_rendering_npi_is_replaced_and_the_name_kept():
    bad = Provider(npi="9999999999", first_name="Ann", last_name="Lee")  # fails the check digit
    coded = make_coded(rendering_provider=bad)
    assert findings(coded) == [("RENDERING_NPI_INVALID", "rendering_provider.npi")]
    filled = billing_data.apply(
        coded, billing_data.parse({"rendering_provider": {"npi": GOOD_NPI}})
    )
    assert filled.encounter.rendering_provider == Provider(
        npi=GOOD_NPI, first_name="Ann", last_name="Lee"
    )
    assert findings(filled) == []


def test_a_rendering_provider_needs_a_name_when_the_claim_had_none():
    coded = make_coded(rendering_provider=None)
    with pytest.raises(billing_data.BillingDataError) as e:
        billing_data.apply(coded, billing_data.parse({"rendering_provider": {"npi": GOOD_NPI}}))
    assert [p["field"] for p in e.value.problems] == ["rendering_provider.last_name"]
    given = billing_data.parse(
        {"rendering_provider": {"npi": GOOD_NPI, "first_name": "Bo", "last_name": "Kim"}}
    )
    assert billing_data.apply(coded, given).encounter.rendering_provider.npi == GOOD_NPI


def test_a_bad_rendering_npi_is_named_without_its_value():
    with pytest.raises(billing_data.BillingDataError) as e:
        billing_data.parse({"rendering_provider": {"npi": "1234567890"}})
    assert [p["field"] for p in e.value.problems] == ["rendering_provider.npi"]
    assert "1234567890" not in str(e.value.problems)


def test_the_fixture_rendering_provider_is_valid():
    assert findings(make_coded(rendering_provider=RENDERING)) == []
