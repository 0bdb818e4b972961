"""Synthetic samples and demo sites: valid NPIs, deterministic output, plausible labels."""

import json
import re
from collections import Counter

import pytest
import simple_icd_10_cm as icd

from rcm.simulation.samples import (
    OFFICE_EM,
    OFFICE_TIME,
    SCENARIOS,
    generate_bundles,
    generate_samples,
)
from rcm.simulation.sites import PAYERS, SITES, npi_check_digit
from services.intake.domain.fhir import parse_intake


def luhn_npi_ok(npi: str) -> bool:
    """Independent check: the Luhn sum over 80840 + all ten digits ends in 0."""
    digits = [int(c) for c in "80840" + npi]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return len(npi) == 10 and total % 10 == 0


@pytest.fixture(scope="module")
def many():
    return generate_samples(400, seed=7)


def age_on(person, on) -> int:
    return (
        on.year
        - person.birth_date.year
        - ((on.month, on.day) < (person.birth_date.month, person.birth_date.day))
    )


def test_luhn_reference_values():
    assert luhn_npi_ok("1234567893")
    assert not luhn_npi_ok("1234567890")
    assert npi_check_digit("123456789") == "3"
    with pytest.raises(ValueError):
        npi_check_digit("12345")


def test_site_and_practitioner_npis_are_valid():
    assert set(SITES) == {"north-clinic", "south-urgent-care", "east-hospital"}
    for site in SITES.values():
        assert luhn_npi_ok(site.organization.npi), site.site_id
        assert re.fullmatch(r"\d{9}", site.organization.tax_id)
        assert 2 <= len(site.practitioners) <= 4
        for doc in site.practitioners:
            assert luhn_npi_ok(doc.npi), doc.last_name
    npis = [s.organization.npi for s in SITES.values()]
    npis += [d.npi for s in SITES.values() for d in s.practitioners]
    assert len(set(npis)) == len(npis)
    assert SITES["south-urgent-care"].place_of_service["office"] == "20"
    assert SITES["east-hospital"].place_of_service == {
        "office": "22",
        "ed": "23",
        "inpatient": "21",
    }


def test_payers():
    assert len(PAYERS) >= 5
    assert PAYERS["MCR01"].filing_indicator == "MB"
    assert PAYERS["MCD01"].filing_indicator == "MC"
    assert PAYERS["BCBS01"].filing_indicator == "BL"


def test_same_seed_same_output():
    assert generate_bundles(25, seed=11) == generate_bundles(25, seed=11)
    a, b = generate_samples(25, seed=11), generate_samples(25, seed=12)
    assert [s.bundle for s in a] != [s.bundle for s in b]
    assert json.dumps(generate_bundles(5, seed=3)) == json.dumps(generate_bundles(5, seed=3))


def test_every_bundle_parses_with_unique_short_ids(many):
    ids = []
    for s in many:
        enc = parse_intake(s.bundle)
        assert enc == s.encounter
        assert re.fullmatch(rf"ENC-{enc.site_id}-7\d{{6}}", enc.encounter_id)
        assert len(enc.encounter_id) <= 38
        ids.append(enc.encounter_id)
    assert len(set(ids)) == len(ids)


def test_ids_differ_across_seeds_and_stay_short():
    seeds = (1, 10, 12345678, 10**12, -5)
    ids = [s.encounter.encounter_id for seed in seeds for s in generate_samples(40, seed=seed)]
    assert len(set(ids)) == len(ids)
    assert max(len(i) for i in ids) <= 38
    assert generate_samples(1, seed=10)[0].encounter.encounter_id.endswith("-10000001")


def test_scenario_library_is_covered(many):
    assert len(SCENARIOS) >= 20
    assert len({s.key for s in SCENARIOS}) == len(SCENARIOS)
    assert {s.scenario for s in many} == {s.key for s in SCENARIOS}
    sites = Counter(s.encounter.site_id for s in many)
    assert set(sites) == set(SITES) and min(sites.values()) > 50


def test_expected_codes_are_billable_icd10cm(many):
    for s in many:
        exp = s.expected
        assert exp["principal_dx"] == exp["diagnoses"][0]
        for code in exp["diagnoses"]:
            assert "." not in code and icd.is_valid_item(code) and icd.is_leaf(code), code
        assert exp["em_code"] is None or re.fullmatch(r"99\d{3}", exp["em_code"])
        assert exp["route"] in ("auto", "review")


def test_ages_fit_scenarios_and_payers(many):
    by_key = {s.key: s for s in SCENARIOS}
    for s in many:
        enc = s.encounter
        age = age_on(enc.patient, enc.service_date)
        low, high = by_key[s.scenario].ages
        assert low <= age <= high, s.scenario
        assert f"{age}-year-old" in enc.note or s.scenario == "sparse_followup_note"
        primary = enc.primary_coverage
        assert (primary.filing_indicator == "MB") == (age >= 65)
        for cov in enc.coverages:
            assert (cov.subscriber is None) == (cov.relationship == "self")
            if cov.relationship == "child":
                assert age_on(cov.subscriber, enc.service_date) >= age + 18


def test_peds_scenarios_are_children(many):
    peds = [s for s in many if s.scenario in ("acute_otitis_media", "well_child_visit")]
    assert peds
    for s in peds:
        assert age_on(s.encounter.patient, s.encounter.service_date) < 18


def test_documented_time_supports_the_expected_em(many):
    timed = 0
    for s in many:
        m = re.search(r"Total time on the date of the encounter: (\d+) minutes", s.encounter.note)
        if not m:
            continue
        timed += 1
        minutes, em = int(m.group(1)), s.expected["em_code"]
        kind = "new" if em in OFFICE_EM["new"] else "established"
        low, high = OFFICE_TIME[kind][OFFICE_EM[kind].index(em)]
        assert low <= minutes <= high
        assert s.encounter.visit_type == kind
        assert s.encounter.length_minutes in (None, minutes)
    assert timed > 20
    assert any(s.encounter.length_minutes for s in many)


def test_review_and_ehr_code_scenarios(many):
    review = [s for s in many if s.expected["route"] == "review"]
    assert {s.scenario for s in review} >= {
        "sparse_followup_note",
        "ankle_sprain_laterality_conflict",
        "ankle_sprain_nonbillable_ehr_code",
    }
    supplied = {d.code for s in review for d in s.encounter.diagnoses}
    assert {"S93.4", "E11.2", "M54.5"} <= supplied
    for s in many:
        if s.scenario == "ankle_sprain_laterality_conflict":
            assert s.encounter.diagnoses[0].code.replace(".", "") != s.expected["principal_dx"]
    sparse = next(s for s in many if s.scenario == "sparse_followup_note")
    assert "Assessment" not in sparse.encounter.note and sparse.encounter.length_minutes is None


def test_settings_and_variety(many):
    encs = [s.encounter for s in many]
    inpatient = [e for e in encs if e.encounter_class == "IMP"]
    assert inpatient and all(
        e.place_of_service == "21" and e.institutional and e.end_date > e.service_date
        for e in inpatient
    )
    assert all(e.place_of_service == "23" for e in encs if e.encounter_class == "EMER")
    assert {e.place_of_service for e in encs} == {"11", "20", "21", "22", "23"}
    assert any(len(e.coverages) == 2 for e in encs)
    assert any(c.relationship == "child" for e in encs for c in e.coverages)
    dumped = [json.dumps(s.bundle) for s in many]
    assert any('"Composition"' in d for d in dumped) and any(
        '"DocumentReference"' in d for d in dumped
    )
    assert any('"reference": "Patient/' in d for d in dumped)
    vaccines = [s for s in many if s.scenario == "flu_vaccine"]
    for s in vaccines:
        medicare = s.encounter.primary_coverage.filing_indicator == "MB"
        assert s.expected["procedures"] == ["90656", "G0008" if medicare else "90471"]


def test_site_filter_and_start_date():
    from datetime import date

    east = generate_samples(30, seed=2, sites=["east-hospital"], start_date=date(2026, 1, 5))
    assert {s.encounter.site_id for s in east} == {"east-hospital"}
    assert all(0 <= (s.encounter.service_date - date(2026, 1, 5)).days < 28 for s in east)
    with pytest.raises(ValueError):
        generate_samples(3, sites=["west-clinic"])
