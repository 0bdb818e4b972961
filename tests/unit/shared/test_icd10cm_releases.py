"""ICD-10-CM releases by date of service, the release store and the on-disk caches.

The loaded releases here are made in the test (a few codes); the CMS file readers are
tested in tests/unit/coding/test_coding_codesets_cms.py.
"""

import marshal
from datetime import date
from pathlib import Path

import pytest

from shared import icd10cm


@pytest.fixture
def home(tmp_path: Path):
    """An empty RCM_HOME: only the bundled release (2026-04) is known."""
    icd10cm.load()  # the bundled code set from the real cache, before the home moves
    before = icd10cm.home()
    icd10cm.configure(tmp_path)
    yield tmp_path
    icd10cm.configure(before)


def fy2021() -> dict[str, bool]:
    # as in FY2021: M54.5 and E66.8 billable; M54.50 and E66.811 not yet codes
    return {"M54": False, "M545": True, "E66": False, "E668": True, "I10": True, "J209": True}


def test_versions_and_fiscal_years():
    assert icd10cm.parse_version("2024") == (2024, None)
    assert icd10cm.parse_version("2024-04") == (2024, 4)
    for bad in ("24", "2024-10", "2024-4", "2015", "FY2024", "2024-04-01"):
        with pytest.raises(ValueError, match="expected YYYY"):
            icd10cm.parse_version(bad)
    assert icd10cm.fiscal_year(date(2023, 9, 30)) == 2023
    assert icd10cm.fiscal_year(date(2023, 10, 1)) == 2024
    oct_release, april = icd10cm.Release("2024"), icd10cm.Release("2024-04")
    assert oct_release.effective_from == date(2023, 10, 1)
    assert april.effective_from == date(2024, 4, 1) and april.fiscal_year == 2024
    assert april.fiscal_year_end == date(2024, 9, 30)


def test_only_the_bundled_release_answers_every_date_from_the_nearest(home):
    assert [r.version for r in icd10cm.releases()] == ["2026-04"]
    # in force: its fiscal year, from October 1 (the April update adds a handful of codes)
    assert icd10cm.check("E11.22", date(2026, 5, 1)) == icd10cm.CodeCheck(True, "2026-04", True)
    assert icd10cm.check("E11.22", date(2025, 10, 1)).exact is True
    # before and after: the nearest release answers, and says it is not the one in force
    assert icd10cm.check("E11.22", date(2025, 9, 30)) == icd10cm.CodeCheck(True, "2026-04", False)
    assert icd10cm.check("E11.22", date(2027, 1, 5)) == icd10cm.CodeCheck(True, "2026-04", False)
    assert icd10cm.check("E11.2", date(2019, 1, 1)).billable is False
    assert icd10cm.check("Q99.99X", date(2026, 5, 1)).billable is None


def test_a_missing_release_never_makes_a_code_unknown(home):
    # the bug of issue 17: every code of a 2024 visit was "not in the code set"
    assert icd10cm.billable_on("S93.401A", date(2024, 3, 5)) is True
    assert icd10cm.billable_on("E11.2", date(2024, 3, 5)) is False
    # the billing scrubber's question keeps its old answer until billing moves to billable_on
    assert icd10cm.is_billable_on("S93.401A", date(2024, 3, 5)) is None
    assert icd10cm.is_billable_on("S93.401A", date(2026, 11, 5)) is True


def test_a_loaded_release_answers_for_its_fiscal_year(home):
    icd10cm.save_release("2021", "test", fy2021())
    assert (home / "codesets" / "icd10cm" / "2021.json").is_file()
    assert [r.version for r in icd10cm.releases()] == ["2021", "2026-04"]
    on = date(2021, 3, 1)
    assert icd10cm.check("M54.5", on) == icd10cm.CodeCheck(True, "2021", True)
    assert icd10cm.check("M54.50", on) == icd10cm.CodeCheck(None, "2021", True)
    assert icd10cm.check("E66.8", on).billable is True
    assert icd10cm.check("M54.5", date(2026, 3, 1)) == icd10cm.CodeCheck(False, "2026-04", True)
    # FY2020 and FY2019 are not loaded: FY2021 is nearest; FY2024 is nearer to FY2026
    assert icd10cm.release_for(date(2019, 12, 1)) == (icd10cm.Release("2021"), False)
    assert icd10cm.release_for(date(2023, 12, 1)) == (icd10cm.Release("2026-04"), False)
    assert icd10cm.release_for(date(2022, 12, 1)) == (icd10cm.Release("2021"), False)
    # the strict answer now starts with the oldest loaded fiscal year
    assert icd10cm.is_billable_on("M54.5", date(2020, 10, 1)) is True
    assert icd10cm.is_billable_on("M54.5", date(2020, 9, 30)) is None


def test_an_april_update_takes_over_from_april_first(home):
    icd10cm.save_release("2021", "october", fy2021())
    icd10cm.save_release("2021-04", "april", fy2021() | {"U071": True})
    assert icd10cm.release_for(date(2021, 3, 31)) == (icd10cm.Release("2021"), True)
    assert icd10cm.release_for(date(2021, 4, 1)) == (icd10cm.Release("2021-04"), True)
    assert icd10cm.check("U07.1", date(2021, 3, 31)).billable is None
    assert icd10cm.check("U07.1", date(2021, 4, 1)).billable is True


def test_another_process_sees_a_stored_release_and_a_reload_replaces_it(home):
    icd10cm.save_release("2021", "first", fy2021())
    icd10cm.configure(home)  # as a fresh process would find it
    assert icd10cm.billable_on("J20.9", date(2021, 1, 4)) is True
    icd10cm.save_release("2021", "second", {"J20": False, "J209": False, "I10": True})
    assert icd10cm.billable_on("J20.9", date(2021, 1, 4)) is False


def test_a_damaged_stored_release_is_skipped_not_fatal(home):
    icd10cm.save_release("2021", "test", fy2021())
    (home / "codesets" / "icd10cm" / "2021.json").write_text("{not json")
    icd10cm.configure(home)
    assert icd10cm.check("M54.5", date(2021, 3, 1)) == icd10cm.CodeCheck(False, "2026-04", False)


def test_saving_refuses_bad_releases(home):
    with pytest.raises(ValueError, match="bundled release"):
        icd10cm.save_release("2026-04", "x", fy2021())
    with pytest.raises(ValueError, match="not shaped like an ICD-10-CM code"):
        icd10cm.save_release("2021", "x", {"M54.5": True})
    with pytest.raises(ValueError, match="no billable code"):
        icd10cm.save_release("2021", "x", {"M54": False})
    with pytest.raises(ValueError, match="expected YYYY"):
        icd10cm.save_release("21", "x", fy2021())
    assert not (home / "codesets").exists()


def test_one_category_sections_do_not_hide_their_code():
    # B20 (HIV disease) and Z66 (DNR) are alone in their sections, whose ids are the code
    for code in ("B20", "Z66", "R99", "F99"):
        assert icd10cm.is_billable(code), code
    assert icd10cm.ancestors("B20") == ["B20-B20", "ch1"] and icd10cm.chapter("B20") == "1"


def test_cached_builds_once_and_rebuilds_what_it_cannot_read(home):
    builds = []

    def build():
        builds.append(1)
        return {"codes": ["A00", "B20"], "weights": {"a": 1.5}}

    first = icd10cm.cached("thing", "k1", build)
    again = icd10cm.cached("thing", "k1", build)
    assert (first["codes"], again["weights"]) == (["A00", "B20"], {"a": 1.5})
    assert len(builds) == 1
    path = home / "cache" / "thing-k1.cache"
    path.write_bytes(b"\x00garbage")
    assert icd10cm.cached("thing", "k1", build)["codes"] == ["A00", "B20"] and len(builds) == 2
    assert icd10cm.cached("thing", "k1", build)["codes"] == ["A00", "B20"] and len(builds) == 2
    for k in ("k2", "k3", "k4"):
        icd10cm.cached("thing", k, build)
    assert len(list((home / "cache").glob("thing-*.cache"))) == 3  # older keys pruned
    assert not list((home / "cache").glob(".*tmp"))


def test_cached_works_without_a_writable_home(tmp_path):
    before = icd10cm.home()
    blocker = tmp_path / "file"
    blocker.write_text("")
    icd10cm.configure(blocker)  # "home" is a file: nothing can be written under it
    try:
        assert icd10cm.cached("thing", "k", lambda: {"x": [1, 2]})["x"] == [1, 2]
    finally:
        icd10cm.configure(before)


def test_a_cached_tabular_list_answers_like_the_parsed_one_before_and_after_flatten():
    xml = Path(__file__).resolve().parents[2] / "fixtures" / "icd10cm" / "icd10cm_tabular_2021.xml"
    parsed = icd10cm.parse_tabular(xml.read_bytes())
    values = icd10cm._to_parts(parsed)
    cached = icd10cm.Tabular(icd10cm.Parts({k: marshal.dumps(v) for k, v in values.items()}))
    codes = [*parsed.order, "E11.99", "Z99", "ch4", "E08-E13", "U07-U07"]
    for step in ("category by category", "flattened"):
        for c in codes:
            assert cached.is_valid(c) == parsed.is_valid(c), (step, c)
            assert cached.is_billable(c) == parsed.is_billable(c), (step, c)
            assert cached.chain(c) == parsed.chain(c), (step, c)
            assert cached.own_notes(c, "excludes1") == parsed.own_notes(c, "excludes1")
            assert cached.seven_def(c) == parsed.seven_def(c), (step, c)
        cached.flatten()
    assert cached.desc == parsed.desc and cached.order == parsed.order
    assert parsed.is_billable("U071") and parsed.chain("U071") == ("U07", "U07-U07", "ch22")


def test_a_truncated_cache_file_is_rebuilt(home):
    icd10cm.cached("thing", "k", lambda: {"a": list(range(1000)), "b": "x"})
    path = home / "cache" / "thing-k.cache"
    path.write_bytes(path.read_bytes()[:-10])
    assert icd10cm.cached("thing", "k", lambda: {"a": [1], "b": "y"})["b"] == "y"
    assert icd10cm.cached("thing", "k", lambda: {"a": [2], "b": "z"})["b"] == "y"
