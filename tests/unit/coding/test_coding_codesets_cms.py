"""Reading CMS ICD-10-CM release files (order file, tabular list, zips) and keeping them.

The fixtures (tests/fixtures/icd10cm, see its README) are made by the project in CMS's
layouts; they are not CMS files.
"""

import zipfile
from datetime import date
from pathlib import Path

import pytest

from services.coding import codesets
from shared import icd10cm

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "icd10cm"
ORDER = FIXTURES / "icd10cm_order_2021.txt"
TABULAR = FIXTURES / "icd10cm_tabular_2021.xml"


@pytest.fixture
def home(tmp_path: Path):
    icd10cm.load()
    before = icd10cm.home()
    icd10cm.configure(tmp_path / "home")
    yield tmp_path / "home"
    icd10cm.configure(before)


def test_order_file_columns():
    rel = codesets.read_icd10cm([ORDER])
    assert (rel.version, rel.source, rel.tabular) == ("2021", ORDER.name, None)
    assert len(rel.codes) == 44
    assert rel.codes["A00"] == (False, "Cholera")
    assert rel.codes["M545"] == (True, "Low back pain")
    assert rel.codes["S93402A"] == (
        True,
        "Sprain of unspecified ligament of left ankle, initial encounter",
    )
    assert "M5450" not in rel.codes


def test_tabular_list_alone_gives_codes_and_seventh_character_extensions():
    rel = codesets.read_icd10cm([TABULAR])
    assert rel.version == "2021"  # from the name; the <version> element says the same
    assert rel.codes["S93401A"] == (
        True,
        "Sprain of unspecified ligament of right ankle, initial encounter",
    )
    assert rel.codes["S93401"][0] is False and rel.codes["E668"][0] is True
    assert rel.codes["U071"] == (True, "COVID-19")  # a one-category section (U07)
    assert not any(c.startswith("E66") and len(c) > 4 for c in rel.codes)


def test_order_file_and_tabular_list_together_give_notes_in_postgres_rows():
    rel = codesets.read_icd10cm([ORDER, TABULAR])
    assert len(rel.codes) == 44  # the order file decides the codes
    rows = {r[1]: r for r in codesets.release_records(rel)}
    cols = codesets.ICD10CM_COLUMNS
    e1122 = dict(zip(cols, rows["E1122"], strict=True))
    assert e1122["version"] == "2021" and e1122["parent"] == "E112"
    assert e1122["excludes1"] == ["type 1 diabetes mellitus (E10.-)"]  # inherited from E11
    assert e1122["use_additional"][0].endswith("(N18.1-N18.6)")
    s = dict(zip(cols, rows["S93401A"], strict=True))
    assert s["parent"] == "S93401" and '"A": "initial encounter"' in s["seventh_chars"]
    assert dict(zip(cols, rows["M545"], strict=True))["excludes1"] == []  # not in the excerpt


def test_a_cms_zip_is_read_and_other_members_skipped(tmp_path: Path):
    z = tmp_path / "2021-code-descriptions-tabular-order.zip"
    with zipfile.ZipFile(z, "w") as f:
        f.write(ORDER, "Code Descriptions/icd10cm_order_2021.txt")
        f.writestr("Code Descriptions/icd10cm_codes_2021.txt", "A000    Cholera due to ...\n")
        f.writestr("icd10OrderFiles.pdf", b"%PDF-1.4")
    rel = codesets.read_icd10cm([z])
    assert rel.version == "2021" and len(rel.codes) == 44


def test_release_names():
    assert codesets.version_from_name("icd10cm_order_2024.txt") == "2024"
    assert codesets.version_from_name("icd10cm-order-2025.txt") == "2025"
    assert codesets.version_from_name("icd10cm-order-April-1-2026.txt") == "2026-04"
    assert codesets.version_from_name("icd10cm-tabular-April-2025.xml") == "2025-04"
    assert codesets.version_from_name("updated-02012024.zip") is None
    assert codesets.version_from_name("order.txt") is None


def test_the_release_can_be_named_when_the_files_do_not_say(tmp_path: Path):
    plain = tmp_path / "order.txt"
    plain.write_bytes(ORDER.read_bytes())
    with pytest.raises(ValueError, match="--release YYYY"):
        codesets.read_icd10cm([plain])
    assert codesets.read_icd10cm([plain], "2021-04").version == "2021-04"
    with pytest.raises(ValueError, match="expected YYYY"):
        codesets.read_icd10cm([plain], "April 2021")


def test_files_of_two_releases_are_refused(tmp_path: Path):
    other = tmp_path / "icd10cm_order_2022.txt"
    other.write_bytes(ORDER.read_bytes())
    with pytest.raises(ValueError, match="different ICD-10-CM releases"):
        codesets.read_icd10cm([ORDER, other])


def test_a_file_not_in_the_order_layout_is_refused_by_line(tmp_path: Path):
    lines = ORDER.read_text().splitlines()
    bad = tmp_path / "icd10cm_order_2021.txt"
    bad.write_text("\n".join([*lines[:3], "A000    Cholera due to Vibrio cholerae", *lines[3:]]))
    with pytest.raises(ValueError, match=r"icd10cm_order_2021.txt: line 4: expected the CMS order"):
        codesets.read_icd10cm([bad])
    pcs = tmp_path / "icd10pcs_order_2021.txt"
    pcs.write_text(
        "00001 001     0 Medical and Surgical, Central Nervous System" + " " * 20 + "x\n"
    )
    with pytest.raises(ValueError, match="line 1: columns 7-13 hold no ICD-10-CM code"):
        codesets.read_icd10cm([pcs])
    empty = tmp_path / "icd10cm_order_2020.txt"
    empty.write_text("\n")
    with pytest.raises(ValueError, match="no codes"):
        codesets.read_icd10cm([empty])


def test_a_broken_tabular_list_is_refused_by_file(tmp_path: Path):
    broken = tmp_path / "icd10cm_tabular_2021.xml"
    broken.write_text("<ICD10CM.tabular><chapter>")
    with pytest.raises(ValueError, match="icd10cm_tabular_2021.xml: not well-formed XML"):
        codesets.read_icd10cm([broken])
    other = tmp_path / "icd10cm_index_2021.xml"
    other.write_text("<ICD10CM.index><version>2021</version></ICD10CM.index>")
    with pytest.raises(ValueError, match="not an ICD-10-CM tabular list"):
        codesets.read_icd10cm([other])
    z = tmp_path / "tables.zip"
    with zipfile.ZipFile(z, "w") as f:
        f.writestr("icd10cm_index_2021.xml", "<ICD10CM.index/>")
    with pytest.raises(ValueError, match="tables.zip: the zip holds no icd10cm order file"):
        codesets.read_icd10cm([z])


def test_stored_release_answers_dates_of_service(home: Path):
    released = codesets.store_icd10cm(codesets.read_icd10cm([ORDER, TABULAR]))
    assert released == icd10cm.Release("2021")
    assert (home / "codesets" / "icd10cm" / "2021.json").is_file()
    assert icd10cm.check("M54.5", date(2021, 6, 1)) == icd10cm.CodeCheck(True, "2021", True)
    assert icd10cm.check("M54.50", date(2021, 6, 1)).billable is None
    assert icd10cm.check("M54.5", date(2022, 6, 1)).release == "2021"  # FY2022: nearest
