"""Coding by date of service: codes are checked against the ICD-10-CM release in force.

FY2021 is loaded from the project's CMS-layout fixture (tests/fixtures/icd10cm): there,
M54.5 (low back pain) and E66.8 (other obesity) were billable codes and M54.50 did not exist.
"""

from datetime import date
from pathlib import Path

import pytest
from coding_support import dx_codes, make_enc

from services.coding import codesets
from services.coding.domain import engine
from services.coding.domain.edits import diagnosis_edits
from shared import icd10cm

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "icd10cm"
BACK_PAIN = "Assessment: Low back pain.\nPlan: ibuprofen, stretching, return in 2 weeks."
SPRAIN = "CC: left ankle pain after a fall.\nAssessment: Sprain of left ankle, initial encounter.\nPlan: RICE."


@pytest.fixture
def home(tmp_path: Path):
    icd10cm.load()
    before = icd10cm.home()
    icd10cm.configure(tmp_path)
    yield tmp_path
    icd10cm.configure(before)


@pytest.fixture
def fy2021(home: Path):
    codesets.store_icd10cm(codesets.read_icd10cm([FIXTURES / "icd10cm_order_2021.txt"]))


def edit_codes(result_or_edits) -> list[tuple[str, str]]:
    edits = getattr(result_or_edits, "edits", result_or_edits)
    return [(e.code, e.severity) for e in edits]


def test_an_old_date_without_its_release_is_coded_with_a_warning_not_blocked(home):
    now = engine.code_encounter(make_enc(SPRAIN))
    then = engine.code_encounter(make_enc(SPRAIN, service_date=date(2024, 3, 5)))
    assert dx_codes(then) == dx_codes(now) == ["S93402A"]
    assert then.route == now.route
    assert then.code_set_version == "2026-04"
    assert [e for e in edit_codes(then) if e not in edit_codes(now)] == [
        ("CODE_SET_NOT_LOADED", "warning")
    ]
    missing = next(e for e in then.edits if e.code == "CODE_SET_NOT_LOADED")
    assert "fiscal year 2024" in missing.message and "2024-03-05" not in missing.message
    assert "rcm codesets load --icd10cm" in missing.message


def test_a_date_after_the_newest_release_is_checked_against_it_with_a_warning(home):
    later = engine.code_encounter(make_enc(SPRAIN, service_date=date(2026, 12, 1)))
    assert dx_codes(later) == ["S93402A"]
    assert ("CODE_SET_NOT_LOADED", "warning") in edit_codes(later)
    assert not any(s == "blocking" for _, s in edit_codes(later))


def test_the_release_in_force_decides_and_names_itself(fy2021):
    r = engine.code_encounter(make_enc(BACK_PAIN, service_date=date(2021, 3, 1)))
    assert r.code_set_version == "2021"
    assert dx_codes(r) == ["M545"]  # the bundled release would say M54.50, new in FY2022
    assert ("DX_CODE_FOR_DATE", "info") in edit_codes(r)
    assert not any(code.startswith(("DX_INVALID", "CODE_SET")) for code, _ in edit_codes(r))
    today = engine.code_encounter(make_enc(BACK_PAIN))
    assert dx_codes(today) == ["M5450"] and today.code_set_version == "2026-04"
    assert "DX_CODE_FOR_DATE" not in [c for c, _ in edit_codes(today)]


def test_an_ehr_code_billable_then_is_kept(fy2021):
    note = "Assessment: Acute bronchitis.\nPlan: fluids."
    then = engine.code_encounter(make_enc(note, dx=["E66.8"], service_date=date(2021, 3, 1)))
    assert dx_codes(then) == ["J209", "E668"]
    assert "DX_NOT_BILLABLE" not in [c for c, _ in edit_codes(then)]
    now = engine.code_encounter(make_enc(note, dx=["E66.8"]))
    assert ("DX_NOT_BILLABLE", "blocking") in edit_codes(now)  # a header since FY2025


def test_final_codes_are_validated_against_the_release_in_force(fy2021):
    on = date(2021, 3, 1)
    assert edit_codes(diagnosis_edits(["M54.5", "I10"], 50, "M", on)) == []
    invalid = diagnosis_edits(["M54.50"], 50, "M", on)
    assert edit_codes(invalid) == [("DX_INVALID", "blocking")]
    assert "not an ICD-10-CM 2021 code" in invalid[0].message
    assert edit_codes(diagnosis_edits(["E66"], 50, "M", on)) == [("DX_NOT_BILLABLE", "blocking")]
    assert edit_codes(diagnosis_edits(["S93.401"], 50, "M", on)) == [
        ("DX_7TH_CHARACTER", "blocking")
    ]
    # a date the loaded releases do not cover: the nearest one answers, with a warning
    assert edit_codes(diagnosis_edits(["M54.5"], 50, "M", date(2019, 6, 3))) == [
        ("CODE_SET_NOT_LOADED", "warning")
    ]
    enc = make_enc(BACK_PAIN, service_date=on)
    final = engine.validate_final_codes(
        enc, ["M54.50"], [{"code": "99213", "units": 1, "diagnosis_pointers": [1]}]
    )
    assert edit_codes(final) == [("DX_INVALID", "blocking")]
