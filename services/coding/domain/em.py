"""Evaluation and management (E/M) level for office/outpatient and ED visits.

Office/outpatient (2021+ CPT rules): by total time on the date when the note
states it ('total time ... 25 minutes'), else the encounter length; new
patients 99202-99205 at 15/30/45/60 minutes, established 99212-99215 at
10/20/30/40 minutes, plus 99417 per full 15 minutes beyond the top level.
Without time, by medical decision making (MDM): the level two of the three
elements reach (problems, data, risk). ED visits (99281-99285) are by MDM
only. Preventive visits take 99381-99397 by age and new/established.

The MDM reading below is a documented heuristic, not a substitute for a coder:
- problems: self-limited (cold, wart) minimal; one acute uncomplicated
  illness/injury or one stable chronic illness low; two or more chronic
  illnesses, a chronic illness with exacerbation, an undiagnosed problem coded
  as symptoms, an acute illness with systemic symptoms or a complicated injury
  (fracture, concussion) moderate; severe exacerbation or threat to life high;
- data: unique tests ordered/reviewed, outside records and an independent
  historian (category 1); independent interpretation of a test not billed
  here (2); discussion with another physician (3);
- risk: OTC drugs / minor procedure low; prescription drug management (a
  prescription, refill, dose change or a named prescription drug continued)
  moderate; decision about hospitalization or escalation high.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from functools import lru_cache

from services.coding.domain.diagnoses import CHRONIC
from services.coding.domain.prefilter import by_initial, fold, gated, lower_ascii
from shared import icd10cm
from shared.events import Encounter

_TIME = [
    gated(
        r"\btotal (?:time|visit time|time spent)\b[^.\n]{0,60}?\b(\d{1,3})\s*(?:minutes|mins?)\b",
        re.I,
    ),
    gated(
        r"\b(\d{1,3})\s*(?:minutes|mins?)\b[^.\n]{0,60}?\b(?:total time|in total|on the date of (?:the )?(?:service|encounter|visit))",
        re.I,
    ),
    gated(
        r"\b(?:time spent|spent(?: a total of)?|face[- ]to[- ]face time)\b[^.\n]{0,40}?\b(\d{1,3})\s*(?:minutes|mins?)\b",
        re.I,
    ),
]
_COUNSEL_ONLY = gated(r"\b(?:smoking|tobacco|cessation)\b", re.I)
_NEW = ((15, "99202"), (30, "99203"), (45, "99204"), (60, "99205"))
_EST = ((10, "99212"), (20, "99213"), (30, "99214"), (40, "99215"))
MDM_OFFICE = {
    "new": ("99202", "99202", "99203", "99204", "99205"),
    "established": ("99212", "99212", "99213", "99214", "99215"),
}
MDM_ED = ("99282", "99282", "99283", "99284", "99285")
LEVEL_NAMES = ("", "straightforward", "low", "moderate", "high")

# The conditions diagnoses keep current despite 'history of', plus those the E/M logic alone
# counts as chronic illnesses (one list, not two copies that drift apart).
_CHRONIC = CHRONIC + ("L70",)
_SELF_LIMITED = (
    "J00",
    "B349",
    "L22",
    "H612",
    "B07",
    "B08",
    "L82",
    "W57",
    "T63",
    "L55",
    "Z",
    "J302",
    "R21",
    "L25",
)
# acute illnesses whose fever is systemic involvement; the fever and aches of a minor
# viral illness treated for its symptoms (influenza, COVID-19, bronchiolitis, viral
# gastroenteritis) keep it an acute uncomplicated illness (CPT's MDM definitions)
_SYSTEMIC = (
    "J18",
    "N10",
    "L03",
    "A09",
    "K57",
    "K35",
    "N39",
)
# threats to life or bodily function: also acute (or acute on chronic) respiratory failure,
# shock and hemorrhage with acute blood loss
_THREAT = (
    "I21",
    "I20",
    "I26",
    "A41",
    "R65",
    "R45851",
    "I63",
    "I16",
    "J960",
    "J962",
    "R57",
    "D62",
    "I46",
    "J80",
)
_ELECTIVE_SURGERY = gated(
    r"\b(?:surgical (?:referral|consultation|candidate|criteria)|surgery referral"
    r"|refer\w* (?:\w+ ){0,2}(?:to|for) (?:surgery|a surgeon|surgical)"
    r"|recommend\w* (?:\w+ ){0,3}(?:surgery|arthroplasty|replacement|resection|\w+ectomy|\w+otomy))\b",
    re.I,
)
_UNCERTAIN_PROGNOSIS = gated(
    r"\b(?:indeterminate|suspicious|worrisome|concerning for (?:malignancy|cancer|neoplasm)"
    r"|uncertain (?:prognosis|significance|etiology)|malignancy not (?:excluded|ruled out))\b",
    re.I,
)
_FEVER = gated(
    r"\bfevers?\b|\bfebrile\b|\b(?:t|temp(?:erature)?)\s*(?:of\s*)?(?:10[1-4]|100\.[4-9])", re.I
)
_ACS = gated(
    r"\bacs\b|\bacute coronary\b|\bmyocardial infarction\b|\bpulmonary embol|\btroponin|\baortic dissection",
    re.I,
)
_EXACERBATION = gated(
    r"\bexacerbation\b|\bworsening\b|\buncontrolled\b|\bpoorly controlled\b|\bnot (?:well )?controlled\b"
    r"|\bflar(?:e|ed|ing)\b|\bprogressi(?:on|ve)\b|\bnot at goal\b|\babove goal\b|\bsuboptimal\w*|\bundertreated\b"
    # 'worse with stairs' names what brings a symptom on, not a worsening illness
    r"|\bworse\b(?!\s+(?:with|when|while|at|after|on|during|by|if|in the (?:morning|evening)|at night))|\brising\b|\bnot improv\w*|\bfailed\b|\bside effects?\b|\bovertreated\b|\brecurren\w+"
    # not responding to its treatment
    r"|\bintractable\b|\brefractory\b|\b(?:without|w/o|no) relief\b",
    re.I,
)
# acute, self-limited or injury codes; other diagnoses count as chronic illnesses
_ACUTE = (
    "S",
    "T",
    "A",
    "B0",
    "B2",
    "B3",
    "J0",
    "J1",
    "J2",
    "H60",
    "H65",
    "H66",
    "H10",
    "H00",
    "N10",
    "N30",
    "N39",
    "L0",
    "L50",
    "H612",
    "K35",
    "K52",
    "K57",
    "R",
    "Z",
    "G51",
    "M54",
    "M25",
    "M79",
    "N20",
    "N83",
)
_SEVERE = gated(
    r"\bsevere (?:\w+ ){0,2}(?:exacerbation|flare)\b|\bstatus asthmaticus\b|\bhypertensive (?:urgency|emergency)\b",
    re.I,
)
_TESTS = gated(
    r"\b(?:"
    + by_initial(
        r"cbc|cmp|bmp|lipid panel|lipids|a1c|hba1c|tsh|free t4|urinalysis|ua|urine culture|x-?rays?|cxr|ct|mri|"
        r"ultrasound|ecg|ekg|troponin|d-dimer|blood cultures?|rapid strep|strep test|throat culture|flu (?:test|swab)|"
        r"influenza (?:test|swab)|covid (?:test|swab)|sars-cov-2|psa|vitamin d|b12|lipase|inr|bnp|hcg|"
        r"pregnancy test|monospot|esr|crp|magnesium|uric acid|microalbumin|urine albumin|egfr|creatinine|"
        r"metabolic panel|blood count|radiographs?|spirometry|holter|echo(?:cardiogram)?|tte|event monitor|stress test"
        r"|pfts?|dexa|eeg|emg|ncs|sleep study|psg|uacr|pth|ferritin|iron studies|culture|gastric emptying study"
    )
    + r")\b",
    re.I,
)
_HISTORIAN = gated(
    r"\bhistory (?:was )?(?:obtained |provided |given )?(?:from|by) (?:the )?(?:mother|father|mom|dad|parent|caregiver|wife|husband|daughter|son|family|ems)"
    r"|\bper (?:mother|father|mom|dad|parent|caregiver|wife|husband|daughter|son|family|ems)\b"
    r"|\b(?:mother|father|mom|dad|parents?|caregiver)s? (?:reports?|states?|notes?|says)\b|\bindependent historian\b",
    re.I,
)
_RECORDS = gated(
    r"\breview(?:ed)? (?:of )?(?:the )?(?:outside|external|prior|old|previous|hospital|ed|urgent care) (?:records|notes|labs|results|imaging)",
    re.I,
)
_INTERPRET = gated(
    r"\bindependent(?:ly)? (?:interpret|review|visualiz)\w*|\bi (?:personally )?(?:interpreted|reviewed the (?:images|films|x-?ray|ecg|ekg|tracing))"
    r"|\bmy (?:own )?(?:read|interpretation)\b",
    re.I,
)
_DISCUSS = gated(
    r"\b(?:discussed (?:the case )?with|spoke (?:with|to)|consulted(?: with)?|case reviewed with)\s+(?:the\s+)?(?:dr\.?\s|on[- ]call|"
    r"radiolog|orthop|cardiolog|surgeon|surgery|specialist|hospitalist|poison control|pcp|primary care|nephrolog|"
    r"neurolog|gastroenterolog|urolog|pharmacist)",
    re.I,
)
_HIGH_RISK = gated(
    r"\badmit(?:ted|ting)?\b|\bhospitali[sz]ation\b|\btransfer(?:red)? to\b|\bdecision (?:regarding|for|about) "
    r"(?:hospitali|admission|surgery)|\bdnr\b|\bescalation of care\b|\bemergent surgery\b|\bintensive monitoring\b",
    re.I,
)
_RX = gated(
    r"\bprescri(?:bed|ption|be)\b|\brx\b|\brefill\w*\b|\bincrease(?:d)? (?:the )?(?:dose|dosage)\b|\bdecrease(?:d)? (?:the )?(?:dose|dosage)\b"
    r"|\btitrat\w+\b|\badjust\w* (?:the )?(?:dose|medication)|\bdiscontinu\w+\b|\bsent to (?:the )?pharmacy\b|\bstart(?:ed)? on\b"
    r"|\b(?:"
    + by_initial(
        r"amoxicillin|augmentin|azithromycin|z-?pak|cephalexin|keflex|cefdinir|doxycycline|bactrim|sulfamethoxazole|"
        r"nitrofurantoin|macrobid|ciprofloxacin|levofloxacin|clindamycin|prednisone|prednisolone|medrol dose|methylprednisolone|"
        r"lisinopril|losartan|amlodipine|hydrochlorothiazide|hctz|metoprolol|carvedilol|atorvastatin|simvastatin|rosuvastatin|"
        r"pravastatin|metformin|glipizide|insulin|glargine|lantus|levothyroxine|albuterol|fluticasone|budesonide|montelukast|"
        r"omeprazole|pantoprazole|sertraline|fluoxetine|escitalopram|citalopram|bupropion|trazodone|gabapentin|meloxicam|"
        r"cyclobenzaprine|methocarbamol|tizanidine|tramadol|ondansetron|oseltamivir|tamiflu|paxlovid|valacyclovir|mupirocin|"
        r"triamcinolone|hydrocortisone 2\.5|benzonatate|ciprodex|ofloxacin|amoxicillin-clavulanate|cefuroxime|penicillin|"
        r"furosemide|spironolactone|apixaban|eliquis|warfarin|empagliflozin|jardiance|semaglutide|ozempic|naproxen 500|"
        r"methimazole|pirfenidone"
    )
    + r")\b",
    re.I,
)
# prescription drugs named by their stems (generic names share them)
_RX_SUFFIXES = tuple(
    "pril sartan olol dipine statin prazole cillin mycin floxacin cycline gliptin gliflozin glutide"
    " mab tinib triptan azepam zolam oxetine triptyline thiazide semide xaban gatran olone lukast"
    " terol tropium ciclovir conazole dronate pramine barbital tidine setron zosin steride"
    " previr asvir buvir tegravir anib thiouracil limus trexate thioprine".split()
)
_WORDS = re.compile(r"[a-z]{5,}")


def _named_rx(note: str, ctx) -> bool:
    """A prescription drug named by its stem, not negated or deferred."""
    low = lower_ascii(note) or note.lower()
    if not any(suffix in low for suffix in _RX_SUFFIXES):
        return False
    for m in _WORDS.finditer(low):
        if m.group(0).endswith(_RX_SUFFIXES) and ctx.status(m.start(), m.end()) in (
            "affirmed",
            "history",
        ):
            return True
    return False


_OTC = gated(
    r"\b(?:"
    + by_initial(
        r"ibuprofen|acetaminophen|tylenol|motrin|advil|aleve|naproxen|otc|over[- ]the[- ]counter|loratadine|"
        r"cetirizine|zyrtec|claritin|saline|honey|guaifenesin|mucinex|dextromethorphan|antihistamine|decongestant|"
        r"physical therapy|home exercise|lozenges?|cpap|bipap|dietitian|weight (?:management|loss program)"
    )
    + r")\b",
    re.I,
)
_NO_EM = gated(
    r"\bnurse (?:only )?visit\b|\bprocedure (?:only )?visit\b|\b(?:here|presents?|returns?|comes? in)\s+(?:today\s+)?(?:only\s+)?for\s+"
    r"(?:(?:his|her|their|a|the|an|annual|yearly|seasonal|routine|scheduled|monthly|next)\s+){0,3}(?:flu shot|flu vaccine|vaccines?|vaccination|immunizations?|injection|"
    r"b12 (?:shot|injection)|depo(?:-provera)? (?:shot|injection)|suture removal|wart treatment|cryotherapy)\b"
    r"|\bscheduled (?:injection|procedure)\b",
    re.I,
)

# the callers read spans, minutes and lower-cased words only
fold(
    *_TIME,
    _COUNSEL_ONLY,
    _FEVER,
    _ACS,
    _EXACERBATION,
    _SEVERE,
    _TESTS,
    _HISTORIAN,
    _RECORDS,
    _INTERPRET,
    _DISCUSS,
    _HIGH_RISK,
    _RX,
    _OTC,
    _NO_EM,
)


def documented_time(note: str, enc: Encounter) -> tuple[int, int | None, int | None] | None:
    """(minutes, start, end) from the note's time statement, else the encounter length."""
    therapy = psychotherapy(note) if _PSYCHOTHERAPY.search(note) else None
    for rx in _TIME:
        for m in rx.finditer(note):
            line = note[max(0, note.rfind("\n", 0, m.start())) : m.end()]
            if rx is _TIME[2] and _COUNSEL_ONLY.search(line):
                continue
            if therapy is not None:
                if _PSYCHOTHERAPY.search(line):
                    continue  # the session's own minutes, not the visit's
                # the psychotherapy add-on's minutes are not E/M time (CPT)
                return max(0, int(m.group(1)) - therapy[0]), m.start(), m.end()
            return int(m.group(1)), m.start(), m.end()
    if enc.length_minutes:
        return enc.length_minutes, None, None
    return None


def by_time(minutes: int, new: bool) -> tuple[str | None, int]:
    table = _NEW if new else _EST
    code = None
    for lo, c in table:
        if minutes >= lo:
            code = c
    top = table[-1][0]
    extra = (minutes - top) // 15 if code == table[-1][1] and minutes >= top + 15 else 0
    return code, extra


def _affirmed(note: str, rx: re.Pattern, ctx) -> bool:
    return any(ctx.status(m.start(), m.end()) in ("affirmed", "history") for m in rx.finditer(note))


def mdm_level(
    note: str,
    dx: list[str],
    ctx,
    *,
    uncertain: bool,
    ed: bool,
    billed_tests: set[str],
    age: int,
    risk_floor: int = 1,
    narrative: Callable[[], str] | None = None,
    unread: Sequence[str] = (),
    billed_codes: Collection[str] = (),
) -> tuple[int, str]:
    """(level 1..4, explanation) by the two-of-three rule. ``unread``: assessment
    statements no code was found for; each is still a problem addressed (its kind
    read from its words, see ``_unread_problem``)."""
    # problems
    # a manifestation coded with its combination code (N18 with E11.22/I12) is the same problem
    chronic = [
        c
        for c in dx
        if (c.startswith(_CHRONIC) or not c.startswith(_ACUTE)) and not _manifestation_of(c, dx)
    ]
    # the note searches below run only when their answer can matter (cheap tests first)
    exacerbated = bool(chronic) and (
        _worse_in(narrative()) if narrative is not None else _affirmed(note, _EXACERBATION, ctx)
    )
    acute = [
        c
        for c in dx
        if c not in chronic and not c.startswith(("Z79", "Z68", "Z87", "Z86", "F17", "Z77", "Z99"))
    ]
    kinds = [_unread_problem(t) for t in unread]
    chronic = chronic + [f"unread{i}" for i, k in enumerate(kinds) if k in ("chronic", "worse")]
    acute = acute + [f"unread{i}" for i, k in enumerate(kinds) if k == "acute"]
    exacerbated = exacerbated or "worse" in kinds
    # diabetes coded 'with hyperglycemia' or 'with hypoglycemia' is not at its treatment
    # goal (CPT: a chronic illness not at goal is not stable)
    exacerbated = exacerbated or any(
        c.startswith(("E08", "E09", "E10", "E11", "E13")) and c[3:].startswith(("65", "64"))
        for c in dx
    )
    threat = any(c.startswith(_THREAT) for c in dx) or (
        any(c.startswith("R07") for c in dx) and _ACS.search(note) is not None
    )
    # dehydration beside an acute illness is systemic involvement, as a fever is
    systemic = (any(c.startswith(_SYSTEMIC) for c in dx) and _affirmed(note, _FEVER, ctx)) or (
        any(c.startswith("E86") for c in dx) and any(c.startswith(_ACUTE) for c in dx)
    )
    # CPT's 'undiagnosed new problem with uncertain prognosis': a finding (a sign, an
    # abnormal result, a neoplasm of uncertain behaviour) the note calls indeterminate
    undiagnosed = any(c.startswith(("R", "D48", "D49")) for c in dx) and _affirmed(
        note, _UNCERTAIN_PROGNOSIS, ctx
    )
    judged = ""
    # CPT's 'threat to life or bodily function' does not depend on the setting
    if threat or _SEVERE.search(note):
        problems = 4
    elif (
        exacerbated
        or len(chronic) >= 2
        or uncertain
        or any(c.startswith("S") and "fracture" in _desc(c) for c in dx)
        or "complicated" in kinds
        or any(c.startswith("S06") for c in dx)
        or undiagnosed
    ):
        problems = 3
    elif systemic:
        # 'acute illness with systemic symptoms' is a coder's judgement of the fever
        problems, judged = 3, " (systemic symptoms)"
    elif chronic or any(not c.startswith(_SELF_LIMITED) for c in acute) or len(acute) >= 2:
        problems = 2
    else:
        problems = 1
    # data
    tests = {
        m.group(0).lower().replace("-", "")
        for m in _TESTS.finditer(note)
        if ctx.status(m.start(), m.end()) != "negated"
    }
    # a test whose interpretation is billed here is not counted as data too (CPT: its
    # ordering and interpretation are in its own code)
    tests = {_canon(t) for t in tests} - {
        name for code in billed_codes for name in _INTERPRETED_BY_CODE.get(code[:4], ())
    }
    historian = age < 12 or bool(_HISTORIAN.search(note))
    records = bool(_RECORDS.search(note))
    items = len(tests) + int(records) + int(historian)
    # a test billed here is paid for its interpretation: it does not count again (CPT)
    cat2 = (ed or not billed_tests & {"imaging", "ecg", "medicine"}) and bool(
        _INTERPRET.search(note)
    )
    cat3 = bool(_DISCUSS.search(note))
    cats = int(items >= 3) + int(cat2) + int(cat3)
    if cats >= 2:
        data = 4
    elif items >= 3 or cat2 or cat3:
        data = 3
    elif len(tests) + int(records) >= 2 or historian:
        data = 2
    else:
        data = 1
    # risk
    # (a level at or below the floor need not be told apart from it)
    if _HIGH_RISK.search(note) and _affirmed(note, _HIGH_RISK, ctx):
        risk = 4
    elif risk_floor < 3 and _affirmed(note, _ELECTIVE_SURGERY, ctx):
        risk = 3  # decision regarding elective major surgery (CPT's moderate risk)
    elif risk_floor < 3 and (_affirmed(note, _RX, ctx) or _named_rx(note, ctx)):
        risk = 3
    elif risk_floor < 2 and _affirmed(note, _OTC, ctx):
        risk = 2
    else:
        risk = 1
    risk = max(risk, risk_floor)
    level = sorted((problems, data, risk))[1]
    return (
        level,
        f"problems {LEVEL_NAMES[problems]}{judged}, data {LEVEL_NAMES[data]}, risk {LEVEL_NAMES[risk]}",
    )


# a finding the narrative denies ('No side effects', 'denies worsening'): a problem not
# at its goal is one whose worsening is stated, not one whose worsening is ruled out
_DENIED_BEFORE = re.compile(
    r"\b(?:no|denies|denied|without|w/o|never|nor)\s+(?:\w+\s+){0,2}$", re.I
)


def _worse_in(text: str) -> bool:
    for m in _EXACERBATION.finditer(text):
        if m.group(0)[:2].lower() in ("no", "w/", "wi") or not _DENIED_BEFORE.search(
            text, max(0, m.start() - 40), m.start()
        ):
            return True
    return False


_UNREAD_INJURY = gated(
    r"\b(?:sprain|strain|bite|wounds?|laceration|contusion|abrasion|burn|puncture|injury|foreign body|sting)\b",
    re.I,
)
_UNREAD_COMPLICATED = gated(r"\bfracture|\bdislocation\b|\bconcussion\b", re.I)
_UNREAD_ACUTE = gated(r"\bacute\b|\binfection\b|\bviral\b", re.I)
_UNREAD_CHRONIC = gated(r"\bchronic\b", re.I)
# a statement that names a visit purpose, a test or a plan, not a problem
# (a medication, a history, or a plan step: 'On insulin glargine', 'Personal hx of ...',
# 'Pump settings reviewed, no changes')
_UNREAD_NOT_PROBLEM = gated(
    r"^\W*(?:annual|routine|screening|labs?|ecg|ekg|follow[- ]?up|f/u|rtc|return|continue|plan|vaccin\w*|immuniz\w*"
    r"|on|taking|uses?|using|health maintenance|hcm|preventive|prevention|anticipatory guidance|education"
    r"|medication (?:refill|reconciliation)|refills?)\b|\b(?:history of|hx|h/o|s/p|status post)\b",
    re.I,
)
_UNREAD_PLAN_STEP = gated(
    r"\b(?:reviewed|no changes?|refill(?:ed|s)?|discussed|counseled|ordered|scheduled|adjusted|given)\b",
    re.I,
)
_UNREAD_DISEASE = gated(
    r"\w(?:itis|osis|emia|oma|pathy|algia|ism)\b|\b(?:disease|disorder|syndrome|failure|deficiency"
    r"|insufficiency|stenosis|pain|infection|dependence|abuse|nodule|mass|lesion|cancer|calcul\w+|stones?)\b",
    re.I,
)
fold(
    _UNREAD_INJURY,
    _UNREAD_COMPLICATED,
    _UNREAD_ACUTE,
    _UNREAD_CHRONIC,
    _UNREAD_NOT_PROBLEM,
    _UNREAD_PLAN_STEP,
    _UNREAD_DISEASE,
)


def _unread_problem(text: str) -> str | None:
    """The kind of problem an assessment statement names that no code was found for:
    an injury (complicated when a fracture, dislocation or concussion), an acute
    illness, a chronic illness that is worse, or (the default) a chronic illness."""
    # the statement's head, before its plan ('Hypertension - refill lisinopril')
    head = re.split(r"\s+-\s+|:|,|;", text, maxsplit=1)[0]
    if _UNREAD_NOT_PROBLEM.search(text) or (
        _UNREAD_PLAN_STEP.search(head) and not _UNREAD_DISEASE.search(head)
    ):
        return None
    first = _TESTS.search(text)
    if first is not None and not text[: first.start()].strip(" -*.:0123456789"):
        return None  # a test to do or done ('BMP next visit'), not a problem
    if _UNREAD_COMPLICATED.search(text):
        return "complicated"
    if _UNREAD_INJURY.search(text):
        return "acute"
    chronic = _UNREAD_CHRONIC.search(text) is not None
    if _UNREAD_ACUTE.search(text) and not chronic:
        return "acute"
    return "worse" if _EXACERBATION.search(text) else "chronic"


# billed services that include the physician's interpretation (by code stem) -> the
# names the data element reads them by
_INTERPRETED_BY_CODE = {
    "9300": ("ecg", "ekg"),
    "9301": ("ecg", "ekg"),
    "7104": ("xray", "radiograph"),
    "9401": ("spirometry", "pfts", "pft"),
    "9406": ("spirometry", "pfts", "pft"),
    "9330": ("echo", "echocardiogram", "tte"),
}


def settled(mdm: str | None) -> bool:
    """Whether a ``mdm_level`` explanation is safe to bill unread: two elements at the
    level it gives (a level one element alone decides moves with any misreading of
    that element) and that level at most low. On the blind set's tuning half the MDM
    reading was right about two times in three overall; at straightforward it was
    mostly wrong (procedure-only visits, problems it did not see) and above low it
    misjudged chronic illness progression, systemic symptoms and drug management."""
    if not mdm or not mdm.startswith("problems ") or "(" in mdm:
        return False
    problems, *_ = raw = [LEVEL_NAMES.index(part.split(" ", 1)[1]) for part in mdm.split(", ")]
    levels = sorted(raw)
    # a straightforward problem reading on a real note is mostly a missed problem or a
    # visit for a procedure (no E/M): never settled
    return levels.count(levels[1]) >= 2 and levels[1] <= 2 and problems >= 2


# tests, results, records or a historian the data element may have missed
_DATA_HINT = gated(
    r"\breview(?:ed)?\b|\bordered\b|\blabs?\b|\bresults?\b|\brecords\b|\bnotes\b|\bhistorian\b"
    r"|\bper (?:mom|mother|dad|father|parent|caregiver|wife|husband)\b|\b(?:mom|mother|dad|father|parents?) (?:reports?|states?|denies)\b"
    r"|\bx-?ray\b|\bxr\b|\bct\b|\bmri\b|\bultrasound\b|\becho\w*|\be[ck]g\b|\bmonitor\b|\bculture\b",
    re.I,
)
fold(_DATA_HINT)


def data_sensitive(mdm: str | None, note: str) -> bool:
    """The level would move with the data element, and the note has tests, results,
    records or a historian that element may have missed or over-counted."""
    if not mdm or not mdm.startswith("problems "):
        return True
    p, d, r = (LEVEL_NAMES.index(part.split(" ", 1)[1].split(" (")[0]) for part in mdm.split(", "))
    level = sorted((p, d, r))[1]
    moves = any(sorted((p, x, r))[1] != level for x in (d - 1, d + 1) if 1 <= x <= 4)
    return moves and _DATA_HINT.search(note) is not None


def _manifestation_of(code: str, dx: list[str]) -> bool:
    refs = _code_first_refs(code)
    return bool(refs) and any(icd10cm.in_range(o, r) for o in dx if o != code for r in refs)


@lru_cache(maxsize=20000)
def _code_first_refs(code: str) -> tuple[tuple[str, str], ...]:
    return tuple(r for n in icd10cm.code_first(code) for r in icd10cm.code_refs(n))


def _desc(code: str) -> str:
    return (icd10cm.description(code) or "").lower()


_CANON = {
    "xrays": "xray",
    "xray": "xray",
    "cxr": "xray",
    "radiograph": "xray",
    "radiographs": "xray",
    "ekg": "ecg",
    "lipids": "lipid panel",
    "hba1c": "a1c",
    "ua": "urinalysis",
    "strep test": "rapid strep",
}


def _canon(t: str) -> str:
    return _CANON.get(t, t)


_STATED = gated(
    r"\b(?:medical decision making|mdm)\b[^.\n]{0,20}?\b(straightforward|low|moderate|high)\b", re.I
)
HOSPITAL_INITIAL = ("99221", "99221", "99221", "99222", "99223")


fold(_STATED)


def stated_mdm(note: str) -> int | None:
    """The MDM level the provider documented ('Medical decision making: moderate complexity')."""
    m = _STATED.search(note)
    return LEVEL_NAMES.index(m.group(1).lower()) if m else None


def preventive_code(age: int, new: bool) -> str:
    bands = ((1, 1), (5, 2), (12, 3), (18, 4), (40, 5), (65, 6))
    idx = next((i for lim, i in bands if age < lim), 7)
    return f"99{38 if new else 39}{idx}"


def procedure_only(note: str) -> bool:
    """A visit for a service that is not an E/M: a nurse or procedure visit, a
    psychotherapy session without medical management, a psychiatric diagnostic
    evaluation."""
    if _NO_EM.search(note) is not None:
        return True
    if _PSYCH_EVAL.search(note) is not None:
        return True
    therapy = psychotherapy(note)
    return therapy is not None and not therapy[1]


# psychotherapy with its documented minutes ('supportive psychotherapy 30 min', 'CBT
# session, 45 minutes'); a referral or a resource list is not a session
_PSYCHOTHERAPY = gated(
    r"\b(?:psychotherapy|cbt|cognitive[- ]behavio(?:u)?ral therapy|dbt|dialectical behavio(?:u)?r therapy"
    r"|interpersonal therapy|supportive therapy|exposure therapy|motivational interviewing)\b"
    r"[^.\n]{0,60}?\b(\d{1,3})\s*(?:minutes|mins?)\b"
    r"|\b(\d{1,3})\s*(?:minutes|mins?)\s+(?:of\s+)?(?:individual\s+)?(?:psychotherapy|cbt|supportive therapy)\b",
    re.I,
)
# a plan or another clinician's therapy ('weekly CBT with her therapist') is not a session here
_PSYCH_NOT_DONE = gated(
    r"\brefer\w*|\bresources?\b|\brecommend\w*|\bwill\b|\bnext\b|\bconsider\w*|\bweekly\b"
    r"|\btherapist\b|\bcounselor\b|\bsessions\b",
    re.I,
)
_PSYCH_EVAL = gated(
    r"\bpsychiatric diagnostic evaluation\b|\bdiagnostic (?:psychiatric )?interview\b", re.I
)
fold(_PSYCHOTHERAPY, _PSYCH_NOT_DONE, _PSYCH_EVAL)


def psychotherapy(note: str) -> tuple[int, bool] | None:
    """(minutes, with medical management) of a psychotherapy session the note documents;
    with a prescription managed at the visit the session is an add-on to the E/M."""
    for m in _PSYCHOTHERAPY.finditer(note):
        end = note.find("\n", m.end())
        line = note[note.rfind("\n", 0, m.start()) + 1 : end if end >= 0 else len(note)]
        if _PSYCH_NOT_DONE.search(line):
            continue
        return int(m.group(1) or m.group(2)), prescribes(note)
    return None


def prescribes(note: str) -> bool:
    """A prescription managed at the visit (a psychiatric evaluation with medical
    services, psychotherapy as an add-on to an E/M)."""
    return _RX.search(note) is not None
