"""`rcm codesets load --icd10cm FILE --offline` and `rcm codesets list`, then coding a visit
of that fiscal year (the release fixture is the project's, in CMS's order-file layout)."""

from datetime import date
from pathlib import Path

import pytest
from coding_support import make_enc

from rcm.cli.main import main
from services.coding.domain.engine import code_encounter, offline_json
from shared import icd10cm

ROOT = Path(__file__).resolve().parents[3]
ORDER = ROOT / "tests" / "fixtures" / "icd10cm" / "icd10cm_order_2021.txt"
SPRAIN = "CC: left ankle pain after a fall.\nAssessment: Sprain of left ankle, initial encounter.\nPlan: RICE."


@pytest.fixture
def home(tmp_path: Path):
    icd10cm.load()
    before = icd10cm.home()
    icd10cm.configure(tmp_path / "home")
    yield tmp_path / "home"
    icd10cm.configure(before)


def test_load_offline_then_list_then_code_a_visit_of_that_year(home, capsys):
    assert main(["codesets", "load", "--icd10cm", str(ORDER), "--offline"]) == 0
    out = capsys.readouterr().out
    assert "icd10cm 2021: 44 codes (28 billable)" in out and "from 2020-10-01" in out
    assert (home / "codesets" / "icd10cm" / "2021.json").is_file()

    assert main(["codesets", "list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in listed] == ["icd10cm 2021", "icd10cm 2026-04"]
    assert listed[0].split("\t")[1:] == ["dates of service 2020-10-01 to 2021-09-30", "loaded"]
    assert listed[1].split("\t")[1:] == ["dates of service 2025-10-01 to 2026-09-30", "bundled"]

    # a sprain seen in March 2021 is coded against the release just loaded
    visit = make_enc(SPRAIN, service_date=date(2021, 3, 8))
    coded = offline_json(code_encounter(visit))
    assert coded["code_set_version"] == "2021"
    assert [d["code"] for d in coded["diagnoses"]] == ["S93402A"]
    assert not [e for e in coded["edits"] if e["severity"] == "blocking"]


def test_load_refuses_what_it_cannot_use(home, tmp_path, capsys):
    assert main(["codesets", "load", "--icd10cm", str(tmp_path / "nope.txt"), "--offline"]) == 2
    assert "nope.txt: no such file" in capsys.readouterr().err
    unnamed = tmp_path / "order.txt"
    unnamed.write_bytes(ORDER.read_bytes())
    assert main(["codesets", "load", "--icd10cm", str(unnamed), "--offline"]) == 2
    assert "--release YYYY" in capsys.readouterr().err
    assert main(["codesets", "load", "--offline"]) == 2
    assert "--offline stores --icd10cm files" in capsys.readouterr().err
    assert main(["codesets", "load", "--release", "2021"]) == 2
    assert "give them too" in capsys.readouterr().err
    assert not (home / "codesets").exists()
    assert (
        main(["codesets", "load", "--icd10cm", str(unnamed), "--release", "2021", "--offline"]) == 0
    )
    assert "icd10cm 2021: 44 codes" in capsys.readouterr().out
