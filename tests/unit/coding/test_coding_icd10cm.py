from datetime import date

from shared import icd10cm


def test_normalize_strips_dot_and_upper_cases():
    assert icd10cm.normalize(" s93.401a ") == "S93401A"
    assert icd10cm.with_dot("S93401A") == "S93.401A"


def test_valid_and_billable():
    assert icd10cm.is_valid("E11.2") and not icd10cm.is_billable("E11.2")
    assert icd10cm.is_billable("E11.22")
    assert not icd10cm.is_valid("E11.99")
    assert not icd10cm.is_valid("A00-A09")  # a block, not a code
    assert icd10cm.description("I10") == "Essential (primary) hypertension"
    assert icd10cm.parent("E11.22") == "E112"
    assert icd10cm.parent("E11") is None


def test_seventh_character_and_placeholder():
    assert icd10cm.is_billable("S93.401A")
    assert icd10cm.is_billable("S01.81XA")  # placeholder X
    assert icd10cm.seventh_char_problem("S93.401") == "missing 7th character"
    assert icd10cm.seventh_char_problem("S93.401Z") == "invalid 7th character 'Z'"
    assert icd10cm.seventh_char_problem("S93.401A") is None
    assert icd10cm.seven_chr_def("S93.401") == {
        "A": "initial encounter",
        "D": "subsequent encounter",
        "S": "sequela",
    }
    assert "K" in icd10cm.seven_chr_def("S52.501")  # fracture extensions (nonunion)


def test_notes_are_inherited():
    assert any("Z79.4" in n for n in icd10cm.use_additional("E11.9"))
    assert any("I12" in n for n in icd10cm.code_first("N18.31"))
    assert any("O10-O11" in n for n in icd10cm.excludes1("I10"))


def test_code_refs_and_excludes1_conflict():
    assert icd10cm.code_refs("x (O10-O11, O13-O16)") == [("O10", "O11"), ("O13", "O16")]
    assert icd10cm.code_refs("stage (N18.1-N18.6)") == [("N181", "N186")]
    assert icd10cm.code_refs("type 1 diabetes mellitus (E10.-)") == [("E10", "E10")]
    assert "E10" in icd10cm.excludes1_conflict("E11.9", "E10.9")
    assert icd10cm.excludes1_conflict("E10.9", "E11.9") is not None  # either direction
    assert icd10cm.excludes1_conflict("I10", "E78.5") is None


def test_billable_on_release_window():
    assert icd10cm.is_billable_on("E11.22", date(2026, 5, 1)) is True
    assert icd10cm.is_billable_on("E11.2", date(2026, 5, 1)) is False
    assert icd10cm.is_billable_on("E11.22", date(2025, 10, 1)) is True
    assert icd10cm.is_billable_on("E11.22", date(2025, 9, 30)) is None
    assert icd10cm.is_billable_on("Q99.99X", date(2026, 5, 1)) is None


def test_iter_codes_covers_the_release():
    codes = list(icd10cm.iter_codes())
    billable = sum(1 for _, _, b in codes if b)
    assert 98_000 < len(codes) < 99_000
    assert 74_000 < billable < 75_500
    assert ("E1122", icd10cm.description("E11.22"), True) in codes


def test_age_sex_rules():
    assert [k for k, _, _ in icd10cm.age_sex_conflicts("N40.0", 60, "F")] == ["sex"]
    assert icd10cm.age_sex_conflicts("N40.0", 60, "M") == []
    assert [(k, s) for k, s, _ in icd10cm.age_sex_conflicts("O80", 60, "F")] == [("age", "warning")]
    assert [(k, s) for k, s, _ in icd10cm.age_sex_conflicts("Z3A.10", 30, "M")] == [
        ("sex", "blocking")
    ]
    assert icd10cm.age_sex_conflicts("P07.00", 0, "U") == []
    assert [k for k, _, _ in icd10cm.age_sex_conflicts("P07.00", 40, "U")] == ["age"]
