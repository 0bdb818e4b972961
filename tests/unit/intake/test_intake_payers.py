"""Payer ids by rule: the EHR's payer identifier, else the registry's payer id, else none (an
empty id, named in ``missing`` for a biller); a payer is never missing its id because the id
reads like its name. Self-pay never becomes a payer, on a real input written by others."""

from pathlib import Path

from services.intake.domain.fhir import parse_fhir
from services.intake.domain.registry import Payer, Registry
from tests.unit.intake.test_intake_lenient import PATIENT, coverage, parsed
from tests.unit.intake.test_intake_references import DOC, ORG, entry

ROOT = Path(__file__).resolve().parents[3]
# microsoft/fhir-server's SmartPatientA (MIT; tests/fixtures/realworld/fhir/SOURCES.md): an
# Encounter whose patient's only Coverage is paid by the patient (payor = the Patient).
SMART_PATIENT_A = ROOT / "tests/fixtures/realworld/fhir/ms-fhir-server/SmartPatientA.json"


def test_a_payer_known_by_name_only_has_no_id_and_it_is_missing():
    payer = entry("Organization", "payer", name="UnitedHealthcare")
    pe = parsed(PATIENT, ORG, DOC, coverage(), payer)
    cov = pe.encounter.primary_coverage
    assert (cov.payer_id, cov.payer_name) == ("", "UnitedHealthcare")
    assert "coverage.payer_id" in pe.missing


def test_the_registrys_payer_id_is_used_even_when_it_reads_like_the_name():
    payer = entry("Organization", "payer", name="AETNA")
    registry = Registry(sites=[], providers=[], payers=[Payer(payer_id="AETNA", name="AETNA")])
    pe = parsed(PATIENT, ORG, DOC, coverage(), payer, registry=registry)
    assert (pe.encounter.primary_coverage.payer_id, pe.encounter.primary_coverage.payer_name) == (
        "AETNA",
        "AETNA",
    )
    assert "coverage.payer_id" not in pe.missing


def test_the_ehrs_payer_identifier_wins():
    payer = entry(
        "Organization",
        "payer",
        name="Aetna",
        identifier=[{"system": "urn:rcm:payer-id", "value": "Aetna"}],
    )
    pe = parsed(PATIENT, ORG, DOC, coverage(), payer)
    assert pe.encounter.primary_coverage.payer_id == "Aetna"
    assert "coverage.payer_id" not in pe.missing


def test_two_name_only_payers_stay_two_coverages():
    first = entry("Organization", "p1", name="Plan One")
    second = entry("Organization", "p2", name="Plan Two")
    pe = parsed(
        PATIENT,
        ORG,
        DOC,
        coverage("c1", payor=[{"reference": "Organization/p1"}], order=1),
        coverage("c2", payor=[{"reference": "Organization/p2"}], order=2),
        first,
        second,
    )
    assert [(c.payer_id, c.payer_name, c.sequence) for c in pe.encounter.coverages] == [
        ("", "Plan One", "primary"),
        ("", "Plan Two", "secondary"),
    ]


def test_a_real_coverage_paid_by_the_patient_is_never_a_payer():
    result = parse_fhir(SMART_PATIENT_A.read_bytes())
    [pe] = result.encounters
    assert pe.encounter.coverages == []
    assert "coverage" not in pe.missing  # the patient pays: nothing for a biller to supply
    assert "self-pay coverage: the patient pays; not a payer" in [w.message for w in pe.warnings]
