"""Services read from the note: codes, units, modifiers, pointers and what is not done."""

from decimal import Decimal

from coding_support import make_enc, px, px_codes

from services.coding.domain import engine


def code(note, **kw):
    return engine.code_encounter(make_enc(note, **kw))


def test_vaccine_and_administration_pairs():
    r = code(
        "Influenza vaccine 0.5 mL IM given. Tdap administered.\nAssessment: Encounter for immunization."
    )
    assert px_codes(r) == ["90656", "90715", "90471", "90472"]
    assert [d.code for d in r.diagnoses] == ["Z23"]
    assert all(p.diagnosis_pointers == [1] for p in r.procedures)


def test_medicare_flu_admin_is_g0008():
    r = code(
        "Influenza vaccine administered IM.\nAssessment: Encounter for immunization.",
        age=70,
        payer="MB",
    )
    assert px_codes(r) == ["90656", "G0008"]


def test_pediatric_vaccines_with_counseling_use_90460_90461():
    r = code(
        "Well child check.\nMMR and varicella vaccines given after counseling the parent.\nAssessment: Well child visit.",
        age=4,
    )
    assert px(r, "90460").units == Decimal(2) and px(r, "90461").units == Decimal(2)


def test_declined_or_future_services_are_not_billed():
    r = code(
        "Declined flu vaccine. Will obtain x-ray of the left ankle if not improving. Labs ordered: CBC.\n"
        "Assessment: Sprain of left ankle.\nPlan: ice."
    )
    assert px_codes(r) == ["99213"]


def test_imaging_views_and_laterality_modifier():
    r = code(
        "X-ray of the left ankle, 2 views: no fracture.\nAssessment: Sprain of left ankle.\nPlan: ice."
    )
    assert px(r, "73600").modifiers == ["LT"]
    assert px(r, "73600").diagnosis_pointers == [1]


def test_joint_injection_with_drug_units_and_side():
    r = code(
        "Procedure: Left knee intra-articular injection with 80 mg triamcinolone.\n"
        "Assessment: Primary osteoarthritis of left knee."
    )
    assert px(r, "20610").modifiers == ["LT"]
    assert px(r, "J3301").units == Decimal(8)
    assert "96372" not in px_codes(r)


def test_im_injection_is_drug_plus_96372():
    r = code(
        "Ceftriaxone 1 g IM given.\nAssessment: Bilateral acute otitis media.\nPlan: recheck 2 days.",
        age=3,
    )
    assert px(r, "J0696").units == Decimal(4) and px(r, "96372").units == Decimal(1)
    assert px(r, "99213").modifiers == ["25"]


def test_laceration_repair_by_site_length_and_complexity():
    assert "12002" in px_codes(
        code(
            "Procedure: laceration repair of the right forearm, 3.5 cm, sutured.\nAssessment: Laceration of right forearm."
        )
    )
    assert "12013" in px_codes(
        code(
            "Procedure: 3 cm forehead laceration repaired with sutures.\nAssessment: Laceration of forehead."
        )
    )
    assert "12032" in px_codes(
        code(
            "Procedure: intermediate layered repair of a 4 cm laceration of the thigh.\nAssessment: Laceration of left thigh."
        )
    )


def test_abscess_incision_and_drainage():
    r = code("Procedure: incision and drainage of abscess.\nAssessment: Abscess of right axilla.")
    assert px_codes(r) == ["10060"] and [d.code for d in r.diagnoses] == ["L02411"]


def test_rapid_tests_urinalysis_and_ecg():
    strep = code(
        "Rapid strep test performed: positive.\nAssessment: Strep pharyngitis.\nPlan: amoxicillin.",
        age=9,
    )
    assert "87880" in px_codes(strep) and [d.code for d in strep.diagnoses] == ["J020"]
    ua = code(
        "Urine dipstick in office: positive nitrites.\nAssessment: Urinary tract infection.\nPlan: nitrofurantoin.",
        sex="F",
    )
    assert "81002" in px_codes(ua)
    ecg = code(
        "12-lead ECG obtained: normal sinus rhythm.\nAssessment: Palpitations.\nPlan: Holter."
    )
    assert "93000" in px_codes(ecg)


def test_diagnosis_pointers_link_each_service_to_its_diagnosis():
    r = code(
        "X-ray of the right wrist, 3 views: no fracture.\nInfluenza vaccine given IM.\n"
        "Assessment:\n1. Sprain of right wrist.\n2. Hypertension.\nPlan: splint, continue lisinopril."
    )
    dx = [d.code for d in r.diagnoses]
    assert dx == ["S63501A", "I10", "Z23"]
    assert px(r, "73110").diagnosis_pointers == [1]
    assert px(r, "90656").diagnosis_pointers == [3]
    assert px(r, "99213").diagnosis_pointers == [1, 2, 3] and px(r, "99213").modifiers == ["25"]


def test_ehr_procedures_are_kept_and_invalid_ones_flagged():
    r = code("Assessment: Acute bronchitis.\nPlan: fluids.", px=["94010", "ABC"])
    assert "94010" in px_codes(r)
    assert any(e.code == "PX_INVALID" and "ABC" in e.message for e in r.edits)
