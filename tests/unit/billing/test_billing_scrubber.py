from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from services.billing.domain.chargemaster import load_sample_chargemaster
from services.billing.domain.claim import build_claim
from services.billing.domain.scrubber import load_payer_rules, load_sample_payer_rules, scrub
from shared.events import CodedProcedure, Provider
from shared.icd10cm import billable_on as icd10cm_billable_on
from tests.unit.billing.billing_support import (
    PATIENT,
    SITES,
    coverage,
    make_coded,
    make_institutional,
)

CM = load_sample_chargemaster("north-clinic")
KNOWN = {"S93401A": True, "W010XXA": True, "E119": True, "S934": False}


def billable(code, dos):
    return KNOWN.get(code)


def claim_of(coded, **kw):
    return build_claim(coded, claim_id="C-1", chargemaster=CM, **kw)


def codes(reasons):
    return [r.code for r in reasons]


def test_clean_claim_has_no_findings():
    assert scrub(claim_of(make_coded()), is_billable=billable) == []


def test_clean_claim_with_real_icd_code_set():
    # billing asks the release in force on the date of service (else the nearest loaded one):
    # a valid code of a 2024 visit passes (it used to come back DIAGNOSIS_UNKNOWN because only
    # the bundled FY2026 release was loaded), a 2026 one too.
    for dos in (date(2026, 5, 4), date(2024, 3, 5)):
        claim = claim_of(make_coded(service_date=dos))
        assert scrub(claim, is_billable=icd10cm_billable_on) == [], dos
    # and the real code set still refuses what it does not hold, and category headers
    unknown = make_coded(service_date=date(2024, 3, 5), diagnoses=["Q9999X", "W010XXA"])
    header = make_coded(service_date=date(2024, 3, 5), diagnoses=["S934", "W010XXA"])
    assert codes(scrub(claim_of(unknown), is_billable=icd10cm_billable_on)) == ["DIAGNOSIS_UNKNOWN"]
    assert codes(scrub(claim_of(header), is_billable=icd10cm_billable_on)) == [
        "DIAGNOSIS_NOT_BILLABLE"
    ]


def test_missing_member_id_is_a_specific_reason():
    claim = claim_of(make_coded(coverages=[coverage(member_id=None)]))
    reasons = scrub(claim, is_billable=billable)
    assert [(r.code, r.field) for r in reasons] == [("MEMBER_ID_MISSING", "payer.member_id")]


def test_invalid_npis_are_reported_per_provider():
    bad_site = SITES["north-clinic"].model_copy(update={"npi": "1234567890"})
    coded = make_coded(
        billing_provider=bad_site,
        rendering_provider=Provider(npi="1999996666", first_name="A", last_name="B"),
    )
    reasons = scrub(claim_of(coded), is_billable=billable)
    assert [(r.code, r.field) for r in reasons] == [
        ("BILLING_NPI_INVALID", "billing_provider.npi"),
        ("RENDERING_NPI_INVALID", "rendering_provider.npi"),
    ]


def test_pointer_to_missing_diagnosis():
    coded = make_coded(procedures=[CodedProcedure(code="99213", diagnosis_pointers=[1, 3])])
    reasons = scrub(claim_of(coded), is_billable=billable)
    assert [(r.code, r.field) for r in reasons] == [
        ("POINTER_INVALID", "lines[0].diagnosis_pointers")
    ]
    assert "pointer 3" in reasons[0].message


def test_non_billable_and_unknown_diagnoses():
    coded = make_coded(diagnoses=["S934", "Q99999", "S93401A"])
    reasons = scrub(claim_of(coded), is_billable=billable)
    assert [(r.code, r.field) for r in reasons] == [
        ("DIAGNOSIS_NOT_BILLABLE", "diagnoses[0].code"),
        ("DIAGNOSIS_UNKNOWN", "diagnoses[1].code"),
    ]


def test_is_billable_receives_the_date_of_service():
    seen = []
    scrub(claim_of(make_coded()), is_billable=lambda c, d: seen.append((c, d)) or True)
    assert seen == [("S93401A", date(2024, 3, 5)), ("W010XXA", date(2024, 3, 5))]


def test_zero_and_negative_charges_and_unpriced_codes():
    claim = claim_of(
        make_coded(
            procedures=[
                CodedProcedure(code="99213", diagnosis_pointers=[1]),
                CodedProcedure(code="73610", diagnosis_pointers=[1]),
                CodedProcedure(code="99499", diagnosis_pointers=[1]),
            ]
        )
    )
    lines = list(claim.lines)
    lines[0] = replace(lines[0], unit_price=Decimal("0.00"), charge=Decimal("0.00"))
    lines[1] = replace(lines[1], unit_price=Decimal("-5.00"), charge=Decimal("-5.00"))
    reasons = scrub(replace(claim, lines=tuple(lines)), is_billable=billable)
    assert [(r.code, r.field) for r in reasons] == [
        ("CHARGE_NOT_POSITIVE", "lines[0].charge"),
        ("CHARGE_NOT_POSITIVE", "lines[1].charge"),
        ("NO_CHARGEMASTER_PRICE", "lines[2].charge"),
    ]
    assert reasons[2].message == "no chargemaster price for 99499"


def test_failed_scrub_returns_every_reason_without_phi():
    site = SITES["north-clinic"].model_copy(update={"tax_id": None, "address": None})
    coded = make_coded(
        billing_provider=site,
        coverages=[coverage(member_id="", relationship="child", subscriber=None)],
        place_of_service="98",
        procedures=[CodedProcedure(code="99213", units=Decimal(0), diagnosis_pointers=[])],
    )
    reasons = scrub(claim_of(coded, frequency_code="7"), is_billable=billable)
    assert codes(reasons) == [
        "PAYER_CLAIM_CONTROL_NUMBER_MISSING",
        "BILLING_TAX_ID_MISSING",
        "BILLING_ADDRESS_MISSING",
        "MEMBER_ID_MISSING",
        "SUBSCRIBER_MISSING",
        "PLACE_OF_SERVICE_INVALID",
        "UNITS_NOT_POSITIVE",
        "CHARGE_NOT_POSITIVE",
        "POINTER_MISSING",
    ]
    text = " ".join(r.message for r in reasons)
    for phi in (PATIENT.first_name, PATIENT.last_name, "W123456789", "1985"):
        assert phi.upper() not in text.upper()


def test_five_digit_billing_zip_and_bad_tax_id():
    site = SITES["north-clinic"].model_copy(
        update={
            "tax_id": "12-34",
            "address": SITES["north-clinic"].address.model_copy(update={"postal_code": "62701"}),
        }
    )
    reasons = scrub(claim_of(make_coded(billing_provider=site)), is_billable=billable)
    assert codes(reasons) == ["BILLING_TAX_ID_INVALID", "BILLING_ZIP_NOT_ZIP4"]


def test_payer_rule_requires_prior_authorization():
    rules = load_sample_payer_rules()  # SAMPLE-COMMERCIAL: 70010-76499 need prior auth
    claim = claim_of(make_coded())
    reasons = scrub(claim, is_billable=billable, payer_rules=rules)
    assert [(r.code, r.field) for r in reasons] == [("PRIOR_AUTH_REQUIRED", "prior_authorization")]
    assert "73610" in reasons[0].message
    with_pa = claim_of(make_coded(prior_authorization="AUTH-77"))
    assert scrub(with_pa, is_billable=billable, payer_rules=rules) == []


def test_payer_rules_from_json_non_covered_group_rendering_and_timely_filing():
    rules = load_payer_rules(
        '{"default": {"timely_filing_days": 365},'
        ' "payers": {"SAMPLE-COMMERCIAL": {"non_covered_codes": ["29500-29599"],'
        ' "requires_group_number": true, "requires_rendering_provider": true, "timely_filing_days": 30}}}'
    )
    coded = make_coded(coverages=[coverage(group_number=None)], rendering_provider=None)
    reasons = scrub(
        claim_of(coded), is_billable=billable, payer_rules=rules, as_of=date(2024, 5, 1)
    )
    assert [(r.code, r.field) for r in reasons] == [
        ("PAYER_GROUP_NUMBER_REQUIRED", "payer.group_number"),
        ("PAYER_RENDERING_REQUIRED", "rendering_provider"),
        ("PAYER_NON_COVERED", "lines[2].code"),
        ("TIMELY_FILING_EXCEEDED", "service_date"),
    ]
    other = claim_of(make_coded(coverages=[coverage(payer_id="ELSEWHERE")]))
    assert scrub(other, is_billable=billable, payer_rules=rules, as_of=date(2024, 5, 1)) == []


def test_filing_limits_are_billings_one_table():
    """The sample rules: Medicare 12 months from the date of service (42 CFR 424.44(a)(1)),
    Medicaid 365 days, commercial plans by contract; an unknown payer by its filing indicator,
    else the default (90 days, the shortest common commercial limit)."""
    rules = load_sample_payer_rules()
    dos = date(2024, 1, 15)
    assert rules.filing_deadline("MCR01", "MB", dos) == date(2025, 1, 15)  # a calendar year
    assert rules.filing_deadline("MCR01", "MB", date(2024, 2, 29)) == date(2025, 2, 28)
    assert rules.filing_deadline("MCD01", "MC", dos) == date(2025, 1, 14)  # 365 days (leap year)
    assert rules.filing_deadline("AETNA1", "CI", dos) == date(2024, 7, 13)  # 180 days
    assert rules.filing_deadline("UHC001", "CI", dos) == date(2024, 4, 14)  # 90 days
    assert rules.filing_deadline("MAC-ELSEWHERE", "MA", dos) == date(2025, 1, 15)
    assert rules.filing_deadline("STATE-X", "MC", dos) == date(2025, 1, 14)
    assert rules.filing_deadline("UNKNOWN", "CI", dos) == date(2024, 4, 14)
    assert rules.filing_deadline(None, "CI", dos) == date(2024, 4, 14)
    # a payer's own entry wins over its filing indicator's
    assert rules.filing_deadline("AETNA1", "MB", dos) == date(2024, 7, 13)


def test_timely_filing_in_calendar_months():
    medicare = coverage(payer_id="MCR01", payer_name="Medicare", filing_indicator="MB")
    claim = claim_of(make_coded(service_date=date(2024, 3, 5), coverages=[medicare]))
    rules = load_sample_payer_rules()
    assert scrub(claim, is_billable=billable, payer_rules=rules, as_of=date(2025, 3, 5)) == []
    [late] = scrub(claim, is_billable=billable, payer_rules=rules, as_of=date(2025, 3, 6))
    assert (late.code, late.message) == (
        "TIMELY_FILING_EXCEEDED",
        "past the payer's 12-month filing limit",
    )


def test_a_level_setting_days_or_months_replaces_the_other():
    rules = load_payer_rules(
        '{"default": {"timely_filing_days": 120, "comment": "ignored"},'
        ' "filing_indicators": {"MB": {"timely_filing_months": 12}},'
        ' "payers": {"P1": {"timely_filing_months": 6}, "P2": {"name": "Two"}}}'
    )
    dos = date(2024, 8, 31)
    assert rules.filing_deadline("P1", "CI", dos) == date(2025, 2, 28)
    assert rules.filing_deadline("P2", "CI", dos) == date(2024, 12, 29)  # the default's days
    assert rules.filing_deadline("P3", "MB", dos) == date(2025, 8, 31)
    assert str(rules.for_payer("P2").filing_limit) == "120-day"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"payers": {"X": {"name": "X"}}}', "default: timely_filing_days or timely_filing_months"),
        (
            '{"default": {"timely_filing_days": 90, "timely_filing_months": 3}}',
            "default: timely_filing_days and timely_filing_months are exclusive",
        ),
        (
            '{"default": {"timely_filing_days": 0}}',
            "default.timely_filing_days: must be a positive whole number",
        ),
        (
            '{"default": {"timely_filing_days": 90}, "filing_indicators": {"MB": {"x": 1}}}',
            "filing_indicators.MB.x: unknown payer rule",
        ),
    ],
)
def test_bad_filing_limits_are_refused_naming_the_path(text, message):
    with pytest.raises(ValueError, match=message):
        load_payer_rules(text)


def test_bad_payer_rules_json_names_the_path():
    import pytest

    with pytest.raises(ValueError, match=r"payers.X.prior_auth_codes: expected list"):
        load_payer_rules('{"payers": {"X": {"prior_auth_codes": "72148"}}}')
    with pytest.raises(ValueError, match=r"payers.X.bogus: unknown payer rule"):
        load_payer_rules('{"payers": {"X": {"bogus": 1}}}')
    with pytest.raises(ValueError, match="invalid JSON at line 1"):
        load_payer_rules("{")


def test_no_primary_coverage_and_future_service_date():
    coded = make_coded(coverages=[coverage(sequence="secondary")])
    reasons = scrub(claim_of(coded), is_billable=billable, as_of=date(2024, 3, 1))
    assert codes(reasons) == ["PAYER_MISSING", *["SERVICE_DATE_IN_FUTURE"] * 3]


def test_institutional_checks_revenue_code_type_of_bill_and_attending():
    coded = make_institutional()
    inst = coded.encounter.institutional.model_copy(
        update={"type_of_bill": "0111", "attending": None}
    )
    enc = coded.encounter.model_copy(update={"institutional": inst, "rendering_provider": None})
    claim = build_claim(
        coded.model_copy(update={"encounter": enc}),
        claim_id="H-1",
        chargemaster=load_sample_chargemaster("east-hospital"),
    )
    lines = list(claim.lines)
    lines[1] = replace(lines[1], revenue_code=None)
    lines[2] = replace(lines[2], revenue_code="999")
    reasons = scrub(replace(claim, lines=tuple(lines)), is_billable=billable)
    assert [(r.code, r.field) for r in reasons] == [
        ("ATTENDING_MISSING", "institutional.attending"),
        ("ADMISSION_DATE_MISSING", "institutional.admission_date"),
        ("REVENUE_CODE_MISSING", "lines[1].revenue_code"),
        ("REVENUE_CODE_INVALID", "lines[2].revenue_code"),
    ]


@pytest.mark.parametrize(
    ("type_of_bill", "needs_admission_date"),
    [
        ("0111", True),
        ("0181", True),
        ("0211", True),
        ("0131", False),
        ("0831", False),
        ("0141", False),
    ],
)
def test_only_inpatient_bills_need_an_admission_date(type_of_bill, needs_admission_date):
    coded = make_institutional()
    inst = coded.encounter.institutional.model_copy(
        update={"type_of_bill": type_of_bill, "admission_date": None}
    )
    claim = build_claim(
        coded.model_copy(
            update={"encounter": coded.encounter.model_copy(update={"institutional": inst})}
        ),
        claim_id="H-2",
        chargemaster=load_sample_chargemaster("east-hospital"),
    )
    found = "ADMISSION_DATE_MISSING" in codes(scrub(claim, is_billable=billable))
    assert found is needs_admission_date


def test_ndc_must_normalise_to_11_digits():
    procs = [
        CodedProcedure(code="J1885", ndc="0409-3795-01", diagnosis_pointers=[1]),
        CodedProcedure(code="J3301", ndc="0409379501", diagnosis_pointers=[1]),
    ]
    reasons = scrub(claim_of(make_coded(procedures=procs)), is_billable=billable)
    assert [(r.code, r.field) for r in reasons] == [("NDC_INVALID", "lines[1].ndc")]
