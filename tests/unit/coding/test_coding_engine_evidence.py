"""EHR diagnoses coded in SNOMED CT, ICD-9-CM or an unrecognised system are evidence, not codes.

Issue 17: a Synthea patient's SNOMED CT conditions were validated as ICD-10-CM codes
("COU.GH(FINDING) is not an ICD-10-CM code"), blocking 588 of 708 encounters. Their
display text is now read like the note's assessment, and what it finds is suggested for
a coder to confirm; their own codes never reach the claim. (Fictitious patients; SNOMED CT
concept ids and display terms as Synthea's exports carry them.)
"""

from coding_support import dx_codes, make_enc

from services.coding.domain import engine
from shared.events import SuppliedCode

BRONCHITIS_NOTE = "Assessment: Acute bronchitis.\nPlan: fluids, rest, return if worse."


def snomed(code: str, display: str) -> SuppliedCode:
    return SuppliedCode(system="snomed", code=code, display=display)


def code(note, *conditions: SuppliedCode):
    return engine.code_encounter(make_enc(note, diagnoses=list(conditions)))


def edit_codes(result) -> list[str]:
    return [e.code for e in result.edits]


def test_snomed_conditions_are_never_validated_as_icd10cm():
    r = code(
        BRONCHITIS_NOTE,
        snomed("10509002", "Acute bronchitis (disorder)"),
        snomed("49727002", "Cough (finding)"),
    )
    assert dx_codes(r) == ["J209"]  # both agree with the note: nothing to add
    assert not [c for c in edit_codes(r) if c.startswith(("DX_", "EHR_"))]
    assert r.route == "auto"


def test_the_same_visit_with_the_snomed_text_as_the_only_documentation():
    r = code(None, snomed("195662009", "Acute viral pharyngitis (disorder)"))
    assert dx_codes(r) == ["J028"]  # acute pharyngitis due to other specified organisms
    d = r.diagnoses[0]
    assert d.source == "ehr" and d.confidence <= 0.7 and d.evidence is None
    assert r.route == "review" and "NO_DOCUMENTATION" in edit_codes(r)
    assert "DX_INVALID" not in edit_codes(r)


def test_a_condition_the_note_does_not_document_is_suggested_for_review():
    r = code(BRONCHITIS_NOTE, snomed("59621000", "Essential hypertension (disorder)"))
    assert dx_codes(r) == ["J209", "I10"]  # the note's diagnosis stays principal
    assert r.diagnoses[1].source == "ehr" and r.route == "review"
    (warning,) = [e for e in r.edits if e.code == "EHR_CONDITION_UNSUPPORTED"]
    assert warning.severity == "warning"
    assert "SNOMED CT" in warning.message and "I10" in warning.message
    assert "hypertension" not in warning.message.lower()  # no text from the input


def test_the_snomed_code_itself_never_becomes_a_claim_code():
    conditions = [snomed("10509002", "Acute bronchitis (disorder)"), snomed("38341003", "")]
    r = code(BRONCHITIS_NOTE, *conditions)
    payload = r.to_payload(make_enc(BRONCHITIS_NOTE, diagnoses=conditions))
    assert [d.code for d in payload.diagnoses] == ["J209"]
    assert not {"10509002", "38341003"} & {d.code for d in r.diagnoses}


def test_unrecognised_and_icd9_codings_are_evidence_too():
    # what intake sends when a condition has only text, or a system it does not know
    r = code(BRONCHITIS_NOTE, SuppliedCode(system="unknown", code="Cough (finding)"))
    assert "DX_INVALID" not in edit_codes(r)  # was: COU.GH(FINDING) is not an ICD-10-CM code
    assert dx_codes(r) == ["J209"]  # a cough is part of the bronchitis the note documents
    r = code(BRONCHITIS_NOTE, SuppliedCode(system="unknown", code="Seasonal allergic rhinitis"))
    assert dx_codes(r) == ["J209", "J302"] and "DX_INVALID" not in edit_codes(r)
    r = code(
        BRONCHITIS_NOTE,
        SuppliedCode(system="icd9cm", code="401.9", display="Unspecified essential hypertension"),
        SuppliedCode(system="icd9cm", code="466.0"),  # no text: nothing to read
    )
    assert dx_codes(r) == ["J209", "I10"] and "DX_INVALID" not in edit_codes(r)
    assert any("ICD-9-CM" in e.message for e in r.edits if e.code == "EHR_CONDITION_UNSUPPORTED")


def test_icd10cm_codes_from_the_ehr_are_still_validated():
    r = code(BRONCHITIS_NOTE, SuppliedCode(system="icd10cm", code="E11.99"))
    assert [e.severity for e in r.edits if e.code == "DX_INVALID"] == ["blocking"]


def test_an_uncoded_procedure_text_is_not_flagged_as_an_invalid_cpt_code():
    enc = make_enc(
        BRONCHITIS_NOTE,
        procedures=[
            SuppliedCode(system="unknown", code="Spirometry with bronchodilator"),
            SuppliedCode(system="snomed", code="127783003", display="Spirometry (procedure)"),
            SuppliedCode(system="unknown", code="94010"),  # a CPT code without its system
        ],
    )
    r = engine.code_encounter(enc)
    assert "PX_INVALID" not in edit_codes(r)
    assert "94010" in [p.code for p in r.procedures]
