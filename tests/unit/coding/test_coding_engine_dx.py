"""Diagnosis rules of the coding engine: one test per hard rule."""

from coding_support import dx_codes, make_enc

from services.coding.domain import engine


def code(note, **kw):
    return engine.code_encounter(make_enc(note, **kw))


def test_negated_condition_is_never_coded():
    r = code(
        "HPI: cough for 3 days. Denies fever or shortness of breath.\n"
        "Assessment: Acute bronchitis. No evidence of pneumonia.\nPlan: fluids."
    )
    assert dx_codes(r) == ["J209"]


def test_uncertain_diagnosis_codes_the_symptoms():
    r = code(
        "HPI: productive cough for 5 days with fever.\nAssessment: Probable pneumonia.\nPlan: azithromycin prescribed."
    )
    assert dx_codes(r) == ["R059", "R509"]
    assert all(d.source == "rule" for d in r.diagnoses)
    assert "DX_UNCERTAIN" in [e.code for e in r.edits]
    assert "J189" not in dx_codes(r)


def test_rule_out_keeps_the_documented_symptom():
    r = code("Assessment: Chest pain, rule out angina.\nPlan: stress test.")
    assert dx_codes(r) == ["R079"]


def test_history_of_maps_to_personal_history_code():
    r = code(
        "Assessment:\n1. Essential hypertension, controlled.\n2. History of kidney stones.\nPlan: continue lisinopril."
    )
    assert dx_codes(r) == ["I10", "Z87442"]


def test_laterality_selects_the_side():
    left = code("Assessment: Sprain of left ankle.\nPlan: ice.")
    right = code("Assessment: Right ankle sprain.\nPlan: ice.")
    both = code("Assessment: Otitis media, bilateral.\nPlan: amoxicillin prescribed.", age=4)
    assert (
        dx_codes(left) == ["S93402A"]
        and dx_codes(right) == ["S93401A"]
        and dx_codes(both) == ["H6693"]
    )


def test_laterality_from_elsewhere_in_the_note():
    r = code("HPI: twisted the left ankle.\nAssessment: Ankle sprain.\nPlan: ice.")
    assert dx_codes(r) == ["S93402A"]


def test_missing_laterality_lowers_confidence_and_routes_to_review():
    r = code("Assessment: Ankle sprain.\nPlan: ice, ibuprofen.")
    assert dx_codes(r) == ["S93409A"]
    assert r.diagnoses[0].confidence < 0.8 and r.route == "review"


def test_seventh_character_from_encounter_phase():
    initial = code("Assessment: Left wrist sprain.\nPlan: splint.")
    follow = code(
        "Here for follow-up of left wrist sprain, improving.\nAssessment: Left wrist sprain.\nPlan: home exercises."
    )
    sequela = code("Assessment: Stiffness, sequela of left wrist sprain.\nPlan: therapy.")
    assert dx_codes(initial)[0] == "S63502A"
    assert dx_codes(follow)[0] == "S63502D"
    assert "S63502S" in dx_codes(sequela)


def test_fracture_seventh_character_and_placeholder_x():
    r = code(
        "Here for follow-up of distal radius fracture, right, healing well in cast.\n"
        "Assessment: Fracture of distal end of right radius.\nPlan: cast."
    )
    assert dx_codes(r) == ["S52501D"]  # subsequent, routine healing
    lac = code("Assessment: Laceration of forehead.\nProcedure: repaired, 2 cm, 3 sutures placed.")
    assert dx_codes(lac) == ["S0181XA"]  # placeholder X before the 7th character
    sting = code("Assessment: Bee sting, local reaction.\nPlan: ice.")
    assert dx_codes(sting) == ["T63441A"]


def test_diabetes_with_ckd_combination_and_companions():
    r = code(
        "Assessment: Type 2 diabetes mellitus with stage 3a CKD. Hypertension.\n"
        "Plan: continue metformin 500 mg and insulin glargine 10 units, lisinopril."
    )
    assert dx_codes(r) == ["E1122", "I129", "N1831", "Z794", "Z7984"]


def test_hypertension_heart_failure_and_ckd_combinations():
    hf = code(
        "Assessment: Hypertension. Chronic systolic heart failure.\nPlan: continue carvedilol."
    )
    assert dx_codes(hf) == ["I110", "I5022"]
    all3 = code(
        "Assessment: Hypertension with chronic diastolic heart failure and CKD stage 4.\nPlan: furosemide."
    )
    assert dx_codes(all3) == ["I130", "I5032", "N184"]
    esrd = code(
        "Assessment: Hypertension. End stage renal disease on hemodialysis.\nPlan: dialysis MWF."
    )
    assert dx_codes(esrd) == ["I120", "N186", "Z992"]


def test_diabetes_with_hyperglycemia_and_polyneuropathy():
    assert dx_codes(
        code("Assessment: Type 2 diabetes, poorly controlled.\nPlan: increase metformin.")
    ) == ["E1165", "Z7984"]
    assert dx_codes(
        code("Assessment: Type 2 diabetes. Peripheral neuropathy.\nPlan: gabapentin.")
    ) == ["E1142"]


def test_bmi_tobacco_and_anticoagulant_companions():
    r = code(
        "Vitals: BMI 36.4.\nSocial history: current smoker, 1 pack per day.\nMedications: apixaban 5 mg BID.\n"
        "Assessment:\n1. Obesity.\n2. Paroxysmal atrial fibrillation.\nPlan: diet, continue apixaban."
    )
    assert dx_codes(r) == ["E669", "I480", "F17210", "Z6836", "Z7901"]
    former = code(
        "Social history: former smoker, quit 10 years ago.\nAssessment: COPD.\nPlan: continue tiotropium."
    )
    assert dx_codes(former) == ["J449", "Z87891"]


def test_ehr_nonbillable_code_replaced_by_note_supported_code():
    r = code(
        "Assessment: Type 2 diabetic chronic kidney disease stage 3b.\nPlan: continue metformin.",
        dx=["E11.2"],
    )
    assert dx_codes(r)[:2] == ["E1122", "N1832"]
    assert any(e.code == "EHR_CODE_REPLACED" for e in r.edits)
    assert r.route == "review"  # a coder confirms the change


def test_ehr_code_missing_seventh_character_is_completed_from_the_note():
    r = code("Assessment: Right ankle sprain.\nPlan: ice.", dx=["S93.401"])
    assert dx_codes(r) == ["S93401A"]


def test_ehr_invalid_code_without_support_is_flagged():
    r = code(
        "Assessment: Acute bronchitis.\nPlan: fluids.", dx=["E11.6"]
    )  # valid, not billable, not in the note
    assert dx_codes(r) == ["J209"]
    bad = [e for e in r.edits if e.code == "DX_NOT_BILLABLE"]
    assert bad and bad[0].severity == "blocking" and r.route == "review"


def test_ehr_code_not_in_note_is_kept_with_a_warning():
    r = code("Assessment: Acute bronchitis.\nPlan: fluids.", dx=["E78.5"])
    assert dx_codes(r) == ["J209", "E785"]
    assert any(e.code == "EHR_CODE_UNSUPPORTED" for e in r.edits) and r.route == "review"


def test_integral_symptoms_are_not_coded_with_the_diagnosis():
    r = code(
        "CC: sore throat and fever.\nHPI: fever, cough.\nAssessment: Streptococcal pharyngitis.\nPlan: amoxicillin."
    )
    assert dx_codes(r) == ["J020"]


def test_every_diagnosis_has_evidence_and_confidence():
    note = "Assessment: Acute otitis media, right ear.\nPlan: amoxicillin."
    r = code(note, age=3)
    d = r.diagnoses[0]
    assert d.code == "H6691" and 0 < d.confidence <= 1
    assert note[d.evidence.start : d.evidence.end] == d.evidence.text == "Acute otitis media"


def test_pluggable_term_index_for_unknown_statements():
    class Fixed:
        def search(self, phrase, limit=10):
            return [("D225", 0.9)]

    r = engine.code_encounter(
        make_enc("Assessment: Melanocytic nevus of trunk.\nShave biopsy performed."), index=Fixed()
    )
    assert dx_codes(r) == ["D225"]
    assert r.diagnoses[0].confidence <= 0.75 and r.route == "review"


def test_ehr_unknown_code_is_flagged_invalid():
    r = code("Assessment: Acute bronchitis.\nPlan: fluids.", dx=["E11.99"])
    assert dx_codes(r) == ["J209"]
    assert [e.severity for e in r.edits if e.code == "DX_INVALID"] == ["blocking"]
