"""Coding edits, routing and the payload contract."""

import pytest
from coding_support import make_enc

from services.coding.domain import engine
from services.coding.domain.edits import diagnosis_edits
from shared.events import EncounterCodedPayload


def codes(edits):
    return [(e.code, e.severity) for e in edits]


def test_non_billable_and_seventh_character_edits():
    assert codes(diagnosis_edits(["E11.2"], 50, "M")) == [("DX_NOT_BILLABLE", "blocking")]
    assert codes(diagnosis_edits(["S93.401"], 50, "M")) == [("DX_7TH_CHARACTER", "blocking")]
    assert codes(diagnosis_edits(["S93.401Z"], 50, "M")) == [("DX_7TH_CHARACTER", "blocking")]
    assert codes(diagnosis_edits(["Q99.99"], 50, "M")) == [("DX_INVALID", "blocking")]
    assert codes(diagnosis_edits([], 50, "M")) == [("DX_NONE", "blocking")]


def test_excludes1_pair_is_blocking():
    edits = diagnosis_edits(["E11.9", "E10.9"], 50, "M")
    assert ("DX_EXCLUDES1", "blocking") in codes(edits)
    assert "E11.9" in edits[0].message and "E10.9" in edits[0].message
    assert diagnosis_edits(["J45.909", "R06.2"], 30, "F")[0].code == "DX_EXCLUDES1"


def test_code_first_sequencing_and_manifestation_first():
    assert codes(diagnosis_edits(["N18.31", "E11.22"], 60, "M")) == [("DX_CODE_FIRST", "blocking")]
    assert diagnosis_edits(["E11.22", "N18.31"], 60, "M") == []
    assert ("DX_MANIFESTATION_FIRST", "blocking") in codes(
        diagnosis_edits(["G63", "E11.42"], 60, "M")
    )


def test_age_sex_conflicts_and_duplicates():
    assert codes(diagnosis_edits(["N40.0"], 60, "F")) == [("DX_SEX_CONFLICT", "blocking")]
    assert codes(diagnosis_edits(["Z00.129"], 40, "M")) == [("DX_AGE_CONFLICT", "warning")]
    assert codes(diagnosis_edits(["I10", "I10"], 40, "M")) == [("DX_DUPLICATE", "warning")]


def test_no_note_routes_to_review_without_crashing():
    r = engine.code_encounter(make_enc(None, dx=["J06.9"], px=["99213"]))
    assert r.route == "review"
    assert ("NO_DOCUMENTATION", "blocking") in codes(r.edits)
    assert [d.code for d in r.diagnoses] == ["J069"]


def test_empty_coding_is_review_and_to_payload_refuses():
    enc = make_enc("Patient called about a form.")
    r = engine.code_encounter(enc)
    assert r.route == "review" and not r.diagnoses
    assert {"DX_NONE", "PX_NONE"} <= {e.code for e in r.edits}
    with pytest.raises(ValueError, match="coding incomplete"):
        r.to_payload(enc)


def test_auto_route_and_payload():
    enc = make_enc("Assessment: Acute upper respiratory infection.\nPlan: fluids, acetaminophen.")
    r = engine.code_encounter(enc)
    assert r.route == "auto"
    payload = r.to_payload(enc, coded_by="auto")
    assert isinstance(payload, EncounterCodedPayload)
    assert [d.code for d in payload.diagnoses] == ["J069"]
    assert [(p.code, p.diagnosis_pointers) for p in payload.procedures] == [("99213", [1])]
    assert payload.code_set_version == "2026-04"


def test_threshold_controls_route():
    enc = make_enc("Assessment: Acute upper respiratory infection.\nPlan: fluids, acetaminophen.")
    from decimal import Decimal

    assert engine.code_encounter(enc, threshold=Decimal("0.99")).route == "review"


def test_offline_json_shape():
    r = engine.code_encounter(
        make_enc(
            "X-ray left ankle 3 views: no fracture.\nAssessment: Left ankle sprain.\nPlan: ice."
        )
    )
    out = engine.offline_json(r)
    assert set(out) >= {"diagnoses", "procedures", "route", "edits"}
    assert (
        out["diagnoses"][0]["code"] == "S93402A"
        and out["diagnoses"][0]["evidence"]["text"] == "Left ankle sprain"
    )
    assert out["procedures"][1] == {
        **out["procedures"][1],
        "code": "73610",
        "modifiers": ["LT"],
        "units": "1",
        "diagnosis_pointers": [1],
    }


def test_validate_final_codes():
    enc = make_enc("Assessment: Acute upper respiratory infection.\nPlan: fluids.")
    ok = engine.validate_final_codes(
        enc, ["J06.9"], [{"code": "99213", "modifiers": [], "units": 1, "diagnosis_pointers": [1]}]
    )
    assert ok == []
    bad = engine.validate_final_codes(
        enc,
        ["J06.9", "J06.9", "E11.2"],
        [
            {"code": "99213", "diagnosis_pointers": [5]},
            {"code": "99214", "diagnosis_pointers": [1]},
            {"code": "12001", "diagnosis_pointers": [1]},
        ],
    )
    got = {e.code for e in bad}
    assert {"DX_DUPLICATE", "DX_NOT_BILLABLE", "PX_POINTER", "EM_MULTIPLE", "EM_MODIFIER_25"} <= got


def test_validate_final_codes_flags_em_without_basis():
    enc = make_enc("Patient seen.")
    edits = engine.validate_final_codes(
        enc, ["J06.9"], [{"code": "99213", "diagnosis_pointers": [1]}]
    )
    assert ("EM_NO_BASIS", "blocking") in codes(edits)
