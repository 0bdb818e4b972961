"""The offline commands users and scripts rely on: `rcm code`, `rcm claim`, `rcm era`, and their errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from services.payments.domain.balancing import check_era
from services.payments.domain.era import parse_835
from tests.x12_support import pyx12_validate

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
VIGNETTES = FIXTURES / "vignettes"
LABELS = json.loads((VIGNETTES / "labels.json").read_text())


def rcm(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rcm.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize("name", ["derm_acne_eczema", "uc_ankle_sprain_left", "pc_dm_ckd_htn"])
def test_rcm_code_prints_the_contract_json(name):
    path = VIGNETTES / f"{name}.json"
    if not path.exists():
        pytest.skip(f"vignette {name} not in this checkout")
    r = rcm("code", str(path))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out) >= {"diagnoses", "procedures", "route", "edits"}
    assert out["route"] in ("auto", "review")
    label = LABELS[name]
    assert out["diagnoses"][0]["code"] == label["principal"]
    for p in out["procedures"]:
        assert set(p) >= {"code", "modifiers", "units", "diagnosis_pointers"}
    for e in out["edits"]:
        assert set(e) >= {"code", "severity", "message"}


def _sample_bundle(tmp_path) -> tuple[Path, dict]:
    from datetime import date, timedelta

    from rcm.simulation.samples import generate_samples
    from services.coding.domain import engine
    from services.intake.domain.fhir import parse_intake

    for s in generate_samples(40, seed=21, start_date=date.today() - timedelta(days=30)):
        enc = parse_intake(s.bundle)
        if (
            enc.institutional is None
            and engine.code_encounter(enc).route == "auto"
            and s.expected["em_code"]
        ):
            path = tmp_path / "encounter.json"
            path.write_text(json.dumps(s.bundle))
            return path, s.expected
    raise AssertionError("no auto-coded office sample")


def test_rcm_claim_prints_a_pyx12_valid_837(tmp_path):
    path, expected = _sample_bundle(tmp_path)
    r = rcm("claim", str(path))
    assert r.returncode == 0, r.stderr
    assert "sample chargemaster" in r.stderr  # it says which prices it used
    text = r.stdout
    assert text.startswith("ISA*") and "ST*837*" in text and "005010X222A1" in text
    ok, errors = pyx12_validate(text)
    assert ok, errors[:5]
    assert f"HC:{expected['em_code']}" in text  # the E/M line is billed


def test_rcm_claim_holds_a_claim_the_scrubber_refuses(tmp_path):
    # Vignette sites carry 5-digit ZIPs: an 837 billing provider needs ZIP+4.
    r = rcm("claim", str(VIGNETTES / "derm_acne_eczema.json"))
    assert r.returncode == 2 and "BILLING_ZIP_NOT_ZIP4" in r.stderr and "ISA*" not in r.stdout


def test_rcm_claim_with_a_bad_chargemaster_names_the_row(tmp_path):
    bad = tmp_path / "cm.csv"
    bad.write_text("code,modifier,description,price,revenue_code\n99213,,visit,abc,0510\n")
    path, _ = _sample_bundle(tmp_path)
    r = rcm("claim", str(path), "--chargemaster", str(bad))
    assert r.returncode == 2
    assert "price" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize(
    "sample", sorted((FIXTURES / "x12" / "835").glob("*/*.835")), ids=lambda p: p.name
)
def test_rcm_era_matches_the_parser_and_balances(sample):
    r = rcm("era", str(sample))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out) >= {"payer", "payment", "claims", "provider_adjustments"}
    assert set(out["payment"]) >= {"amount", "method", "trace_number", "date"}
    era = parse_835(sample.read_text())
    assert len(out["claims"]) == sum(len(t.claims) for t in era.transactions)
    for c in out["claims"]:
        assert set(c) >= {
            "patient_control_number",
            "status_code",
            "charge",
            "paid",
            "patient_responsibility",
            "payer_claim_control_number",
            "adjustments",
            "service_lines",
        }
        assert isinstance(c["charge"], str) and isinstance(
            c["paid"], str
        )  # decimal strings, never floats
    if (
        sample.name != "tertiary-payment.835"
    ):  # its SVC composite is malformed (see tests/unit/payments)
        assert check_era(era) == []


def test_rcm_era_on_a_truncated_file_is_one_line_naming_the_segment(tmp_path):
    good = (FIXTURES / "x12" / "835" / "authored" / "denied-lq.835").read_text()
    cut = tmp_path / "cut.835"
    cut.write_text(good[: len(good) // 2])
    r = rcm("era", str(cut))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "segment" in lines[0] and "Traceback" not in r.stderr


def test_bad_input_files_give_one_line_and_exit_2(tmp_path):
    notjson = tmp_path / "x.json"
    notjson.write_text("{nope")
    r = rcm("code", str(notjson))
    assert r.returncode == 2 and "not valid JSON" in r.stderr
    bad = tmp_path / "b.json"
    bad.write_text(json.dumps({"resourceType": "Bundle", "type": "collection", "entry": []}))
    r = rcm("code", str(bad))
    assert r.returncode == 2 and "Encounter" in r.stderr
    r = rcm("era", str(tmp_path / "missing.835"))
    assert r.returncode == 2 and "cannot read" in r.stderr


SYNTHEA = (
    FIXTURES
    / "realworld"
    / "fhir"
    / "google-fhir-data-pipes"
    / "Bob965_Keeling57_3f6fd0bb-6cd3-eb3f-4401-cd38ace25f2b.json"
)


def test_rcm_code_takes_many_files_and_lists_every_problem(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "encounter_id": "E-bad",
                "site_id": "s",
                "service_date": "Zqx-never",
                "billing_provider": {"name": "x"},
                "patient": {"first_name": "Zqx", "last_name": "Y", "birth_date": "Zqx-date"},
            }
        )
    )
    one, two = VIGNETTES / "uc_ankle_sprain_left.json", VIGNETTES / "derm_acne_eczema.json"
    r = rcm("code", str(one), str(bad), str(two))
    assert r.returncode == 2
    out = json.loads(r.stdout)  # what could be coded still is
    assert [(o["file"], o["encounter_id"]) for o in out] == [
        (str(one), "ENC-uc-ankle-sprain-left"),
        (str(two), "ENC-derm-acne-eczema"),
    ]
    assert all(set(o) >= {"diagnoses", "procedures", "route", "edits"} for o in out)
    assert f"{bad}: service_date:" in r.stderr and f"{bad}: patient.birth_date:" in r.stderr
    assert "Zqx" not in r.stderr and "Traceback" not in r.stderr


def test_rcm_code_on_a_whole_patient_bundle_prints_each_encounter_or_the_one_chosen():
    r = rcm("code", str(SYNTHEA))
    assert r.returncode in (0, 2), r.stderr
    out = json.loads(r.stdout)
    assert isinstance(out, list) and len(out) > 1
    chosen = out[3]["encounter_id"]
    r = rcm("code", str(SYNTHEA), "--encounter", chosen)
    single = json.loads(r.stdout)
    assert set(single) >= {"diagnoses", "procedures", "route", "edits"}
    assert "encounter_id" not in single  # one encounter: the contract's object, as before
    r = rcm("code", str(SYNTHEA), "--encounter", "no-such-encounter")
    assert r.returncode == 2 and "no encounter 'no-such-encounter'" in r.stderr
