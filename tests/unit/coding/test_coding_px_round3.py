"""In-office services, psychiatric service codes and the E/M readings of issue 20's round 3.

Each note is written for the test (fictitious patients, never a blind case): a device
check, an ultrasound-guided FNA, a thoracentesis, an echo and an OCT done at the visit,
an intravitreal injection with its drug, a CGM interpretation, a radial head reduction,
burn care, intralesional and carpal tunnel injections, a colonoscopy, a drug screen read
in the office, two drugs in one injection sentence, psychotherapy alone and as an add-on,
and the MDM readings (an assessment statement no code was found for, fever in a minor
viral illness, a test billed here, a threat to bodily function in the ED).
"""

from decimal import Decimal

from coding_support import make_enc, px, px_codes

from services.coding.domain import em, engine


def code(note: str, **kw):
    return engine.code_encounter(make_enc(note, **kw))


def em_codes(result) -> list[str]:
    return [c for c in px_codes(result) if c.startswith("99")]


def test_pacemaker_check_alone_is_the_device_code_without_an_e_m():
    note = (
        "Device clinic visit.\n70 yo with complete heart block s/p dual-chamber pacemaker.\n"
        "Interrogation in person: battery 9 years, lead thresholds stable. No changes made.\n"
        "Impression: normally functioning pacemaker.\nPlan: next check in 6 months."
    )
    r = code(note, age=70)
    assert "93288" in px_codes(r)
    assert em_codes(r) == []
    assert r.route == "review"


def test_icd_reprogrammed_is_the_programming_code_by_leads():
    note = (
        "62 yo with ischemic cardiomyopathy, dual-chamber ICD.\n"
        "Device interrogation: frequent PVC detections; device reprogrammed, detection zone adjusted.\n"
        "A: ICD check.\nP: recheck 3 months."
    )
    assert "93283" in px_codes(code(note, age=62))


def test_ultrasound_guided_fna_is_10005_and_unguided_10021():
    guided = (
        "Procedure note: thyroid nodule.\nUnder ultrasound guidance, fine needle aspiration of the "
        "left thyroid nodule performed, 3 passes.\nDx: Thyroid nodule."
    )
    r = code(guided)
    assert "10005" in px_codes(r)
    assert em_codes(r) == []
    palpable = (
        "Palpable 2 cm neck node.\nFNA performed by palpation, 2 passes, sent for cytology.\n"
        "A: Lymphadenopathy."
    )
    assert "10021" in px_codes(code(palpable))


def test_thoracentesis_with_ultrasound_and_paracentesis_without():
    thora = (
        "Procedure: thoracentesis, left, ultrasound-guided.\nUnder US guidance 900 mL removed.\n"
        "Dx: Pleural effusion, left."
    )
    assert "32555" in px_codes(code(thora))
    para = "Paracentesis performed at bedside, 3 L ascites removed.\nA: Ascites due to cirrhosis."
    assert "49082" in px_codes(code(para))


def test_echo_done_here_is_billed_and_an_old_one_is_not():
    today = (
        "F/u murmur.\nTTE performed in office today with color Doppler: mild mitral regurgitation, "
        "LVEF 60%.\nA: Mitral regurgitation, mild.\nP: repeat in 1 year."
    )
    assert "93306" in px_codes(code(today, age=66))
    old = "F/u murmur.\nTTE 3/2025: LVEF 60%.\nA: Mitral regurgitation, mild.\nP: repeat echo."
    assert not {"93306", "93307", "93308"} & set(px_codes(code(old, age=66)))


def test_intravitreal_injection_with_its_drug_units_and_oct():
    note = (
        "Retina clinic, injection visit.\nOCT macula today: central thickness 330, fluid OS.\n"
        "Procedure: intravitreal injection OS - aflibercept 2 mg/0.05 mL after povidone-iodine.\n"
        "A: Exudative age-related macular degeneration, left eye.\nP: repeat in 4 weeks."
    )
    r = code(note, age=77)
    codes = px_codes(r)
    assert {"67028", "J0178", "92134"} <= set(codes)
    assert px(r, "67028").modifiers == ["LT"]
    assert px(r, "J0178").units == Decimal(2)
    assert "96372" not in codes  # the drug goes with the eye injection, not an IM one


def test_cgm_interpretation_counts_as_a_service_not_as_data():
    note = (
        "Diabetes f/u.\nCGM download reviewed and interpreted (14 days): time in range 70%.\n"
        "A: Type 1 diabetes mellitus without complications, stable.\nP: continue insulin."
    )
    r = code(note, age=30)
    assert "95251" in px_codes(r)


def test_nursemaid_elbow_reduction_without_a_separate_e_m():
    note = (
        "3 yo not using L arm after being lifted by the hand.\n"
        "Assessment: Nursemaid's elbow, left.\n"
        "Procedure: closed reduction by hyperpronation, click felt, using arm within minutes.\n"
        "Plan: avoid pulling by the hands."
    )
    r = code(note, age=3)
    assert "24640" in px_codes(r)
    assert em_codes(r) == []


def test_burn_care_by_extent():
    note = (
        "Scald to L forearm.\nExam: 4 x 3 cm partial-thickness burn with blisters, <1% TBSA.\n"
        "Procedure: burn care - cleansed, blisters debrided, dressing applied.\n"
        "Dx: Second degree burn of left forearm."
    )
    assert "16020" in px_codes(code(note))


def test_intralesional_and_carpal_tunnel_injections_bill_their_drug_without_96372():
    keloid = (
        "Keloid on chest.\nProcedure: intralesional injection of triamcinolone 10 mg/mL, 0.5 mL.\n"
        "A: Keloid scar."
    )
    codes = px_codes(code(keloid))
    assert {"11900", "J3301"} <= set(codes) and "96372" not in codes
    ctr = (
        "A: Carpal tunnel syndrome, right.\nProcedure: right carpal tunnel injection, "
        "methylprednisolone acetate 40 mg, tolerated well."
    )
    codes = px_codes(code(ctr))
    assert "20526" in codes and "J1030" in codes
    assert not {"20605", "20606", "96372"} & set(codes)


def test_colonoscopy_with_biopsy():
    note = (
        "Procedure: Colonoscopy\nIndication: change in bowel habits.\nCecum reached. "
        "Mild colitis in the sigmoid, cold forceps biopsies taken.\nImpression: colitis."
    )
    assert "45380" in px_codes(code(note, age=55))


def test_drug_screen_read_in_the_office_and_one_sent_out():
    cup = (
        "Buprenorphine maintenance f/u.\nPoint-of-care urine drug screen (cup): + buprenorphine.\n"
        "A: Opioid use disorder, in remission.\nP: continue buprenorphine-naloxone."
    )
    assert "80305" in px_codes(code(cup))
    sent = (
        "Buprenorphine maintenance f/u.\nUrine drug screen sent for confirmation.\n"
        "A: Opioid use disorder, in remission.\nP: continue buprenorphine-naloxone."
    )
    assert "80305" not in px_codes(code(sent))


def test_two_drugs_in_one_sentence_are_two_lines_and_two_injections():
    note = (
        "Migraine attack x 2 days.\nA: Migraine without aura.\n"
        "Given in clinic: ketorolac 30 mg IM + prochlorperazine 10 mg IM.\nP: rest, fluids."
    )
    r = code(note, age=30)
    assert px(r, "J1885").units == Decimal(2)
    assert px(r, "J0780").units == Decimal(1)
    assert px(r, "96372").units == Decimal(2)


def test_an_ed_ecg_is_billed_only_when_the_physician_reads_it():
    listed = "CC: dizziness\nECG: sinus rhythm, no ST changes.\nDx: Dizziness.\nPlan: discharge."
    assert "93010" not in px_codes(code(listed, encounter_class="EMER"))


def test_psychotherapy_alone_has_no_e_m_and_with_medication_is_an_add_on():
    alone = (
        "Therapy session.\nA: Generalized anxiety disorder.\n"
        "Individual CBT session 45 minutes: cognitive restructuring, exposure hierarchy.\n"
        "P: next session in 1 week."
    )
    r = code(alone, age=35)
    assert "90834" in px_codes(r)
    assert em_codes(r) == []
    assert r.route == "review"
    with_em = (
        "Psychiatry f/u.\nA: Major depressive disorder, recurrent, moderate - improving.\n"
        "P: increase sertraline to 100 mg daily.\nSupportive psychotherapy 20 minutes.\n"
        "Total time 45 minutes."
    )
    r = code(with_em, age=35)
    assert "90833" in px_codes(r)
    assert em_codes(r) != []  # the E/M stays, its time without the therapy's 20 minutes
    assert em.documented_time(with_em, make_enc(with_em))[0] == 25


def test_a_referral_for_therapy_is_not_a_session():
    note = "A: Panic disorder.\nP: start sertraline 25 mg; referral for CBT, 12 sessions of 50 minutes."
    assert not {"90832", "90834", "90837", "90833", "90836", "90838"} & set(px_codes(code(note)))


def test_an_unmatched_assessment_statement_counts_as_a_problem():
    assert em._unread_problem("Sprain of ligament, grade II") == "acute"
    assert em._unread_problem("Recurrent enterocolitis, non-severe") == "worse"
    assert em._unread_problem("Adrenal insufficiency - stable") == "chronic"
    assert em._unread_problem("On insulin glargine") is None
    assert em._unread_problem("BMP next visit") is None
    assert em._unread_problem("Personal hx of MRSA infection") is None
    assert em._unread_problem("Health maintenance: flu vaccine given") is None
    assert em._unread_problem("Pump settings reviewed, no changes") is None
    # a plan after the condition does not make the condition a plan step
    assert em._unread_problem("Hypertension - refill lisinopril") == "chronic"


def test_fever_in_a_minor_viral_illness_is_not_systemic_involvement():
    note = (
        "Fever 102 and body aches x 2 days.\nRapid influenza A/B test: positive for A.\n"
        "A: Influenza A.\nP: oseltamivir 75 mg bid x 5 days, fluids."
    )
    r = code(note, age=30)
    assert "systemic" not in (r.mdm or "")


def test_acute_respiratory_failure_in_the_ed_is_a_threat_to_bodily_function():
    level, why = em.mdm_level(
        "Hypoxic, admitted to the hospital.",
        ["J1282", "J9601"],
        _Ctx(),
        uncertain=False,
        ed=True,
        billed_tests=set(),
        age=60,
    )
    assert why.startswith("problems high")


class _Ctx:
    def status(self, start, end):
        return "affirmed"


def test_the_procedure_named_in_its_section_header_is_billed():
    note = (
        "CC: boil on thigh\nExam: 2 cm fluctuant abscess R thigh.\n"
        "Procedure - I&D: consent, lidocaine, incision, pus expressed, packed.\n"
        "Dx: Abscess of right thigh.\nPlan: warm compresses, recheck 2 days."
    )
    assert "10060" in px_codes(code(note, encounter_class="EMER"))


def test_a_combined_nebulizer_dose_with_decimals_is_one_combined_drug():
    note = (
        "Wheezing.\nTx in clinic: albuterol 2.5 mg / ipratropium 0.5 mg via nebulizer x 1.\n"
        "A: Mild persistent asthma with acute exacerbation.\nP: prednisolone."
    )
    codes = px_codes(code(note, age=10))
    assert "94640" in codes and "J7620" in codes
    assert not {"J7613", "J7644"} & set(codes)


def test_a_test_billed_here_is_not_counted_again_as_data():
    note = (
        "Sarcoidosis f/u.\nSpirometry performed today: FVC 90% pred, stable. CBC reviewed: normal.\n"
        "A: Sarcoidosis of lung - stable.\nP: continue monitoring."
    )
    args = dict(uncertain=False, ed=False, billed_tests={"medicine"}, age=40)
    _, counted = em.mdm_level(note, ["D860"], _Ctx(), **args)
    _, billed = em.mdm_level(note, ["D860"], _Ctx(), billed_codes={"94010"}, **args)
    assert "data low" in counted  # spirometry and the CBC
    assert "data straightforward" in billed  # the CBC alone


def test_procedures_from_another_day_or_look_alike_words_are_not_billed():
    cases = [
        "Lung cancer f/u.\ns/p thoracentesis last week, 1 L removed.\nA: Malignant pleural effusion.",
        "Thyroid nodule f/u.\nPrior FNA results: benign.\nA: Thyroid nodule.",
        "Health maintenance: Colonoscopy normal.\nA: Essential hypertension.\nP: lisinopril.",
        "Knee pain.\nReduced range of motion, hx of shoulder dislocation.\nA: Knee pain.",
        "Seen by retina Oct 12: stable.\nA: Type 2 diabetes mellitus without complications.",
    ]
    new = {"32554", "32555", "10005", "10021", "45378", "45380", "23650", "92134", "92133"}
    for note in cases:
        assert not new & set(px_codes(code(note, age=60))), note


def test_therapy_with_another_clinician_is_not_a_session_here():
    note = (
        "A: Generalized anxiety disorder, improving.\n"
        "Continues CBT 50 minutes with her therapist.\nP: f/u 3 months."
    )
    r = code(note)
    assert not {"90834", "90837"} & set(px_codes(r))
    assert em_codes(r) != []
