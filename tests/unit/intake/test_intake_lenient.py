"""Lenient intake, strict billing: what a biller can fix is named in ``missing`` and the
encounter goes on; the registry fills what the EHR does not send; self-pay is never a payer."""

import copy

import pytest

from services.intake.domain.fhir import parse_fhir
from services.intake.domain.problems import IntakeError
from services.intake.domain.registry import (
    Payer,
    Provider,
    Registry,
    Site,
    parse_payers_csv,
    parse_providers_csv,
    parse_sites_csv,
)
from shared.events import Address
from tests.unit.intake.test_intake_references import (
    DOC,
    DOC_NPI,
    GOOD_NPI,
    NPI,
    ORG,
    PATIENT,
    bundle,
    entry,
    visit,
)

ADDRESS = {"line": ["1 Harbor Way"], "city": "Dayton", "state": "Ohio", "postalCode": "45402"}


def coverage(rid="cov", **over):
    body = {
        "status": "active",
        "beneficiary": {"reference": "Patient/p1"},
        "payor": [{"reference": "Organization/payer"}],
        "subscriberId": "M-123",
    }
    return entry("Coverage", rid, **(body | over))


PAYER = entry("Organization", "payer", name="Lakeshore Blue Plan")


def parsed(*resources, **kwargs):
    result = parse_fhir(bundle(visit(), *resources), **kwargs)
    assert result.problems == [] and len(result.encounters) == 1
    return result.encounters[0]


def test_everything_a_biller_can_fix_is_named_and_the_encounter_still_comes():
    pe = parsed(PATIENT, ORG, DOC)
    assert pe.missing == [
        "billing_provider.tax_id",
        "billing_provider.address",
        "patient.address",
        "coverage",
    ]
    org = copy.deepcopy(ORG)
    org["resource"]["identifier"] = [{"system": NPI, "value": "1245319598"}]  # bad check digit
    org["resource"]["address"] = [ADDRESS]
    pe = parsed(PATIENT, org, DOC, coverage(subscriberId=None), PAYER)
    assert pe.encounter.billing_provider.npi == "1245319598"  # kept for the biller to see
    assert pe.encounter.billing_provider.address.state == "OH"
    assert pe.missing == [
        "billing_provider.npi",
        "billing_provider.tax_id",
        "billing_provider.address.postal_code (ZIP+4)",
        "patient.address",
        "coverage.payer_id",
        "coverage.member_id",
    ]
    assert "billing provider NPI fails the check digit" in [w.message for w in pe.warnings]


def test_an_organisation_without_npi_and_a_rendering_provider_without_one():
    org = copy.deepcopy(ORG)
    org["resource"]["identifier"] = []
    doc = copy.deepcopy(DOC)
    doc["resource"]["identifier"] = []
    pe = parsed(PATIENT, org, doc)
    assert pe.encounter.site_id == "unassigned"
    assert pe.encounter.rendering_provider is None
    for name in ("site_id", "billing_provider.npi", "rendering_provider.npi"):
        assert name in pe.missing
    assert parsed(PATIENT, org, doc, site_id="north").encounter.site_id == "north"


REGISTRY = Registry(
    sites=[
        Site(
            site_id="harbor",
            name="Harbor Clinic",
            npi=GOOD_NPI,
            tax_id="814203377",
            taxonomy="207Q00000X",
            address=Address(
                line1="1 Harbor Way", city="Dayton", state="OH", postal_code="454021407"
            ),
            aliases=("Harbor Urgent Care",),
        )
    ],
    providers=[
        Provider(npi=DOC_NPI, first_name="Ana", last_name="Ferreira", taxonomy="208D00000X")
    ],
    payers=[
        Payer(payer_id="LBP01", name="Lakeshore Blue Plan", filing_indicator="BL"),
        Payer(payer_id="SELF", name="Patient Pay", self_pay=True, aliases=("Cash",)),
    ],
)


def test_the_registry_fills_what_the_ehr_does_not_send():
    org = copy.deepcopy(ORG)
    org["resource"]["address"] = [ADDRESS]  # a five-digit ZIP: the registry's ZIP+4 is used
    patient = copy.deepcopy(PATIENT)
    patient["resource"]["address"] = [ADDRESS]
    pe = parsed(patient, org, DOC, coverage(), PAYER, registry=REGISTRY)
    enc = pe.encounter
    assert enc.site_id == "harbor"
    assert (enc.billing_provider.tax_id, enc.billing_provider.address.postal_code) == (
        "814203377",
        "454021407",
    )
    assert enc.rendering_provider.taxonomy == "208D00000X"
    cov = enc.primary_coverage
    assert (cov.payer_id, cov.payer_name, cov.filing_indicator) == (
        "LBP01",
        "Lakeshore Blue Plan",
        "BL",
    )
    assert pe.missing == []


def test_the_registry_finds_a_site_by_name_or_alias_when_the_ehr_sends_only_a_display():
    enc = visit(serviceProvider={"display": "HARBOR URGENT CARE"})
    pe = parse_fhir(bundle(enc, PATIENT, DOC), registry=REGISTRY).encounters[0]
    assert pe.encounter.site_id == "harbor" and pe.encounter.billing_provider.npi == GOOD_NPI


def test_self_pay_never_becomes_the_primary_payer():
    selfpay = coverage(
        "self",
        type={
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/coverage-selfpay", "code": "pay"}
            ]
        },
        order=1,
    )
    insured = coverage("ins", order=2)
    pe = parsed(PATIENT, ORG, DOC, selfpay, insured, PAYER)
    assert [(c.payer_name, c.sequence) for c in pe.encounter.coverages] == [
        ("Lakeshore Blue Plan", "primary")
    ]
    assert "entry[4].resource" in [w.path for w in pe.warnings]
    payor_is_patient = coverage(payor=[{"reference": "Patient/p1"}])
    pe = parsed(PATIENT, ORG, DOC, payor_is_patient)
    assert pe.encounter.coverages == [] and "coverage" not in pe.missing
    cash = entry("Organization", "payer", name="Cash")
    pe = parsed(PATIENT, ORG, DOC, coverage(), cash, registry=REGISTRY)
    assert pe.encounter.coverages == [] and "coverage" not in pe.missing
    named = coverage(payor=[{"display": "SELF PAY"}])
    assert parsed(PATIENT, ORG, DOC, named).encounter.coverages == []


def test_coverage_from_the_encounters_claim_when_no_coverage_resource():
    claim = entry(
        "ExplanationOfBenefit",
        "eob",
        contained=[
            {
                "resourceType": "Coverage",
                "id": "coverage",
                "status": "active",
                "type": {"text": "Medicaid"},
                "payor": [{"display": "Medicaid"}],
            }
        ],
        insurance=[{"focal": True, "coverage": {"reference": "#coverage", "display": "Medicaid"}}],
        item=[{"sequence": 1, "encounter": [{"reference": "Encounter/e1"}]}],
    )
    twin = entry(
        "Claim",
        "claim",
        insurance=[{"sequence": 1, "focal": True, "coverage": {"display": "Medicaid"}}],
        item=[{"sequence": 1, "encounter": [{"reference": "Encounter/e1"}]}],
    )
    pe = parsed(PATIENT, ORG, DOC, claim, twin)
    assert [(c.payer_name, c.filing_indicator) for c in pe.encounter.coverages] == [
        ("Medicaid", "MC")
    ]
    assert "coverage.payer_id" in pe.missing and "coverage.member_id" in pe.missing


def test_coverage_out_of_force_on_the_date_of_service_is_not_used():
    old = coverage(period={"start": "2010-01-01", "end": "2012-12-31"})
    assert parsed(PATIENT, ORG, DOC, old, PAYER).encounter.coverages == []


# --------------------------------------------------------------------------- CSV


def test_registry_csv_files():
    sites = parse_sites_csv(
        "site_id,name,npi,tax_id,address_line1,city,state,postal_code,aliases\n"
        f"harbor,Harbor Clinic,{GOOD_NPI},81-4203377,1 Harbor Way,Dayton,Ohio,45402-1407,Harbor UC|HUC\n"
        "bare,Bare Site,,,,,,,\n"
    )
    assert sites[0].tax_id == "814203377" and sites[0].address.state == "OH"
    assert sites[0].address.postal_code == "454021407" and sites[0].aliases == ("Harbor UC", "HUC")
    assert sites[1].npi is None and sites[1].address is None
    providers = parse_providers_csv(
        f"npi,first_name,last_name,site_id\n{DOC_NPI},Ana,Ferreira,harbor\n"
    )
    assert providers == [Provider(DOC_NPI, "Ana", "Ferreira", None, "harbor")]
    payers = parse_payers_csv(
        "payer_id,name,filing_indicator,self_pay\nMCD,Ohio Medicaid,mc,\nSP,Self,,true\n"
    )
    assert [(p.filing_indicator, p.self_pay) for p in payers] == [("MC", False), (None, True)]
    registry = Registry(sites, providers, payers)
    assert registry.site_by_name("harbor uc!") is sites[0] and registry.payer("SP").self_pay


def test_registry_csv_problems_name_line_and_column_never_the_value():
    with pytest.raises(IntakeError) as info:
        parse_sites_csv(
            "site_id,name,npi,tax_id,address_line1,city,state,postal_code\n"
            "s1,Site,1234567890,12,1 Main,Town,Atlantis,ABCDE\n"
            ",Nameless,,,,,,\n"
            "s3,Partial,,,1 Main,,,\n"
        )
    assert [e["path"] for e in info.value.errors] == [
        "line 2.npi",
        "line 2.tax_id",
        "line 2.state",
        "line 2.postal_code",
        "line 3.site_id",
        "line 4.city",
        "line 4.state",
        "line 4.postal_code",
    ]
    assert "Atlantis" not in str(info.value) and "1234567890" not in str(info.value)
    with pytest.raises(IntakeError) as info:
        parse_payers_csv("payer_id,name,filing_indicator,self_pay\nP,Plan,XX,maybe\n")
    assert [e["path"] for e in info.value.errors] == ["line 2.filing_indicator", "line 2.self_pay"]
    with pytest.raises(IntakeError):
        parse_providers_csv("npi,surname\n1,x\n")
