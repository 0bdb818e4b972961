"""E/M leveling: time, MDM, ED, preventive, modifier 25 and missing basis."""

from decimal import Decimal

import pytest
from coding_support import make_enc, px, px_codes

from services.coding.domain import em, engine

NOTE = "Assessment: Essential hypertension, stable.\nPlan: continue lisinopril."


def code(note, **kw):
    return engine.code_encounter(make_enc(note, **kw))


@pytest.mark.parametrize(
    "minutes,new,expected",
    [
        (14, True, None),
        (15, True, "99202"),
        (30, True, "99203"),
        (44, True, "99203"),
        (45, True, "99204"),
        (60, True, "99205"),
        (9, False, None),
        (10, False, "99212"),
        (20, False, "99213"),
        (30, False, "99214"),
        (39, False, "99214"),
        (40, False, "99215"),
    ],
)
def test_office_levels_by_total_time(minutes, new, expected):
    assert em.by_time(minutes, new)[0] == expected


def test_prolonged_service_units():
    assert em.by_time(74, True) == ("99205", 0)
    assert em.by_time(75, True) == ("99205", 1)
    assert em.by_time(70, False) == ("99215", 2)


def test_time_statement_in_the_note_wins_over_mdm():
    r = code(NOTE + "\nTotal time spent on the date of the encounter: 32 minutes.")
    assert r.em_basis == "time" and px_codes(r)[0] == "99214"
    assert r.procedures[0].evidence.text.endswith("32 minutes")


def test_encounter_length_is_used_when_the_note_has_no_time():
    r = code(NOTE, length_minutes=22, visit_type="new")
    assert px_codes(r)[0] == "99202"


def test_counseling_minutes_are_not_total_time():
    r = code(NOTE + "\nSpent 5 minutes counseling on smoking cessation.")
    assert r.em_basis == "mdm"


def test_mdm_levels():
    low = code("Assessment: Acute low back pain.\nPlan: ibuprofen, heat.")
    assert px_codes(low) == ["99213"] and r_basis(low) == "mdm"
    moderate = code(
        "Assessment:\n1. Essential hypertension.\n2. Hyperlipidemia.\nPlan: refill lisinopril and atorvastatin."
    )
    assert px_codes(moderate) == ["99214"]
    new = code(
        "Assessment:\n1. Essential hypertension.\n2. Hyperlipidemia.\nPlan: refill lisinopril.",
        visit_type="new",
    )
    assert px_codes(new) == ["99204"]
    minimal = code("Assessment: Common cold.\nPlan: rest and fluids.")
    assert px_codes(minimal) == ["99212"]


def r_basis(r):
    return r.em_basis


def test_documented_mdm_statement_is_honoured():
    r = code(
        "Assessment: Acute low back pain.\nPlan: ibuprofen.\nMedical decision making: moderate complexity."
    )
    assert px_codes(r) == ["99214"]


def test_new_patient_from_history_flag():
    r = engine.code_encounter(make_enc(NOTE, visit_type=None), history_new_patient=True)
    assert px_codes(r) == ["99203"]


def test_emergency_department_levels_by_mdm():
    r = code(
        "CC: chest pain\nECG interpreted by me: NSR. Troponin negative x2. Chest x-ray normal.\n"
        "Assessment: Chest pain, acute coronary syndrome ruled out.\nPlan: decision regarding hospitalization, discharged home.",
        encounter_class="EMER",
        visit_type=None,
    )
    assert px_codes(r) == ["99285", "93010"]
    sprain = code(
        "Assessment: Sprain of right ankle.\nPlan: ibuprofen, crutches.",
        encounter_class="EMER",
        visit_type=None,
    )
    assert px_codes(sprain) == ["99283"]


def test_preventive_visit_by_age_and_status():
    adult = code(
        "Annual physical exam, feels well.\nAssessment: Annual physical.\nPlan: return in 1 year.",
        age=52,
    )
    child = code("Well child check.\nAssessment: Well child visit.", age=4, visit_type="new")
    assert px_codes(adult) == ["99396"] and [d.code for d in adult.diagnoses] == ["Z0000"]
    assert px_codes(child) == ["99382"] and [d.code for d in child.diagnoses] == ["Z00129"]


def test_medicare_annual_wellness_visit_is_g0439():
    r = code(
        "Annual wellness visit, subsequent.\nAssessment: Annual wellness visit.", age=70, payer="MB"
    )
    assert px_codes(r) == ["G0439"] and r.procedures[0].system == "hcpcs"


def test_modifier_25_when_separately_identifiable_em_with_minor_procedure():
    r = code(
        "HPI: wheezing 2 days.\nProcedure: albuterol 2.5 mg nebulizer treatment given.\n"
        "Assessment: Moderate persistent asthma with acute exacerbation.\nPlan: prednisone prescribed.",
        age=12,
    )
    assert px(r, "99214").modifiers == ["25"]
    assert px(r, "94640").units == Decimal(1) and px(r, "J7613").units == Decimal(3)


def test_no_em_when_the_visit_is_only_the_procedure():
    r = code(
        "Exam: 2 cm laceration of the left forearm.\nProcedure: simple repair with 3 sutures, 2 cm.\n"
        "Assessment: Laceration of left forearm.\nPlan: suture removal in 10 days."
    )
    assert px_codes(r) == ["12001"]
    assert "EM_NOT_SEPARATE" in [e.code for e in r.edits]


def test_em_without_time_or_mdm_is_a_blocking_edit():
    r = code("Patient seen.", px=["99213"])
    edit = next(e for e in r.edits if e.code == "EM_NO_BASIS")
    assert (
        edit.severity == "blocking" and edit.message == "E/M without documentation of time or MDM"
    )
    assert r.route == "review"


def test_telehealth_visit_gets_modifier_95():
    r = code(
        "Video visit.\nAssessment: Generalized anxiety disorder.\nPlan: continue escitalopram.\nTotal time 25 minutes.",
        encounter_class="VR",
    )
    assert px(r, "99213").modifiers == ["95"]
