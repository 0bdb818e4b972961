"""The real-world corpus (tests/fixtures/realworld/fhir, written by others) through intake and
the offline coding engine: nothing raises, at least 95 % of the inputs holding an Encounter
give an encounter, and every refusal is the one docs/fhir-intake.md lists."""

import re
from pathlib import Path

import pytest

from services.coding.domain.engine import code_encounter, validate_final_codes
from services.intake.domain.fhir import parse_fhir

ROOT = Path(__file__).resolve().parents[3]
CORPUS = ROOT / "tests/fixtures/realworld/fhir"
DOC = ROOT / "docs/fhir-intake.md"
_ENCOUNTER = re.compile(rb'"resourceType"\s*:\s*"Encounter"')
# A refusal's reason, by the problem intake reports (docs/fhir-intake.md uses these words).
_REASONS = {
    "expected an Encounter resource; none found": "no Encounter resource",
    "expected an Encounter (or a Bundle holding one)": "no Encounter resource",
    "required: the date of service": "no date of service anywhere",
}


def _inputs() -> list[Path]:
    return sorted(p for p in CORPUS.rglob("*") if p.suffix in (".json", ".ndjson"))


def _reason(message: str) -> str:
    return next(r for prefix, r in _REASONS.items() if message.startswith(prefix))


@pytest.fixture(scope="module")
def results():
    return {
        p.relative_to(CORPUS).as_posix(): (p.read_bytes(), parse_fhir(p.read_bytes()))
        for p in _inputs()
    }


def test_the_corpus_is_there():
    assert len(_inputs()) >= 78


def test_every_input_is_mapped_and_coded_without_raising(results):
    coded = no_birth_date = 0
    for name, (_, result) in results.items():
        for pe in result.encounters:
            no_birth_date += pe.encounter.patient.birth_date is None
            assert code_encounter(pe.encounter).route in ("auto", "review"), name
            coded += 1
    assert coded > 300 and 0 < no_birth_date <= 5


def test_an_encounter_without_birth_date_goes_to_a_coder_with_the_reason(results):
    """A real input without a birth date (intake lets it through; billing holds the claim):
    coding reads it, routes it to review with AGE_UNKNOWN, and runs no age edit."""
    pe = next(
        pe
        for _, result in results.values()
        for pe in result.encounters
        if pe.encounter.patient.birth_date is None
    )
    result = code_encounter(pe.encounter)
    assert result.route == "review"
    codes = [e.code for e in result.edits]
    assert "AGE_UNKNOWN" in codes
    assert not any(c in ("DX_AGE_CONFLICT",) for c in codes)
    assert next(e for e in result.edits if e.code == "AGE_UNKNOWN").severity == "blocking"


def test_a_coder_may_finalise_an_encounter_without_birth_date(results):
    """The coder's final codes are checked without the age edits: a warning, not a block."""
    pe = next(
        pe
        for _, result in results.values()
        for pe in result.encounters
        if pe.encounter.patient.birth_date is None
    )
    # Z00.129 is a child's preventive visit: with an age it may conflict; without one it cannot.
    edits = validate_final_codes(pe.encounter, ["Z00129"], [])
    age = [e for e in edits if e.code == "AGE_UNKNOWN"]
    assert len(age) == 1 and age[0].severity == "warning"
    assert not any(e.code.startswith("DX_AGE") for e in edits)


def test_at_least_95_percent_of_inputs_with_an_encounter_give_one(results):
    holding = [n for n, (raw, _) in results.items() if _ENCOUNTER.search(raw)]
    accepted = [n for n in holding if results[n][1].encounters]
    assert len(holding) >= 20
    assert len(accepted) / len(holding) >= 0.95, sorted(set(holding) - set(accepted))


def _documented(section: str) -> set[tuple[str, ...]]:
    text = DOC.read_text()
    body = text.split(f"### {section}\n", 1)[1].split("\n#", 1)[0]
    rows = set()
    for line in body.splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if line.startswith("| `"):
            rows.add(tuple(cells))
    return rows


def test_every_refused_input_is_documented_with_its_reason(results):
    refused = {
        (name, _reason(result.problems[0].message))
        for name, (_, result) in results.items()
        if not result.encounters
    }
    assert refused == _documented("Refused inputs")


def test_every_refused_encounter_of_an_accepted_input_is_documented(results):
    refused = {
        (name, p.path, _reason(p.message))
        for name, (_, result) in results.items()
        if result.encounters
        for p in result.problems
    }
    assert refused == _documented("Encounters refused inside accepted inputs")


def test_no_warning_or_problem_carries_phi(results):
    for name, (_, result) in results.items():
        phi = set()
        for pe in result.encounters:
            p = pe.encounter.patient
            phi |= {p.first_name, p.last_name, p.birth_date and p.birth_date.isoformat()}
            phi |= {p.address.line1 if p.address else None}
            phi |= {c.member_id for c in pe.encounter.coverages}
        phi = {v for v in phi if v and len(v) >= 4}
        told = [p.message for p in result.problems + result.warnings]
        told += [f"{w.path} {w.message}" for pe in result.encounters for w in pe.warnings]
        told += [m for pe in result.encounters for m in pe.missing]
        text = "\n".join(told)
        assert not [v for v in phi if v in text], name
