"""Deterministic synthetic encounters as FHIR R4 Bundles, each with its expected coding.

``generate_samples`` draws visits from a scenario library across the demo sites
(``rcm.simulation.sites``): fictitious patients whose ages fit the scenario, payers
that fit the age (Medicare at 65+, parents' plans for children), secondary
coverage on some, clinical notes with Assessment/Plan sections, EHR-supplied
codes on some (a few deliberately non-billable or contradicting the note).
``encounter_to_bundle`` is the inverse of ``parse_intake``.

Expected labels (``Sample.expected``): ``principal_dx`` and ``diagnoses``
(ICD-10-CM without the dot, principal first), ``em_code`` (None when the visit
carries no separately billable E/M), ``procedures`` (CPT/HCPCS other than the
E/M), ``route`` ("review" for sparse notes, inpatient stays, and EHR codes that
are non-billable or contradict the note).
"""

from __future__ import annotations

import base64
import hashlib
import html
import random
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

from rcm.simulation.sites import PAYERS, SITES, Payer, Site
from services.intake.domain.fhir import (
    ACT_CODE_SYSTEM,
    ADMISSION_DATE_URL,
    ADMISSION_TYPE_SYSTEM,
    CODE_SYSTEM_URIS,
    EIN_SYSTEM,
    ENCOUNTER_SYSTEM,
    FILING_INDICATOR_URL,
    MRN_SYSTEM,
    NPI_SYSTEM,
    PARTICIPATION_SYSTEM,
    PATIENT_STATUS_SYSTEM,
    PAYER_SYSTEM,
    POINT_OF_ORIGIN_SYSTEM,
    POS_SYSTEM,
    PRIOR_AUTH_SYSTEM,
    RELATIONSHIP_SYSTEM,
    SITE_SYSTEM,
    TAXONOMY_SYSTEM,
    TYPE_OF_BILL_URL,
)
from shared.events import (
    Address,
    Coverage,
    Encounter,
    Institutional,
    Person,
    Provider,
    SuppliedCode,
)

DEFAULT_START_DATE = date(2026, 6, 1)

# --------------------------------------------------------------------------- people

FEMALE = (
    "Amelia Beatrix Camila Dahlia Elise Fiona Gemma Harper Isla Juniper Keira Lena Mabel "
    "Nadia Opal Petra Quinn Rosalind Sienna Talia Una Vera Willa Yara Zelda Aurora Briar "
    "Celeste Daphne Esme Freya Greta Hazel Ingrid Joanna Kaia Lucia Marisol Nell"
).split()
MALE = (
    "Abel Barrett Caspian Desmond Emmett Felix Gideon Hollis Ignatius Jasper Kellan Lucian "
    "Milo Nolan Otis Percival Quincy Rowan Silas Thaddeus Ulric Vaughn Wesley Xavier Yusuf "
    "Zane Anselm Bram Cormac Dorian Ellis Fitz Gareth Hugo Idris Jonah Knox Leander Magnus "
    "Niles"
).split()
LAST = (
    "Abernathy Baptiste Calloway Davenport Ellsworth Fairbanks Galloway Hargrove Ingersoll "
    "Jablonski Kettering Lockwood Merriweather Northcott Oyelaran Pennington Quennell "
    "Ravensworth Sutherland Thistlewood Underhill Vasquez-Moreno Wexley Yarborough Zellweger "
    "Ashcombe Brightwater Castellano Dunmore Esterhazy Fennimore Greystone Holloway Iverson "
    "Juniper-Lake Kowalczyk Larkspur Montague Nakashima Oakhurst Prentiss Quigley Rockwell "
    "Sandoval Tremaine Upshaw Valderrama Winslow Xiong Youngblood Zimmerman"
).split()
STREETS = (
    "Alder Lane",
    "Beacon Street",
    "Chestnut Court",
    "Dogwood Drive",
    "Elm Terrace",
    "Foxglove Way",
    "Granite Road",
    "Heron Circle",
    "Ivy Place",
    "Juniper Avenue",
    "Kestrel Row",
    "Linden Boulevard",
    "Meadowlark Drive",
    "Northwind Road",
)
MBI_LETTERS = "ACDEFGHJKMNPQRTUVWXY"  # the MBI alphabet leaves out S, L, O, I, B, Z

# --------------------------------------------------------------------------- scenarios

LEVELS = ("straightforward", "low", "moderate", "high")
OFFICE_EM = {
    "new": ("99202", "99203", "99204", "99205"),
    "established": ("99212", "99213", "99214", "99215"),
}
# Total time (minutes) that supports each office level, 2024+ CPT (no prolonged service).
OFFICE_TIME = {
    "new": ((15, 29), (30, 44), (45, 59), (60, 74)),
    "established": ((10, 19), (20, 29), (30, 39), (40, 54)),
}
ED_EM = ("99282", "99283", "99284", "99285")
PREVENTIVE_AGES = ((1, 0), (5, 1), (12, 2), (18, 3), (40, 4), (65, 5), (200, 6))


@dataclass(frozen=True)
class Scenario:
    """One kind of visit. ``dx`` maps a side ("left"/"right"/"") to its codes."""

    key: str
    sites: tuple[str, ...]
    ages: tuple[int, int]
    note: str
    dx: dict[str, tuple[str, ...]]
    procedures: tuple[str, ...] = ()
    mdm: str | None = "low"  # None: no separately billable E/M
    setting: str = "office"  # office | ed | inpatient
    em: str | None = None  # "preventive" or a fixed code
    visit: str = "any"  # any | established
    sex: str | None = None
    timed: bool = True  # may carry a documented total time
    supplied: dict[str, tuple[str, ...]] = field(default_factory=dict)  # EHR codes by side
    route: str = "auto"
    weight: int = 3
    sparse: bool = False  # terse note: no MDM statement, no Assessment/Plan


def _sided(left: str, right: str) -> dict[str, tuple[str, ...]]:
    return {"left": (left,), "right": (right,)}


_ANKLE = """Chief complaint: {Side} ankle pain after an inversion injury.
HPI: {age}-year-old {sex} rolled the {side} ankle stepping off a curb yesterday. Able to bear weight with pain. Denies numbness or tingling.
Exam: {Side} ankle with lateral swelling and tenderness over the anterior talofibular ligament. No bony tenderness at the malleoli. Neurovascularly intact.
Results: X-ray {side} ankle, 3 views, read in clinic: no acute fracture or dislocation.
Assessment:
1. Sprain of {side} ankle, initial encounter.
Plan:
- RICE, ankle brace, ibuprofen over the counter as needed.
- Return if unable to bear weight or not improving in 2 weeks."""
_DIABETES = """Chief complaint: Diabetes follow-up.
HPI: {age}-year-old {sex} with type 2 diabetes on basal insulin glargine and chronic kidney disease. Home glucose readings 120-180. No hypoglycemia.
Exam: BP 128/76. Monofilament sensation intact bilaterally. No edema.
Results: Point-of-care hemoglobin A1c 7.8%. Recent eGFR 52 mL/min, stable, reviewed.
Assessment:
1. Type 2 diabetes mellitus with diabetic chronic kidney disease.
2. Chronic kidney disease stage 3a.
3. Long-term current use of insulin.
Plan:
- Increase insulin glargine from 20 to 22 units nightly.
- Continue empagliflozin. Basic metabolic panel and urine albumin in 3 months."""
_BACK = """Chief complaint: Low back pain for 1 week.
HPI: {age}-year-old {sex} with low back pain after lifting boxes. No radiation to the legs. Denies bowel or bladder changes, saddle anesthesia or fever.
Exam: Lumbar paraspinal tenderness. Straight leg raise negative bilaterally. Strength and reflexes normal.
Assessment:
1. Acute low back pain without sciatica.
Plan:
- Naproxen 500 mg twice daily with food for 10 days (prescription sent).
- Heat, activity as tolerated, home exercise handout."""

SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "ankle_sprain",
        ("south-urgent-care",),
        (12, 60),
        _ANKLE,
        _sided("S93402A", "S93401A"),
        ("73610",),
        weight=5,
    ),
    Scenario(
        "ankle_sprain_nonbillable_ehr_code",
        ("south-urgent-care",),
        (12, 60),
        _ANKLE,
        _sided("S93402A", "S93401A"),
        ("73610",),
        supplied={"left": ("S93.4",), "right": ("S93.4",)},
        route="review",
        weight=1,
    ),
    Scenario(
        "ankle_sprain_laterality_conflict",
        ("south-urgent-care",),
        (12, 60),
        _ANKLE,
        _sided("S93402A", "S93401A"),
        ("73610",),
        supplied={"left": ("S93.401A",), "right": ("S93.402A",)},
        route="review",
        weight=1,
    ),
    Scenario(
        "upper_respiratory_infection",
        ("north-clinic", "south-urgent-care"),
        (2, 70),
        """Chief complaint: Sore throat, nasal congestion and cough for 3 days.
HPI: {age}-year-old {sex} with rhinorrhea, mild sore throat and dry cough. No fever. Denies shortness of breath.
Exam: Afebrile. Nasal mucosa edematous with clear discharge. Pharynx mildly erythematous without exudate. Lungs clear.
Assessment:
1. Acute upper respiratory infection.
Plan:
- Supportive care, fluids, saline spray, acetaminophen over the counter.
- Return if fever or not improving after 10 days.""",
        {"": ("J069",)},
        weight=5,
    ),
    Scenario(
        "strep_pharyngitis",
        ("north-clinic", "south-urgent-care"),
        (3, 45),
        """Chief complaint: Sore throat and fever.
HPI: {age}-year-old {sex} with 2 days of sore throat, fever to 101.8 F and painful swallowing. No cough.
Exam: Temp 101.6 F. Tonsillar exudate and tender anterior cervical lymphadenopathy.
Results: Rapid strep antigen test performed in clinic: positive.
Assessment:
1. Streptococcal pharyngitis, rapid strep positive.
Plan:
- Amoxicillin twice daily for 10 days, dosed by weight.
- Return to school or work after 24 hours of antibiotics.""",
        {"": ("J020",)},
        ("87880",),
        weight=4,
    ),
    Scenario(
        "acute_otitis_media",
        ("north-clinic", "south-urgent-care"),
        (1, 10),
        """Chief complaint: {Side} ear pain and fever.
HPI: {age}-year-old {sex} with {side} ear pain since last night, fussiness and fever. History obtained from the parent.
Exam: {Side} tympanic membrane bulging and erythematous with purulent effusion, no perforation. Other ear normal.
Assessment:
1. Acute suppurative otitis media of the {side} ear without spontaneous rupture of the tympanic membrane.
Plan:
- Amoxicillin 90 mg/kg/day divided twice daily for 10 days.
- Ibuprofen for pain. Recheck if not improved in 48-72 hours.""",
        _sided("H66002", "H66001"),
        weight=4,
    ),
    Scenario(
        "diabetes_ckd3a_insulin",
        ("north-clinic", "east-hospital"),
        (55, 85),
        _DIABETES,
        {"": ("E1122", "N1831", "Z794")},
        ("83036",),
        mdm="moderate",
        visit="established",
    ),
    Scenario(
        "diabetes_ckd3a_nonbillable_ehr_code",
        ("north-clinic",),
        (55, 85),
        _DIABETES,
        {"": ("E1122", "N1831", "Z794")},
        ("83036",),
        mdm="moderate",
        visit="established",
        supplied={"": ("E11.2", "N18.31")},
        route="review",
        weight=1,
    ),
    Scenario(
        "essential_hypertension",
        ("north-clinic",),
        (40, 80),
        """Chief complaint: Blood pressure follow-up.
HPI: {age}-year-old {sex} with essential hypertension on lisinopril 10 mg daily. Home readings in the 130s/80s. Denies headache, chest pain or palpitations.
Exam: BP 134/82, HR 72. Heart regular rate and rhythm. No edema.
Assessment:
1. Essential hypertension, controlled.
Plan:
- Continue lisinopril 10 mg daily; refill sent.
- Low-sodium diet. Recheck in 6 months.""",
        {"": ("I10",)},
        visit="established",
    ),
    Scenario(
        "hypertension_hyperlipidemia",
        ("north-clinic", "east-hospital"),
        (45, 80),
        """Chief complaint: Follow-up of blood pressure and cholesterol.
HPI: {age}-year-old {sex} with essential hypertension and hyperlipidemia taking amlodipine 5 mg and atorvastatin 20 mg daily. No muscle aches.
Exam: BP 138/86. Heart regular. Lungs clear.
Results: Lipid panel reviewed: LDL 132 mg/dL.
Assessment:
1. Essential hypertension.
2. Hyperlipidemia.
Plan:
- Increase atorvastatin to 40 mg daily.
- Continue amlodipine 5 mg daily. Repeat lipid panel in 3 months.""",
        {"": ("I10", "E785")},
        mdm="moderate",
        visit="established",
    ),
    Scenario(
        "low_back_pain", ("north-clinic", "south-urgent-care"), (20, 64), _BACK, {"": ("M5450",)}
    ),
    Scenario(
        "low_back_pain_invalid_ehr_code",
        ("north-clinic",),
        (20, 64),
        _BACK,
        {"": ("M5450",)},
        supplied={"": ("M54.5",)},
        route="review",
        weight=1,
    ),
    Scenario(
        "urinary_tract_infection",
        ("north-clinic", "south-urgent-care"),
        (18, 64),
        """Chief complaint: Burning with urination.
HPI: {age}-year-old {sex} with 2 days of dysuria, urinary frequency and urgency. No fever, flank pain or vaginal discharge.
Exam: Afebrile. Mild suprapubic tenderness. No costovertebral angle tenderness.
Results: Urine dipstick in clinic: positive leukocyte esterase and nitrites.
Assessment:
1. Urinary tract infection.
Plan:
- Nitrofurantoin 100 mg twice daily for 5 days.
- Urine culture sent to the reference lab. Increase fluids.""",
        {"": ("N390",)},
        ("81002",),
        sex="F",
    ),
    Scenario(
        "hand_laceration_simple_repair",
        ("south-urgent-care",),
        (8, 70),
        """Chief complaint: Cut on the {side} hand.
HPI: {age}-year-old {sex} cut the back of the {side} hand on a kitchen knife about 1 hour ago. Tetanus up to date.
Exam: 2.5 cm linear laceration of the dorsal {side} hand, no tendon involvement, full range of motion, sensation intact.
Procedure: Simple repair of 2.5 cm laceration of the {side} hand. Lidocaine 1% local anesthesia, irrigated, closed with 4 interrupted 4-0 nylon sutures.
Assessment:
1. Laceration without foreign body of {side} hand, initial encounter.
Plan:
- Wound care instructions. Suture removal in 10 days.""",
        _sided("S61412A", "S61411A"),
        ("12001",),
        mdm=None,
        timed=False,
    ),
    Scenario(
        "flu_vaccine",
        ("north-clinic",),
        (19, 90),
        """Chief complaint: Seasonal influenza vaccination.
HPI: {age}-year-old {sex} here for the annual flu shot. No prior reactions. Feeling well today.
Procedure: Influenza vaccine, trivalent, preservative free, 0.5 mL intramuscular, left deltoid. Vaccine information statement provided.
Assessment:
1. Encounter for immunization.
Plan:
- Observed 15 minutes without reaction.""",
        {"": ("Z23",)},
        ("90656", "ADMIN"),
        mdm=None,
        timed=False,
    ),
    Scenario(
        "adult_preventive_visit",
        ("north-clinic",),
        (18, 64),
        """Chief complaint: Annual physical.
HPI: {age}-year-old {sex} for a routine preventive examination. No acute complaints. Exercises 3 times a week, nonsmoker.
Exam: Normal comprehensive examination. BP 118/74. BMI 24.
Assessment:
1. Encounter for general adult medical examination without abnormal findings.
Plan:
- Age-appropriate screening and counseling on diet and exercise provided.
- Return in 1 year.""",
        {"": ("Z0000",)},
        em="preventive",
        mdm=None,
        timed=False,
    ),
    Scenario(
        "well_child_visit",
        ("north-clinic",),
        (1, 17),
        """Chief complaint: Well-child visit.
HPI: {age}-year-old {sex} here with a parent for a routine well-child check. Growing and developing normally, no concerns.
Exam: Normal growth parameters. Normal comprehensive examination.
Assessment:
1. Routine child health examination without abnormal findings.
Plan:
- Anticipatory guidance provided. Immunizations up to date.
- Next well visit in 1 year.""",
        {"": ("Z00129",)},
        em="preventive",
        mdm=None,
        timed=False,
    ),
    Scenario(
        "medicare_annual_wellness",
        ("north-clinic",),
        (66, 90),
        """Chief complaint: Medicare annual wellness visit.
HPI: {age}-year-old {sex} for a subsequent annual wellness visit. Health risk assessment reviewed. No falls this year.
Exam: BP 132/78. Weight stable. Cognitive screen normal.
Assessment:
1. Encounter for general adult medical examination without abnormal findings.
Plan:
- Personalized prevention plan updated. Screening schedule reviewed.""",
        {"": ("Z0000",)},
        ("G0439",),
        mdm=None,
        visit="established",
        timed=False,
        weight=2,
    ),
    Scenario(
        "skin_abscess_incision_drainage",
        ("south-urgent-care",),
        (18, 70),
        """Chief complaint: Painful lump on the {side} thigh.
HPI: {age}-year-old {sex} with 4 days of a tender swelling on the {side} thigh. No fever.
Exam: 3 cm fluctuant abscess of the {side} lateral thigh with surrounding erythema.
Procedure: Incision and drainage of abscess, simple. Lidocaine local, 1 cm incision, purulent material expressed, cavity irrigated and packed.
Assessment:
1. Cutaneous abscess of {side} thigh.
Plan:
- Warm compresses. Packing removal in 2 days. Return for fever or spreading redness.""",
        _sided("L02416", "L02415"),
        ("10060",),
        mdm=None,
        timed=False,
    ),
    Scenario(
        "knee_osteoarthritis_injection",
        ("north-clinic", "east-hospital"),
        (50, 85),
        """Chief complaint: {Side} knee pain.
HPI: {age}-year-old {sex} with known primary osteoarthritis of the {side} knee, worse with stairs despite physical therapy and acetaminophen.
Exam: {Side} knee with crepitus and medial joint line tenderness, small effusion, no warmth.
Procedure: Injection of the {side} knee joint. Sterile prep, lateral approach, triamcinolone acetonide 40 mg with 3 mL lidocaine injected without ultrasound guidance. Tolerated well.
Assessment:
1. Unilateral primary osteoarthritis, {side} knee.
Plan:
- Ice tonight. May repeat injection in 3 months.""",
        _sided("M1712", "M1711"),
        ("20610", "J3301"),
        mdm=None,
        visit="established",
        timed=False,
    ),
    Scenario(
        "asthma_exacerbation_nebulizer",
        ("north-clinic", "south-urgent-care"),
        (5, 50),
        """Chief complaint: Wheezing and shortness of breath.
HPI: {age}-year-old {sex} with mild intermittent asthma, wheezing since yesterday after a cold. Using the albuterol inhaler every 4 hours.
Exam: Expiratory wheezes bilaterally, mild retractions, O2 saturation 94%.
Procedure: Albuterol 2.5 mg nebulizer treatment given in clinic; wheezing improved, saturation 97% after treatment.
Assessment:
1. Mild intermittent asthma with acute exacerbation.
Plan:
- Prednisone for 5 days, albuterol every 4-6 hours as needed.
- Follow up in 2-3 days or sooner if worse.""",
        {"": ("J4521",)},
        ("94640", "J7613"),
        mdm="moderate",
    ),
    Scenario(
        "covid19_rapid_test_positive",
        ("north-clinic", "south-urgent-care"),
        (12, 80),
        """Chief complaint: Fever, cough and body aches.
HPI: {age}-year-old {sex} with 2 days of fever, dry cough, myalgias and loss of taste. Denies shortness of breath or chest pain.
Exam: Temp 100.9 F, O2 saturation 98% on room air. Lungs clear.
Results: SARS-CoV-2 rapid antigen test performed in clinic: positive.
Assessment:
1. COVID-19, confirmed by positive rapid antigen test.
Plan:
- Supportive care, isolation guidance, acetaminophen as needed.
- Return for difficulty breathing.""",
        {"": ("U071",)},
        ("87811",),
    ),
    Scenario(
        "wrist_fracture_splint",
        ("south-urgent-care",),
        (8, 80),
        """Chief complaint: {Side} wrist pain after a fall.
HPI: {age}-year-old {sex} fell on an outstretched {side} hand this morning. Pain and swelling at the wrist.
Exam: {Side} distal radius swelling and tenderness, skin intact, neurovascularly intact.
Results: X-ray {side} wrist, 3 views: fracture of the distal radius without displacement.
Procedure: Application of a short arm splint, {side}.
Assessment:
1. Closed fracture of the lower end of the {side} radius, initial encounter.
Plan:
- Splint, sling, ice, elevation. Hydrocodone-acetaminophen prescribed for 3 days.
- Orthopedic referral within 1 week.""",
        _sided("S52502A", "S52501A"),
        ("73110", "29125"),
        mdm="moderate",
    ),
    Scenario(
        "gerd_denies_chest_pain",
        ("north-clinic",),
        (25, 75),
        """Chief complaint: Heartburn.
HPI: {age}-year-old {sex} with 6 weeks of burning epigastric discomfort after meals and at night. Denies chest pain, dysphagia, vomiting, melena or weight loss.
Exam: Abdomen soft, mild epigastric tenderness. Heart regular, lungs clear.
Assessment:
1. Gastroesophageal reflux disease without esophagitis.
Plan:
- Omeprazole 20 mg daily for 8 weeks (prescription sent). Avoid late meals.
- No chest pain reported; no cardiac workup indicated.""",
        {"": ("K219",)},
    ),
    Scenario(
        "probable_pneumonia_symptoms_coded",
        ("north-clinic", "south-urgent-care"),
        (18, 75),
        """Chief complaint: Cough and fever.
HPI: {age}-year-old {sex} with 5 days of productive cough and fevers to 102 F.
Exam: Temp 101.4 F, O2 saturation 95%. Crackles at the right base.
Results: Chest x-ray, 2 views, obtained in clinic; radiology read pending.
Assessment:
1. Probable community-acquired pneumonia, pending chest x-ray read.
2. Acute cough.
3. Fever.
Plan:
- Start amoxicillin-clavulanate and azithromycin empirically.
- Will call with the final x-ray result; return for shortness of breath.""",
        {"": ("R051", "R509")},
        ("71046",),
        mdm="moderate",
    ),
    Scenario(
        "sparse_followup_note",
        ("north-clinic",),
        (45, 80),
        """F/u BP. Doing ok, no complaints.
BP 132/84.
Cont lisinopril 10 mg. RTC 3 mo.""",
        {"": ("I10",)},
        visit="established",
        timed=False,
        route="review",
        weight=2,
        sparse=True,
    ),
    Scenario(
        "ed_chest_pain_ecg_troponin",
        ("east-hospital",),
        (35, 85),
        """Chief complaint: Chest pain.
HPI: {age}-year-old {sex} with 2 hours of substernal chest pressure at rest, nonradiating. Denies shortness of breath, diaphoresis or syncope.
Exam: BP 146/88, HR 84, O2 saturation 98%. Heart regular, lungs clear, no edema.
Results: 12-lead ECG interpreted by me: normal sinus rhythm, no acute ST changes. Troponin I negative x2. Chest x-ray without acute findings.
Assessment:
1. Chest pain, unspecified; acute coronary syndrome ruled out.
Plan:
- Aspirin given. Discharged home with outpatient stress test and cardiology follow-up within 72 hours.
- Return immediately for recurrent or worsening pain.""",
        {"": ("R079",)},
        ("93010",),
        mdm="moderate",
        setting="ed",
        timed=False,
        weight=4,
    ),
    Scenario(
        "ed_forehead_laceration_repair",
        ("east-hospital",),
        (5, 70),
        """Chief complaint: Forehead laceration.
HPI: {age}-year-old {sex} struck the forehead on a cabinet door. No loss of consciousness, no vomiting.
Exam: 3.5 cm linear laceration of the forehead, no foreign body, no bony step-off. Neurologic exam normal.
Procedure: Simple repair of 3.5 cm forehead laceration with 6-0 nylon after irrigation under local anesthesia.
Assessment:
1. Laceration without foreign body of forehead, initial encounter.
Plan:
- Wound care, suture removal in 5 days, head injury precautions.""",
        {"": ("S0181XA",)},
        ("12013",),
        setting="ed",
        timed=False,
    ),
    Scenario(
        "inpatient_pneumonia",
        ("east-hospital",),
        (60, 90),
        """Admission history and physical.
Chief complaint: Shortness of breath, cough and fever.
HPI: {age}-year-old {sex} with type 2 diabetes and essential hypertension presenting with 3 days of productive cough and fever, O2 saturation 89% on room air.
Exam: Temp 102.1 F, RR 24. Crackles right lower lobe.
Results: Chest x-ray: right lower lobe consolidation. WBC 15.2. Blood cultures pending.
Assessment:
1. Community-acquired pneumonia, right lower lobe.
2. Type 2 diabetes mellitus without complications.
3. Essential hypertension.
Plan:
- Admit to the medical floor. IV ceftriaxone and azithromycin, supplemental oxygen.
- Sliding-scale insulin, hold metformin. Continue lisinopril.""",
        {"": ("J189", "E119", "I10")},
        (),
        mdm="high",
        setting="inpatient",
        em="99223",
        timed=False,
        route="review",
        weight=2,
    ),
    Scenario(
        "inpatient_heart_failure",
        ("east-hospital",),
        (65, 90),
        """Admission history and physical.
Chief complaint: Worsening shortness of breath and leg swelling.
HPI: {age}-year-old {sex} with hypertensive heart disease and chronic systolic heart failure (ejection fraction 30%) with 1 week of orthopnea, 4 kg weight gain and bilateral leg edema.
Exam: JVD to the jaw, bibasilar crackles, 2+ pitting edema.
Results: BNP 1450. Chest x-ray: pulmonary vascular congestion. Troponin negative.
Assessment:
1. Acute on chronic systolic congestive heart failure.
2. Hypertensive heart disease with heart failure.
Plan:
- Admit to telemetry. IV furosemide 40 mg twice daily, strict intake and output, daily weights.
- Continue carvedilol and sacubitril-valsartan; cardiology consult.""",
        {"": ("I110", "I5023")},
        (),
        mdm="high",
        setting="inpatient",
        em="99223",
        timed=False,
        route="review",
        weight=2,
    ),
)

SITE_WEIGHTS = {"north-clinic": 40, "south-urgent-care": 35, "east-hospital": 25}
COMMERCIAL = ("AETNA1", "BCBS01", "UHC001", "HMO001")


@dataclass(frozen=True)
class Sample:
    bundle: dict
    expected: dict
    scenario: str
    encounter: Encounter  # what the bundle should parse to


def generate_bundles(
    n: int,
    seed: int = 7,
    sites: Iterable[str] | None = None,
    start_date: date = DEFAULT_START_DATE,
) -> list[dict]:
    """``n`` synthetic FHIR R4 Bundles; same arguments, same bundles."""
    return [s.bundle for s in generate_samples(n, seed, sites, start_date)]


def generate_samples(
    n: int,
    seed: int = 7,
    sites: Iterable[str] | None = None,
    start_date: date = DEFAULT_START_DATE,
) -> list[Sample]:
    """``n`` labelled samples, deterministic for a given seed.

    Encounter ids are ``ENC-<site>-<seq>``, seq = the seed then the 1-based
    position in six digits (``ENC-north-clinic-7000001``), so runs with different
    seeds never share an id. Raises ValueError for an unknown site id or n > 999999.
    """
    if not 0 <= n <= 999_999:
        raise ValueError("n must be between 0 and 999999")
    chosen = list(SITE_WEIGHTS) if sites is None else list(sites)
    unknown = [s for s in chosen if s not in SITES]
    if unknown or not chosen:
        raise ValueError(f"unknown or empty site list; known sites: {', '.join(SITES)}")
    rng = random.Random(seed)
    # Ids stay <= 38 characters: long or negative seeds are shortened to a digest.
    tag = str(seed) if 0 <= seed < 10**8 else hashlib.sha256(str(seed).encode()).hexdigest()[:8]
    weights = [SITE_WEIGHTS[s] for s in chosen]
    out = []
    for i in range(n):
        site = SITES[rng.choices(chosen, weights)[0]]
        options = [s for s in SCENARIOS if site.site_id in s.sites]
        scenario = rng.choices(options, [s.weight for s in options])[0]
        out.append(_sample(rng, f"{tag}{i + 1:06d}", site, scenario, start_date, seed))
    return out


def with_third_payer(samples: list[Sample], seed: int = 7, share: float = 0.5) -> list[Sample]:
    """The samples, a seeded ``share`` of the Medicare patients with a Medigap plan (Medicare,
    then Blue Lakes) given a third plan (a commercial plan through work), so the demo bills a
    tertiary payer too. Drawn from a generator of its own: the samples' other content, and
    ``generate_samples``' output for the seed, stay as they are."""
    rng = random.Random(f"{seed}:third-payer")
    out = []
    for smp in samples:
        enc = smp.encounter
        payers = [c.payer_id for c in enc.coverages]
        if payers != ["MCR01", "BCBS01"] or rng.random() >= share:
            out.append(smp)
            continue
        payer = PAYERS["UHC001"]
        third = Coverage(
            payer_id=payer.payer_id,
            payer_name=payer.name,
            member_id=_member_id(rng, payer),
            group_number=f"G{rng.randrange(10**5):05d}",
            filing_indicator=payer.filing_indicator,
            sequence="tertiary",
        )
        enc = enc.model_copy(update={"coverages": [*enc.coverages, third]})
        bundle = encounter_to_bundle(enc, salt=str(seed))
        out.append(
            Sample(bundle=bundle, expected=smp.expected, scenario=smp.scenario, encounter=enc)
        )
    return out


# --------------------------------------------------------------------------- one sample


def _birth_date(rng: random.Random, age: int, on: date) -> date:
    month, day = rng.randint(1, 12), rng.randint(1, 28)
    return date(on.year - age - ((month, day) > (on.month, on.day)), month, day)


def _person(rng, sex: str, age: int, on: date, last: str, address: Address | None, mrn=None):
    first = rng.choice(FEMALE if sex == "F" else MALE)
    return Person(
        patient_id=mrn,
        first_name=first,
        last_name=last,
        birth_date=_birth_date(rng, age, on),
        gender=sex,
        address=address,
    )


def _member_id(rng: random.Random, payer: Payer) -> str:
    if payer.kind == "medicare":  # MBI layout: C A AN N A AN N A A N N
        pools = {
            "C": "123456789",
            "A": MBI_LETTERS,
            "X": MBI_LETTERS + "0123456789",
            "N": "0123456789",
        }
        return "".join(rng.choice(pools[c]) for c in "CAXNAXNAANN")
    if payer.kind == "medicaid":
        return f"{rng.randrange(10**12):012d}"
    prefix = {"AETNA1": "W", "BCBS01": "XLB", "HMO001": "H"}.get(payer.payer_id, "")
    return f"{prefix}{rng.randrange(10**9):09d}"


def _coverages(rng: random.Random, patient: Person, age: int, on: date) -> list[Coverage]:
    def cover(payer: Payer, seq: str, relationship="self", subscriber=None) -> Coverage:
        group = None if payer.kind != "commercial" else f"G{rng.randrange(10**5):05d}"
        return Coverage(
            payer_id=payer.payer_id,
            payer_name=payer.name,
            member_id=_member_id(rng, payer),
            group_number=group,
            relationship=relationship,
            subscriber=subscriber,
            filing_indicator=payer.filing_indicator,
            sequence=seq,
        )

    def adult(low: int, high: int) -> Person:
        return _person(
            rng, rng.choice("FM"), rng.randint(low, high), on, patient.last_name, patient.address
        )

    commercial = [PAYERS[p] for p in COMMERCIAL]
    if age >= 65:
        out = [cover(PAYERS["MCR01"], "primary")]
        if rng.random() < 0.35:
            out.append(cover(rng.choice([PAYERS["MCD01"], PAYERS["BCBS01"]]), "secondary"))
        return out
    if age < 18:
        if rng.random() < 0.45:
            out = [cover(PAYERS["MCD01"], "primary")]
        else:
            out = [cover(rng.choice(commercial), "primary", "child", adult(age + 20, age + 40))]
        if rng.random() < 0.12:
            payer = rng.choice([p for p in commercial if p.payer_id != out[0].payer_id])
            out.append(cover(payer, "secondary", "child", adult(age + 20, age + 40)))
        return out
    if rng.random() < 0.25:
        return [cover(PAYERS["MCD01"], "primary")]
    primary = rng.choice(commercial)
    if rng.random() < 0.25:
        spouse = adult(max(18, age - 6), min(64, age + 6))
        out = [cover(primary, "primary", "spouse", spouse)]
    else:
        out = [cover(primary, "primary")]
    if rng.random() < 0.12:
        payer = rng.choice([p for p in commercial if p.payer_id != primary.payer_id])
        out.append(cover(payer, "secondary", "spouse", adult(max(18, age - 6), min(64, age + 6))))
    return out


def _em_code(scn: Scenario, visit: str | None, age: int, level: int | None) -> str | None:
    if scn.em == "preventive":
        band = next(i for limit, i in PREVENTIVE_AGES if age < limit)
        return ("9938" if visit == "new" else "9939") + str(band + 1)
    if scn.em:
        return scn.em
    if scn.mdm is None or level is None:
        return None
    return ED_EM[level] if scn.setting == "ed" else OFFICE_EM[visit or "established"][level]


def _sample(rng, seq: str, site: Site, scn: Scenario, start: date, seed: int) -> Sample:
    on = start + timedelta(days=rng.randrange(28))
    if site.site_id == "north-clinic" and on.weekday() >= 5:  # the clinic is closed weekends
        on -= timedelta(days=on.weekday() - 4)
    age = rng.randint(*scn.ages)
    sex = scn.sex or rng.choice("FM")
    side = rng.choice([k for k in scn.dx])
    city = site.address
    home = Address(
        line1=f"{rng.randint(10, 9899)} {rng.choice(STREETS)}",
        city=city.city,
        state=city.state,
        postal_code=city.postal_code[:5],
    )
    patient = _person(rng, sex, age, on, rng.choice(LAST), home, f"MRN{rng.randrange(10**7):07d}")
    coverages = _coverages(rng, patient, age, on)
    primary = coverages[0]

    visit = None
    if scn.setting == "office":
        visit = "established" if scn.visit == "established" or rng.random() < 0.7 else "new"
    level = LEVELS.index(scn.mdm) if scn.mdm else None
    minutes = None
    lines = [
        scn.note.format(
            age=age, sex="female" if sex == "F" else "male", side=side, Side=side.capitalize()
        )
    ]
    if level is not None and not scn.sparse:
        lines.append(f"Medical decision making: {scn.mdm} complexity.")
    if scn.setting == "office" and scn.timed and level is not None and rng.random() < 0.45:
        level = min(3, level + rng.choice((0, 0, 1)))  # time may support a higher level
        minutes = rng.randint(*OFFICE_TIME[visit or "established"][level])
        lines.append(
            f"Total time on the date of the encounter: {minutes} minutes, including "
            "history, examination, counseling and documentation."
        )
    em = _em_code(scn, visit, age, level)
    dx = scn.dx[side]
    admin = "G0008" if primary.filing_indicator == "MB" else "90471"
    procedures = [admin if p == "ADMIN" else p for p in scn.procedures]

    supplied = list(scn.supplied.get(side, ()))
    if not supplied and rng.random() < 0.3:  # many EHRs send their own (valid) problem codes
        supplied = [c[:3] + "." + c[3:] if len(c) > 3 else c for c in dx]
    px_supplied = [p for p in procedures if rng.random() < 0.2]

    setting = scn.setting
    doctor = rng.choice(site.practitioners)
    institutional = None
    end = None
    enc_class = {"office": "AMB", "ed": "EMER", "inpatient": "IMP"}[setting]
    if setting == "inpatient":
        doctor = next(p for p in site.practitioners if p.taxonomy == "208M00000X")
        end = on + timedelta(days=rng.randint(2, 5))
        institutional = Institutional(
            type_of_bill="0111",
            admission_date=on,
            admission_type="1",
            admission_source="1",
            discharge_status=rng.choice(["01", "01", "01", "06"]),
            attending=doctor,
        )
    prior_auth = None
    if setting == "inpatient" and primary.filing_indicator != "MB":
        prior_auth = f"PA{rng.randrange(10**8):08d}"
    encounter = Encounter(
        encounter_id=f"ENC-{site.site_id}-{seq}",
        site_id=site.site_id,
        encounter_class=enc_class,
        service_date=on,
        end_date=end,
        length_minutes=minutes if minutes and rng.random() < 0.8 else None,
        visit_type=visit,
        place_of_service=site.place_of_service[setting],
        billing_provider=site.organization,
        rendering_provider=doctor,
        patient=patient,
        coverages=coverages,
        note="\n".join(lines),
        diagnoses=[SuppliedCode(system="icd10cm", code=c) for c in supplied],
        procedures=[
            SuppliedCode(system="cpt" if p[0].isdigit() else "hcpcs", code=p) for p in px_supplied
        ],
        prior_authorization=prior_auth,
        institutional=institutional,
    )
    bundle = encounter_to_bundle(
        encounter,
        references="relative" if rng.random() < 0.2 else "uuid",
        note_format="composition" if rng.random() < 0.25 else "document",
        salt=str(seed),
    )
    if rng.random() < 0.3:  # resources arrive in any order
        rng.shuffle(bundle["entry"])
    expected = {
        "principal_dx": dx[0],
        "diagnoses": list(dx),
        "em_code": em,
        "procedures": procedures,
        "route": scn.route,
    }
    return Sample(bundle=bundle, expected=expected, scenario=scn.key, encounter=encounter)


# --------------------------------------------------------------------------- Encounter -> FHIR

_BASE = "https://rcm.example/fhir"
_GENDER = {"M": "male", "F": "female", "U": "unknown"}
_FILING_TEXT = {
    "MB": "Medicare Part B",
    "MA": "Medicare Part A",
    "MC": "Medicaid",
    "BL": "Blue Cross Blue Shield",
    "HM": "HMO",
    "CI": "Commercial insurance",
}
_PROGRESS_NOTE = {
    "coding": [{"system": "http://loinc.org", "code": "11506-3", "display": "Progress note"}]
}


def _ident(system: str, value: str) -> dict:
    return {"system": system, "value": value}


def _coding(system: str, code: str) -> dict:
    return {"coding": [{"system": system, "code": code}]}


def _address(a: Address | None, use: str) -> dict:
    if a is None:
        return {}
    lines = [a.line1] + ([a.line2] if a.line2 else [])
    return {
        "address": [
            {
                "use": use,
                "line": lines,
                "city": a.city,
                "state": a.state,
                "postalCode": a.postal_code,
            }
        ]
    }


def _person_body(p: Person) -> dict:
    body = {
        "name": [{"use": "official", "family": p.last_name, "given": [p.first_name]}],
        "gender": _GENDER[p.gender],
        "birthDate": p.birth_date.isoformat(),
    }
    if p.patient_id:
        mr = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]}
        body["identifier"] = [{"type": mr, **_ident(MRN_SYSTEM, p.patient_id)}]
    return body | _address(p.address, "home")


def _concept(c: SuppliedCode) -> dict:
    if c.system == "unknown":
        return {"text": c.code}
    coding = {"system": CODE_SYSTEM_URIS[c.system], "code": c.code}
    return {"coding": [coding | ({"display": c.display} if c.display else {})]}


class _Builder:
    def __init__(self, enc: Encounter, references: str, salt: str):
        if references not in ("uuid", "relative"):
            raise ValueError("references must be 'uuid' or 'relative'")
        self.enc, self.references, self.salt = enc, references, salt
        self.entries: list[dict] = []
        self.added: set[str] = set()

    def ref(self, rtype: str, tag: str) -> dict:
        rid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"rcm:{self.salt}:{self.enc.encounter_id}:{tag}"))
        return {"reference": f"urn:uuid:{rid}" if self.references == "uuid" else f"{rtype}/{rid}"}

    def add(self, rtype: str, tag: str, body: dict) -> dict:
        ref = self.ref(rtype, tag)
        if tag not in self.added:
            self.added.add(tag)
            if self.references == "uuid":  # the fullUrl is the identity; no resource id
                full, res = ref["reference"], {"resourceType": rtype} | body
            else:
                rid = ref["reference"].split("/", 1)[1]
                full, res = f"{_BASE}/{rtype}/{rid}", {"resourceType": rtype, "id": rid} | body
            self.entries.append({"fullUrl": full, "resource": res})
        return ref

    def practitioner(self, p: Provider) -> dict:
        body = {
            "identifier": [_ident(NPI_SYSTEM, p.npi)],
            "name": [{"family": p.last_name, "given": [p.first_name]}],
        }
        if p.taxonomy:
            body["qualification"] = [{"code": _coding(TAXONOMY_SYSTEM, p.taxonomy)}]
        return self.add("Practitioner", f"practitioner-{p.npi}-{p.last_name}", body)


def encounter_to_bundle(
    enc: Encounter, *, references: str = "uuid", note_format: str = "document", salt: str = ""
) -> dict:
    """A FHIR R4 collection Bundle that ``parse_intake`` reads back as ``enc``.

    ``references``: "uuid" (urn:uuid fullUrls) or "relative" (Type/id references);
    ``note_format``: "document" (DocumentReference, base64 text/plain) or
    "composition" (Composition section narrative). Resource ids are uuid5 of the
    encounter id and ``salt``. Raises ValueError for an unknown option.
    """
    if note_format not in ("document", "composition"):
        raise ValueError("note_format must be 'document' or 'composition'")
    b = _Builder(enc, references, salt)
    org = enc.billing_provider
    org_ids = [_ident(SITE_SYSTEM, enc.site_id)]
    org_ids += [_ident(NPI_SYSTEM, org.npi)] if org.npi else []
    org_ids += [_ident(EIN_SYSTEM, org.tax_id)] if org.tax_id else []
    org_body = {"identifier": org_ids, "name": org.name} | _address(org.address, "work")
    if org.taxonomy:
        org_body["type"] = [_coding(TAXONOMY_SYSTEM, org.taxonomy)]
    org_ref = b.add("Organization", "billing-provider", org_body)
    patient_ref = b.add("Patient", "patient", _person_body(enc.patient))
    enc_ref = b.ref("Encounter", "encounter")

    participants = []
    inst = enc.institutional
    attending = inst.attending if inst else None
    for prov, role in ((enc.rendering_provider, "PPRF"), (attending, "ATND")):
        if prov is None:
            continue
        if role == "ATND" and prov == enc.rendering_provider:
            participants[0]["type"].append(_coding(PARTICIPATION_SYSTEM, role))
            continue
        participants.append(
            {"type": [_coding(PARTICIPATION_SYSTEM, role)], "individual": b.practitioner(prov)}
        )

    for order, cov in enumerate(enc.coverages):
        payer_ref = b.add(
            "Organization",
            f"payer-{cov.payer_id}-{cov.payer_name}",
            {"identifier": [_ident(PAYER_SYSTEM, cov.payer_id)], "name": cov.payer_name},
        )
        # self: the patient subscribes; otherwise an unknown subscriber stays absent
        subscriber_ref = patient_ref if cov.relationship == "self" else None
        if cov.subscriber is not None:
            body = {
                "patient": patient_ref,
                "relationship": [_coding(RELATIONSHIP_SYSTEM, cov.relationship)],
            }
            subscriber_ref = b.add(
                "RelatedPerson", f"subscriber-{order}", body | _person_body(cov.subscriber)
            )
        body = {
            "extension": [{"url": FILING_INDICATOR_URL, "valueCode": cov.filing_indicator}],
            "status": "active",
            "type": {"text": _FILING_TEXT.get(cov.filing_indicator, "Health insurance")},
            "beneficiary": patient_ref,
            "relationship": _coding(RELATIONSHIP_SYSTEM, cov.relationship),
            "payor": [payer_ref],
            "order": {"primary": 1, "secondary": 2, "tertiary": 3}[cov.sequence],
        }
        if subscriber_ref:
            body["subscriber"] = subscriber_ref
        if cov.member_id:
            body["subscriberId"] = cov.member_id
        if cov.group_number:
            group = _coding("http://terminology.hl7.org/CodeSystem/coverage-class", "group")
            body["class"] = [{"type": group, "value": cov.group_number}]
        b.add("Coverage", f"coverage-{order}", body)

    identifiers = [_ident(ENCOUNTER_SYSTEM, enc.encounter_id)]
    if enc.prior_authorization:
        identifiers.append(_ident(PRIOR_AUTH_SYSTEM, enc.prior_authorization))
    period = {"start": enc.service_date.isoformat()}
    if enc.end_date:
        period["end"] = enc.end_date.isoformat()
    body: dict = {
        "identifier": identifiers,
        "status": "finished",
        "class": {"system": ACT_CODE_SYSTEM, "code": enc.encounter_class},
        "subject": patient_ref,
        "period": period,
        "serviceProvider": org_ref,
    }
    if participants:
        body["participant"] = participants
    if enc.visit_type:
        text = "New patient visit" if enc.visit_type == "new" else "Established patient visit"
        body["type"] = [
            {"coding": [{"system": "urn:rcm:visit-type", "code": enc.visit_type}], "text": text}
        ]
    if enc.length_minutes is not None:
        body["length"] = {
            "value": enc.length_minutes,
            "unit": "min",
            "system": "http://unitsofmeasure.org",
            "code": "min",
        }
    if enc.place_of_service:
        loc = {
            "name": f"{org.name} (place of service {enc.place_of_service})",
            "type": [_coding(POS_SYSTEM, enc.place_of_service)],
            "managingOrganization": org_ref,
        }
        body["location"] = [{"location": b.add("Location", "location", loc)}]
    if inst is not None:
        body |= _institutional(inst)
    conditions = []
    for i, code in enumerate(enc.diagnoses):
        cat = _coding(
            "http://terminology.hl7.org/CodeSystem/condition-category", "encounter-diagnosis"
        )
        ref = b.add(
            "Condition",
            f"condition-{i}",
            {
                "category": [cat],
                "code": _concept(code),
                "subject": patient_ref,
                "encounter": enc_ref,
            },
        )
        conditions.append({"condition": ref, "rank": i + 1})
    if conditions:
        body["diagnosis"] = conditions
    b.add("Encounter", "encounter", body)
    for i, code in enumerate(enc.procedures):
        b.add(
            "Procedure",
            f"procedure-{i}",
            {
                "status": "completed",
                "code": _concept(code),
                "subject": patient_ref,
                "encounter": enc_ref,
                "performedDateTime": enc.service_date.isoformat(),
            },
        )
    if enc.note:
        _note(b, enc, patient_ref, enc_ref, org_ref, participants, note_format)
    return {"resourceType": "Bundle", "type": "collection", "entry": b.entries}


def _institutional(inst: Institutional) -> dict:
    body: dict = {"extension": [{"url": TYPE_OF_BILL_URL, "valueString": inst.type_of_bill}]}
    if inst.admission_date:
        body["extension"].append(
            {"url": ADMISSION_DATE_URL, "valueDate": inst.admission_date.isoformat()}
        )
    hosp = {"dischargeDisposition": _coding(PATIENT_STATUS_SYSTEM, inst.discharge_status)}
    if inst.admission_source:
        hosp["admitSource"] = _coding(POINT_OF_ORIGIN_SYSTEM, inst.admission_source)
    body["hospitalization"] = hosp
    if inst.admission_type:
        body["priority"] = _coding(ADMISSION_TYPE_SYSTEM, inst.admission_type)
    return body


def _note(b: _Builder, enc: Encounter, patient_ref, enc_ref, org_ref, participants, fmt) -> None:
    note = enc.note or ""
    if fmt == "document":
        data = base64.b64encode(note.encode()).decode()
        b.add(
            "DocumentReference",
            "note",
            {
                "status": "current",
                "type": _PROGRESS_NOTE,
                "subject": patient_ref,
                "content": [
                    {"attachment": {"contentType": "text/plain; charset=utf-8", "data": data}}
                ],
                "context": {"encounter": [enc_ref]},
            },
        )
        return
    div = "<br/>".join(html.escape(line) for line in note.split("\n"))
    author = participants[0]["individual"] if participants else org_ref
    b.add(
        "Composition",
        "note",
        {
            "status": "final",
            "type": _PROGRESS_NOTE,
            "subject": patient_ref,
            "encounter": enc_ref,
            "date": enc.service_date.isoformat(),
            "author": [author],
            "title": "Progress note",
            "section": [
                {
                    "text": {
                        "status": "generated",
                        "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{div}</div>',
                    }
                }
            ],
        },
    )
