"""Services performed at the visit, read from the note -> CPT/HCPCS lines.

Imaging, point-of-care tests, minor procedures and treatments by rule; vaccines
and injected drugs in ``drugs``. In the ED and the hospital the physician bills
neither imaging nor labs (the facility and radiologist do); an ECG in the ED is
the interpretation only (93010).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from services.coding.domain import em
from services.coding.domain.drugs import (
    INJECTED,
    ORAL,
    PEDIATRIC,
    VACCINES_RX,
    dose_in,
    drug_line,
    drug_lines,
    vaccine_admin,
)
from services.coding.domain.lines import (
    WORDNUM,
    Px,
    Visit,
    clause,
    count_views,
    done,
    side_modifier,
    units_for,
)
from services.coding.domain.prefilter import Gate, any_in, lower_ascii
from services.coding.domain.text import Memo

# ----------------------------------------------------------------------------- imaging

_XR_SITES: dict[str, tuple[tuple[int, str], ...]] = {
    # site: ((max views, code), ...) ascending; the last entry is also the default
    "ankle": ((2, "73600"), (99, "73610")),
    "wrist": ((2, "73100"), (99, "73110")),
    "hand": ((2, "73120"), (99, "73130")),
    "foot": ((2, "73620"), (99, "73630")),
    "knee": ((2, "73560"), (3, "73562"), (99, "73564")),
    "elbow": ((2, "73070"), (99, "73080")),
    "shoulder": ((1, "73020"), (99, "73030")),
    "finger": ((99, "73140"),),
    "thumb": ((99, "73140"),),
    "toe": ((99, "73660"),),
    "forearm": ((99, "73090"),),
    "hip": ((1, "73501"), (99, "73502")),
    "tibia": ((99, "73590"),),
    "fibula": ((99, "73590"),),
    "tib/fib": ((99, "73590"),),
    "lower leg": ((99, "73590"),),
    "humerus": ((99, "73060"),),
    "clavicle": ((99, "73000"),),
    "lumbar spine": ((3, "72100"), (99, "72110")),
    "cervical spine": ((99, "72040"),),
    "rib": ((99, "71100"),),
    "ribs": ((99, "71100"),),
    "chest": ((1, "71045"), (2, "71046"), (3, "71047"), (99, "71048")),
}
_XR_DEFAULT_VIEWS = {"knee": 3, "chest": 2, "shoulder": 2, "hip": 2, "lumbar spine": 3}
_SITE_RX = "|".join(sorted((re.escape(s) for s in _XR_SITES), key=len, reverse=True))
_XR = re.compile(
    rf"\b(?:x-?rays?|radiographs?|films?|xr|imaging|plain films?)\b(?:\s+(?:of|of the))?(?:\s+the)?\s+"
    rf"(?:(?:right|left|bilateral|rt|lt|r|l)\s+)?({_SITE_RX})\b"
    rf"|\b(?:(?:right|left|bilateral|rt|lt|r|l)\s+)?({_SITE_RX})\s+(?:\d[- ]views?\s+|two[- ]views?\s+|three[- ]views?\s+)?"
    rf"(?:x-?rays?|radiographs?|films?|xr|series)\b|\b(cxr)\b",
    re.I,
)
_SPINE_WORDS = {
    "lumbar spine": ("lumbar", "back", "lumbosacral"),
    "cervical spine": ("cervical", "neck"),
}


def _xray(m: re.Match, text: str, v: Visit) -> list[Px]:
    site = (m.group(1) or m.group(2) or "chest").lower()
    if site == "cxr":
        site = "chest"
    rng = _XR_SITES[site]
    views = count_views(text[m.start() :]) or _XR_DEFAULT_VIEWS.get(site, 3)
    code = next(c for mx, c in rng if views <= mx)
    mods = []
    if site not in ("chest", "lumbar spine", "cervical spine", "rib", "ribs"):
        side = side_modifier(
            clause(text, m.start(), m.end()) if side_modifier(m.group(0)) is None else m.group(0)
        )
        mods = [side] if side else []
    parts = frozenset({site, *_SPINE_WORDS.get(site, ())} if site != "chest" else {"chest", "rib"})
    dx = ("J", "R05", "R06", "R07", "R50", "U07", "S2") if site == "chest" else ("S", "M", "T", "R")
    lateral = site not in ("chest", "lumbar spine", "cervical spine", "rib", "ribs")
    return [Px(code, modifiers=mods, dx=dx, parts=parts, rule="imaging", conf=0.9, lateral=lateral)]


# ----------------------------------------------------------------------------- labs and simple tests


def _simple(
    code: str, dx: tuple[str, ...], units: Callable[[str], int] | None = None, rule: str = "lab"
):
    def make(m: re.Match, text: str, v: Visit) -> list[Px]:
        u = units(clause(text, m.start(), m.end())) if units else 1
        return [Px(code, units=Decimal(u), dx=dx, rule=rule)]

    return make


def _ua(m: re.Match, text: str, v: Visit) -> list[Px]:
    c = clause(text, m.start(), m.end()).lower()
    code = (
        "81001"
        if "microscop" in c
        else "81002"
        if re.search(r"dip|point[- ]of[- ]care|\bpoc\b|non-?automated", c)
        else "81003"
    )
    return [
        Px(code, dx=("N39", "N30", "N10", "N20", "R30", "R35", "R31", "R10", "R39"), rule="lab")
    ]


def _covid(m: re.Match, text: str, v: Visit) -> list[Px]:
    c = clause(text, m.start(), m.end()).lower()
    code = "87635" if re.search(r"pcr|naat|molecular|id now|amplified", c) else "87811"
    return [
        Px(
            code,
            dx=("U07", "Z20822", "Z1152", "R05", "R50", "J06", "R09", "J02", "B34"),
            rule="lab",
        )
    ]


def _flu_units(chunk: str) -> int:
    return 2 if re.search(r"\ba\s*(?:and|/|&)\s*b\b", chunk, re.I) else 1


# the ED physician bills the tracing's interpretation only when the note gives it as
# their own; a tracing merely listed among the ED results is the facility's
_OWN_READ = re.compile(
    r"\b(?:my|independent(?:ly)?|personal(?:ly)?) (?:interpret\w*|read|review)|\binterpreted by me\b"
    r"|\bi (?:interpreted|read|reviewed)\b|\b(?:independently|personally) (?:interpreted|reviewed|read)\b",
    re.I,
)


def _ecg(m: re.Match, text: str, v: Visit) -> list[Px]:
    if v.enc.encounter_class == "EMER" and not _OWN_READ.search(text):
        return []
    code = "93010" if v.enc.encounter_class == "EMER" else "93000"
    return [Px(code, dx=("I", "R07", "R00", "R55", "R42", "R06", "Z0181", "E87"), rule="ecg")]


# ----------------------------------------------------------------------------- minor procedures

_FACE = r"face|facial|forehead|cheek|chin|nose|nasal|lip|ear|eyelid|eyebrow|brow|temple|jaw"
_HANDS_FEET_NECK = r"neck|hand|palm|finger|thumb|foot|feet|toe|sole"
_REPAIR_CODES = {
    ("simple", "body"): (
        (2.5, "12001"),
        (7.5, "12002"),
        (12.5, "12004"),
        (20, "12005"),
        (30, "12006"),
        (1e9, "12007"),
    ),
    ("simple", "face"): (
        (2.5, "12011"),
        (5.0, "12013"),
        (7.5, "12014"),
        (12.5, "12015"),
        (20, "12016"),
        (30, "12017"),
        (1e9, "12018"),
    ),
    ("layer", "body"): (
        (2.5, "12031"),
        (7.5, "12032"),
        (12.5, "12034"),
        (20, "12035"),
        (30, "12036"),
        (1e9, "12037"),
    ),
    ("layer", "hands"): (
        (2.5, "12041"),
        (7.5, "12042"),
        (12.5, "12044"),
        (20, "12045"),
        (30, "12046"),
        (1e9, "12047"),
    ),
    ("layer", "face"): (
        (2.5, "12051"),
        (5.0, "12052"),
        (7.5, "12053"),
        (12.5, "12054"),
        (20, "12055"),
        (30, "12056"),
        (1e9, "12057"),
    ),
}
_LENGTH = re.compile(r"(\d+(?:\.\d+)?)\s*(cm|centimeters?|mm|millimeters?)\b", re.I)


def _repair(m: re.Match, text: str, v: Visit) -> list[Px]:
    lengths = [_cm(x) for x in _LENGTH.finditer(text)]
    if not lengths:
        # the length is usually in the exam or the procedure note, near 'laceration'
        lengths = [
            _cm(x)
            for x in _LENGTH.finditer(v.note)
            if re.search(
                r"lacerat|wound|length|repair|incision",
                v.note[max(0, x.start() - 60) : x.end() + 60],
                re.I,
            )
        ]
    length = lengths[0] if lengths else 2.5
    # scalp wounds (S01.0-) repair with trunk/extremities; other head wounds are the face
    face = re.search(rf"\b(?:{_FACE})\b", text, re.I) or any(
        c.startswith("S01") and not c.startswith("S010") for c in v.dx_codes
    )
    hands = re.search(rf"\b(?:{_HANDS_FEET_NECK})\b", text, re.I) or any(
        c.startswith(("S61", "S91", "S11")) for c in v.dx_codes
    )
    layer = re.search(
        r"\bintermediate\b|\blayered\b|\blayer closure\b|\bdeep sutures?\b|\bsubcutaneous sutures?\b",
        text,
        re.I,
    )
    adhesive_only = re.search(
        r"\bdermabond\b|\btissue adhesive\b|\bskin glue\b", text, re.I
    ) and not re.search(r"\bsutur|\bstaple", text, re.I)
    if adhesive_only and v.medicare:
        return [Px("G0168", system="hcpcs", dx=_WOUNDS, rule="repair")]
    kind = "layer" if layer else "simple"
    site = "face" if face else ("hands" if hands and kind == "layer" else "body")
    code = next(c for mx, c in _REPAIR_CODES[(kind, site)] if length <= mx + 1e-9)
    return [Px(code, dx=_WOUNDS, rule="repair", conf=0.9 if lengths else 0.75)]


def _cm(m: re.Match) -> float:
    return float(m.group(1)) / (10 if m.group(2).lower().startswith("m") else 1)


_WOUNDS = ("S01", "S11", "S21", "S31", "S41", "S51", "S61", "S71", "S81", "S91")


def _incision_drainage(m: re.Match, text: str, v: Visit) -> list[Px]:
    code = (
        "10061" if re.search(r"\bcomplicated\b|\bmultiple\b|\bcomplex\b", text, re.I) else "10060"
    )
    return [Px(code, dx=("L02", "L05", "L08", "L72"), rule="minor")]


_JOINTS = {
    "20610": r"knee|shoulder|hip|subacromial|glenohumeral|trochanteric",
    "20605": r"wrist|elbow|ankle|olecranon|acromioclavicular|ac joint|temporomandibular|tmj",
    "20600": r"finger|toe|thumb|mcp|pip|dip|metacarpophalangeal|interphalangeal|cmc",
}
_GUIDED = {"20610": "20611", "20605": "20606", "20600": "20604"}


def _joint(m: re.Match, text: str, v: Visit) -> list[Px]:
    if re.search(rf"\b(?:{SOFT_TISSUE_RX})\b|\bintralesional\b|\bintravitreal\b", text, re.I):
        return []  # a tendon sheath, nerve tunnel or lesion, not a joint (see _soft_tissue)
    code = next(
        (c for c, rx in _JOINTS.items() if re.search(rf"\b(?:{rx})\b", text, re.I)), "20610"
    )
    if re.search(
        r"(?<!without )(?<!no )\b(?:ultrasound[- ]guid|under ultrasound\b|us[- ]guided\b)",
        text,
        re.I,
    ):
        code = _GUIDED[code]
    side = side_modifier(text)
    joint = next(
        (
            w
            for w in re.findall(r"[a-z]+", text.lower())
            if w in ("knee", "shoulder", "hip", "wrist", "elbow", "ankle")
        ),
        None,
    )
    out = [
        Px(
            code,
            modifiers=[side] if side else [],
            dx=("M17", "M16", "M19", "M25", "M75", "M77", "M70", "M10", "M65", "S83", "M76"),
            parts=frozenset({joint}) if joint else frozenset(),
            rule="minor",
            lateral=True,
        )
    ]
    drug = drug_line(text, 0, v, default_ok=True)
    if drug:
        drug.start = drug.end = None
        drug.dx, drug.parts = out[0].dx, out[0].parts
        out.append(drug)
    return out


def _cerumen(m: re.Match, text: str, v: Visit) -> list[Px]:
    code = (
        "69210"
        if re.search(r"curette|instrument|forceps|suction|loop|manual", v.note, re.I)
        else "69209"
    )
    side = side_modifier(text)
    return [Px(code, modifiers=[side] if side else [], dx=("H612",), rule="minor", lateral=True)]


def _destruction(m: re.Match, text: str, v: Visit) -> list[Px]:
    n = re.search(r"(\d+)\s+(?:\w+\s+)?(?:warts|lesions|keratoses|aks)\b", text, re.I)
    count = int(n.group(1)) if n else 1
    if any(c.startswith("L570") for c in v.dx_codes) or re.search(
        r"actinic|\bak\b|\baks\b|keratos[ie]s", text, re.I
    ):
        if count >= 15:
            return [Px("17004", dx=("L57",), rule="minor")]
        out = [Px("17000", dx=("L57",), rule="minor")]
        if count > 1:
            out.append(Px("17003", units=Decimal(count - 1), dx=("L57",), rule="minor"))
        return out
    if any(c.startswith(("B07", "B08", "L82", "A63")) for c in v.dx_codes) or re.search(
        r"wart|verruca|molluscum|seborrheic", text, re.I
    ):
        return [
            Px("17111" if count >= 15 else "17110", dx=("B07", "B08", "L82", "A63"), rule="minor")
        ]
    return []


def _biopsy(m: re.Match, text: str, v: Visit) -> list[Px]:
    punch = "punch" in m.group(0).lower()
    n = re.search(r"(\d+|two|three|four)\s+(?:\w+\s+)?(?:lesions|sites|biopsies)\b", text, re.I)
    count = int(WORDNUM.get(n.group(1).lower(), n.group(1))) if n else 1
    first, addl = ("11104", "11105") if punch else ("11102", "11103")
    out = [Px(first, dx=("L", "D", "C", "R21"), rule="minor")]
    if count > 1:
        out.append(Px(addl, units=Decimal(count - 1), dx=("L", "D", "C", "R21"), rule="minor"))
    return out


def _splint(m: re.Match, text: str, v: Visit) -> list[Px]:
    s = m.group(0).lower()
    code = (
        "29105"
        if re.search(r"long arm|sugar[- ]tong", s)
        else "29505"
        if "long leg" in s
        else "29515"
        if re.search(r"short leg|posterior (?:ankle|leg)|stirrup|ankle", s)
        else "29130"
        if "finger" in s
        else "29280"
        if "buddy" in s
        else "29540"
        if "strapping" in s
        else "29125"
    )
    side = side_modifier(text)
    return [Px(code, modifiers=[side] if side else [], dx=("S", "M"), rule="minor", lateral=True)]


def _nebulizer(m: re.Match, text: str, v: Visit) -> list[Px]:
    c = text.lower()
    n = re.search(
        r"\bx\s?(\d)\b|\b(\d|two|three)\s+(?:\w+\s+)?(?:treatments|nebs|nebulizers)\b|\bback[- ]to[- ]back\b",
        c,
    )
    count = 1
    if n:
        count = (
            2
            if n.group(0).startswith("back")
            else int(WORDNUM.get(n.group(2) or "", n.group(1) or n.group(2) or 1))
        )
    dx = ("J45", "J44", "J20", "J21", "J06", "J05", "R06", "J18", "U07")
    out = [Px("94640", units=Decimal(count), dx=dx, rule="minor")]
    # (a dose's decimal point is not a sentence end: 'albuterol 2.5 mg / ipratropium 0.5 mg')
    if re.search(
        r"duoneb|albuterol(?:[^.;]|\.(?=\d)){0,25}ipratropium|ipratropium(?:[^.;]|\.(?=\d)){0,25}albuterol",
        c,
    ):
        out.append(Px("J7620", system="hcpcs", units=Decimal(count), dx=dx, rule="drug"))
    else:
        if "albuterol" in c:
            mg = dose_in(c[c.find("albuterol") :], "mg") or 2.5
            out.append(Px("J7613", system="hcpcs", units=units_for(mg) * count, dx=dx, rule="drug"))
        if "ipratropium" in c or "atrovent" in c:
            mg = dose_in(c[c.find("ipratropium") :], "mg") or 0.5
            out.append(Px("J7644", system="hcpcs", units=units_for(mg) * count, dx=dx, rule="drug"))
    return out


def _tobacco_counsel(m: re.Match, text: str, v: Visit) -> list[Px]:
    mins = re.search(r"(\d{1,2})\s*(?:minutes|mins?)\b", text, re.I)
    if not mins or int(mins.group(1)) < 3:
        return []
    return [
        Px("99407" if int(mins.group(1)) > 10 else "99406", dx=("F17", "Z72"), rule="counseling")
    ]


def _spirometry(m: re.Match, text: str, v: Visit) -> list[Px]:
    both = re.search(
        r"\bpre[- /]*(?:and[- ]*)?post\b|\bbronchodilator\b|\bpost[- ]bd\b", text, re.I
    )
    return [Px("94060" if both else "94010", dx=("J45", "J44", "R06", "R05"), rule="lab")]


# ----------------------------------------------------------------------------- in-office services (round 3)

_US_GUIDED = re.compile(
    r"(?<!without )(?<!no )\b(?:ultrasound|sonograph\w*|us)[- ](?:guid\w*|localiz\w*)|\bunder (?:real[- ]time )?(?:ultrasound|us)\b"
    r"|\b(?:real[- ]time|bedside) (?:ultrasound|us)\b|\bultrasound guidance\b|\bus guidance\b|\bimage[- ]guid\w*|\bimaging guidance\b",
    re.I,
)
_CT_GUIDED = re.compile(r"\bct[- ]guid\w*|\bunder ct\b|\bct guidance\b", re.I)


# a procedure from another day ('s/p thoracentesis last week', 'prior FNA benign')
_BEFORE = re.compile(
    r"\b(?:s/p|status post|prior|previous(?:ly)?|history of|hx of|h/o|ago|last (?:week|month|year|visit))\b",
    re.I,
)


def _guided(text: str, v: Visit) -> bool:
    """Imaging guidance documented for the procedure (its sentence, else the note's
    procedure lines: the guidance is often its own sentence)."""
    return bool(_US_GUIDED.search(text)) or bool(_US_GUIDED.search(v.note))


_PROGRAMMED = re.compile(
    r"\breprogramm\w*|\bprogramming (?:change|adjust)\w*|\bsettings? (?:were |was )?(?:changed|adjusted)\b"
    r"|\b(?:changed|adjusted|decreased|increased) (?:the )?(?:lower rate|output|sensitivity|mode|settings?)\b",
    re.I,
)
_NOT_PROGRAMMED = re.compile(
    r"\bno (?:programming|reprogramming|setting|device|parameter)?\s*(?:changes?|adjustments?)\b"
    r"|\bnot reprogrammed\b|\bno reprogramming\b",
    re.I,
)


def _device_check(m: re.Match, text: str, v: Visit) -> list[Px]:
    """Cardiac device evaluation in person: interrogation alone, or programming when
    settings were changed; the device (and its leads) named anywhere in the note."""
    note = v.note.lower()
    kind = (
        "icd"
        if re.search(r"\bicd\b(?!-?1[01])|\bdefibrillator\b|\bcrt-?d\b", note)
        else "pacemaker"
        if re.search(r"\bpacemaker\b|\bppm\b|\bcrt-?p\b|\bpacer\b", note)
        else "monitor"
        if re.search(r"\bloop recorder\b|\bilr\b|\bimplantable cardiac monitor\b|\blinq\b", note)
        else None
    )
    if kind is None or re.search(r"\bremote\b|\btranstelephonic\b", text, re.I):
        return []  # remote monitoring periods are coded from the monitoring record
    # the programming is often its own sentence beside the interrogation's
    programmed = _PROGRAMMED.search(v.note) and not _NOT_PROGRAMMED.search(v.note)
    leads = (
        3
        if re.search(r"\bbiventricular\b|\bcrt\b|\bcrt-?[dp]\b|\bmultiple leads?\b|\bbiv\b", note)
        else 2
        if re.search(r"\bdual[- ]chamber\b|\bdual[- ]lead\b|\bddd\w?\b", note)
        else 1
    )
    if kind == "monitor":
        code = "93285" if programmed else "93291"
    elif programmed:
        code = {"pacemaker": ("93279", "93280", "93281"), "icd": ("93282", "93283", "93284")}[kind][
            leads - 1
        ]
    else:
        code = "93288" if kind == "pacemaker" else "93289"
    dx = ("Z45", "Z95", "I4", "I5", "I44", "I45", "R00", "R55", "R42", "I42")
    return [Px(code, dx=dx, rule="device", conf=0.85)]


def _fna(m: re.Match, text: str, v: Visit) -> list[Px]:
    # a result read from an earlier biopsy is not one done here: the passes, the needle
    # or a procedure note say it was
    if _BEFORE.search(text) or not (
        re.search(r"\bpass(?:es)?\b|\bneedle\b|\bgauge\b|\b\d{2}[- ]?g\b|\bperformed\b", text, re.I)
        or re.match(r"\W*procedure", v.note, re.I)
    ):
        return []
    code = "10009" if _CT_GUIDED.search(text) else "10005" if _guided(text, v) else "10021"
    return [Px(code, dx=("E04", "C73", "D34", "R22", "R59", "C", "D", "N63"), rule="minor")]


def _thoracentesis(m: re.Match, text: str, v: Visit) -> list[Px]:
    if _BEFORE.search(text):
        return []
    code = "32555" if _guided(text, v) else "32554"
    side = side_modifier(text)
    return [
        Px(
            code,
            modifiers=[side] if side in ("RT", "LT") else [],
            dx=("J9", "C", "I50", "R06", "R09"),
            rule="minor",
        )
    ]


def _paracentesis(m: re.Match, text: str, v: Visit) -> list[Px]:
    if _BEFORE.search(text):
        return []
    code = "49083" if _guided(text, v) else "49082"
    return [Px(code, dx=("R18", "K7", "C", "I50"), rule="minor")]


_IN_OFFICE = re.compile(
    r"\b(?:today|in[- ]office|in[- ]clinic|performed|done here|this visit|interpreted by me|my (?:interpretation|read)"
    r"|i (?:interpreted|performed|read))\b",
    re.I,
)


def _echo(m: re.Match, text: str, v: Visit) -> list[Px]:
    # an echo's result is usually from another day or another clinician: bill only the
    # one the note says was done (or read) here
    if not _IN_OFFICE.search(text):
        return []
    c = text.lower()
    code = (
        "93308"
        if re.search(r"\blimited\b|\bfocused\b|\bpocus\b", c)
        else "93306"
        if re.search(r"doppler|\bcomplete\b", c)
        else "93307"
    )
    return [Px(code, dx=("I", "R0", "R55", "Q2"), rule="test")]


def _oct(m: re.Match, text: str, v: Visit) -> list[Px]:
    c = text.lower()
    # 'Oct' is also a month ('seen Oct 12'): the scan names what it imaged
    if not re.search(
        r"optical coherence|\bmacula\w*|\bretina\w*|\boptic\b|\brnfl\b|nerve fiber|\bcst\b|thickness|fluid|\bo[dsu]\b",
        c,
    ):
        return []
    code = (
        "92133" if re.search(r"optic (?:nerve|disc)|\brnfl\b|nerve fiber|glaucoma", c) else "92134"
    )
    return [Px(code, dx=("H3", "H4", "E08", "E09", "E10", "E11", "E13"), rule="test")]


_VITREAL_DRUGS = (
    (r"\bbevacizumab\b|\bavastin\b", "J9035", 10.0, 1.25),
    (r"\baflibercept\b|\beylea\b", "J0178", 1.0, 2.0),
    (r"\branibizumab\b|\blucentis\b", "J2778", 0.1, 0.5),
    (r"\bfaricimab\b|\bvabysmo\b", "J2777", 0.1, 6.0),
)


def _intravitreal(m: re.Match, text: str, v: Visit) -> list[Px]:
    c = text.lower()
    side = (
        "RT"
        if re.search(r"\bod\b|\bright eye\b", c)
        else "LT"
        if re.search(r"\bos\b|\bleft eye\b", c)
        else side_modifier(text)
    )
    dx = ("H3", "E08", "E09", "E10", "E11", "E13", "H34")
    out = [Px("67028", modifiers=[side] if side else [], dx=dx, rule="minor", lateral=True)]
    for rx, code, per, default in _VITREAL_DRUGS:
        d = re.search(rx, c)
        if d:
            mg = dose_in(c[d.start() :], "mg") or default
            out.append(
                Px(code, system="hcpcs", units=units_for(mg / per), dx=dx, rule="drug", conf=0.85)
            )
            break
    return out


def _cgm(m: re.Match, text: str, v: Visit) -> list[Px]:
    """Continuous glucose monitoring: the physician's analysis of at least 72 hours of
    data, or the start-up of a sensor with training; not a patient's own glance."""
    c = text.lower()
    if re.search(r"\binterpret\w*|\banaly[sz]\w*|\breport\b", c):
        return [Px("95251", dx=("E08", "E09", "E10", "E11", "E13", "O24", "R73"), rule="test")]
    if re.search(
        r"\b(?:sensor|cgm) (?:was )?(?:placed|inserted|applied|started)\b|\bhook[- ]?up\b", c
    ):
        return [Px("95250", dx=("E08", "E09", "E10", "E11", "E13", "O24", "R73"), rule="test")]
    return []


# closed treatment of a dislocation or subluxation; fractures need the coder (with or
# without manipulation, global period, who follows up)
_REDUCTIONS = (
    (r"nursemaid|radial head sublux\w*|pulled elbow", "24640", ("S53",)),
    (
        r"shoulder dislocation|dislocat\w* (?:of )?(?:the )?(?:right |left )?shoulder|glenohumeral dislocation",
        "23650",
        ("S43",),
    ),
    (
        r"patell\w* dislocation|dislocat\w* (?:of )?(?:the )?(?:right |left )?patella",
        "27560",
        ("S83",),
    ),
    (
        r"(?:finger|pip|dip|interphalangeal) (?:joint )?dislocation|dislocat\w* (?:of )?(?:the )?(?:right |left )?(?:\w+ )?(?:finger|pip|dip)",
        "26770",
        ("S63",),
    ),
)


def _line(note: str, at: int) -> str:
    end = note.find("\n", at)
    return note[note.rfind("\n", 0, at) + 1 : end if end >= 0 else len(note)]


def _reduction(m: re.Match, text: str, v: Visit) -> list[Px]:
    """The dislocation named in the reduction's sentence, coded for this visit, or named
    on a line that is not history; 'reduced appetite' or a dose reduction is no reduction."""
    if _BEFORE.search(text) or re.search(
        r"\b(?:dose|weight|risk|salt|sodium|fluid)\s+reduction\b|\breduced\s+(?!with\b|using\b|by\b|successfully\b|easily\b)\w+",
        text,
        re.I,
    ):
        return []
    for rx, code, dx in _REDUCTIONS:
        if (
            re.search(rx, text, re.I)
            or any(c.startswith(dx) for c in v.dx_codes)
            or any(
                not _BEFORE.search(_line(v.note, x.start())) for x in re.finditer(rx, v.note, re.I)
            )
        ):
            side = side_modifier(text) or side_modifier(v.note[:400])
            return [Px(code, modifiers=[side] if side in ("RT", "LT") else [], dx=dx, rule="minor")]
    return []


_TBSA = re.compile(r"(\d+(?:\.\d+)?)\s*%\s*(?:tbsa|total body surface|bsa)", re.I)


def _burn(m: re.Match, text: str, v: Visit) -> list[Px]:
    """Burn care by the extent of the partial-thickness burn treated: dressings or
    debridement of a small one (under 5 % of the body surface), medium, large; a
    first-degree burn's own initial treatment when nothing deeper is documented."""
    if re.search(r"\binstruction|\beducation\b|\bteaching\b|\bat home\b|\bhome care\b", text, re.I):
        return []  # care taught for home, not given here
    note = v.note.lower()
    deeper = re.search(r"partial[- ]thickness|second[- ]degree|2nd[- ]degree|blister", note)
    dx = ("T2", "T30", "T31", "T32", "L55")
    if not deeper:
        return [Px("16000", dx=dx, rule="minor")]
    tbsa = _TBSA.search(note)
    pct = float(tbsa.group(1)) if tbsa else 1.0
    code = "16020" if pct < 5 else "16025" if pct <= 10 else "16030"
    return [Px(code, dx=dx, rule="minor")]


def _intralesional(m: re.Match, text: str, v: Visit) -> list[Px]:
    n = re.search(
        r"(\d+|two|three|four|five|six|seven|eight|nine|ten)\s+(?:\w+\s+)?(?:lesions|keloids|cysts|sites)\b",
        text,
        re.I,
    )
    count = (
        int(WORDNUM.get(n.group(1).lower(), n.group(1)))
        if n and (n.group(1).isdigit() or n.group(1).lower() in WORDNUM)
        else 1
    )
    dx = ("L", "D2", "L91", "L72")
    out = [Px("11901" if count > 7 else "11900", dx=dx, rule="minor")]
    drug = drug_line(text, 0, v, default_ok=True)
    if drug:
        drug.start = drug.end = None
        drug.dx = dx
        out.append(drug)
    return out


# injections of soft tissue: the code by the structure injected, its drug beside it
_SOFT_TISSUE = (
    (r"carpal tunnel", "20526", ("G560", "G56")),
    (
        r"trigger (?:finger|thumb)|tendon sheath|de ?quervain|plantar fasci\w*|tenosynovitis|ganglion",
        "20550",
        ("M65", "M72", "M77", "M67", "M70"),
    ),
    (r"trigger points?", "20552", ("M79", "M62", "M54")),
)
SOFT_TISSUE_RX = "|".join(rx for rx, _, _ in _SOFT_TISSUE)


def _soft_tissue(m: re.Match, text: str, v: Visit) -> list[Px]:
    low = text.lower()
    for rx, code, dx in _SOFT_TISSUE:
        if re.search(rx, low):
            if code == "20552" and re.search(
                r"\b(?:3|three|four|five|[4-9])\s+(?:\w+\s+)?(?:muscles|trigger points|sites)\b",
                low,
            ):
                code = "20553"
            side = side_modifier(text)
            out = [
                Px(
                    code,
                    modifiers=[side] if side in ("RT", "LT") and code != "20552" else [],
                    dx=dx,
                    rule="minor",
                )
            ]
            drug = drug_line(text, 0, v, default_ok=True)
            if drug:
                drug.start = drug.end = None
                drug.dx = dx
                out.append(drug)
            return out
    return []


def _endoscopy(m: re.Match, text: str, v: Visit) -> list[Px]:
    """Lower and upper GI endoscopy by what was done through the scope: a snare or a
    biopsy, else the diagnostic scope (screening included)."""
    note = v.note.lower()
    # a scope passed at this visit (not a screening history: 'Colonoscopy normal')
    if _BEFORE.search(text) or not re.search(
        r"\bcecum\b|\bterminal ileum\b|\bwithdrawal\b|\bretroflex\w*|\bscope (?:was )?(?:advanced|inserted|passed)"
        r"|\bduodenum\b|\bprep (?:was )?(?:good|fair|poor|adequate|excellent)|\bbowel prep",
        note,
    ):
        return []
    upper = re.search(
        r"\begd\b|\besophagogastroduodenoscopy\b|\bupper endoscopy\b", m.group(0), re.I
    )
    snare = re.search(r"\bsnare\w*", note) and not re.search(r"\bno (?:polyps?|snare)", note)
    biopsy = re.search(r"\bbiops(?:y|ies)\b(?! not)", note) and not re.search(
        r"\bno biops(?:y|ies)\b|\bbiops(?:y|ies) (?:were )?not\b", note
    )
    if upper:
        code = "43239" if biopsy else "43235"
        dx = ("K2", "K3", "R1", "D5", "R63", "C15", "C16", "Z")
    else:
        code = "45385" if snare else "45380" if biopsy else "45378"
        dx = ("Z12", "Z80", "Z86", "K", "D12", "D5", "R19", "R10", "C18", "C19", "C20")
    return [Px(code, dx=dx, rule="minor", conf=0.8)]


def _psychotherapy(m: re.Match, text: str, v: Visit) -> list[Px]:
    """Psychotherapy by its documented minutes: alone, or as the add-on to an E/M when
    a prescription is managed at the visit; conf under the threshold (a coder checks
    the split of time between the two)."""
    therapy = em.psychotherapy(v.note)
    if therapy is None or therapy[0] < 16:
        return []
    minutes, with_em = therapy
    codes = ("90833", "90836", "90838") if with_em else ("90832", "90834", "90837")
    code = codes[0] if minutes < 38 else codes[1] if minutes < 53 else codes[2]
    return [Px(code, dx=("F", "Z63", "Z65"), rule="psych", conf=0.75)]


def _psych_evaluation(m: re.Match, text: str, v: Visit) -> list[Px]:
    code = "90792" if em.prescribes(v.note) else "90791"
    return [Px(code, dx=("F", "Z", "R4"), rule="psych", conf=0.75)]


def _drug_screen(m: re.Match, text: str, v: Visit) -> list[Px]:
    """Presumptive drug screen read in the office: by eye (cup, dipstick) or by a
    chemistry analyzer; a confirmation or a sent-out panel is the laboratory's."""
    c = text.lower()
    if re.search(r"\bconfirm\w*|\bsent\b|\bsend\b|\blc[- ]?ms|\bgc[- ]?ms|\bdefinitive\b", c):
        return []
    if re.search(r"\banalyzer\b|\bimmunoassay\b|\binstrument\w*", c):
        return [Px("80306", dx=("F1", "Z79", "T4", "Z03"), rule="lab")]
    if re.search(
        r"\bcup\b|\bdip\w*|\bcard\b|point[- ]of[- ]care|\bpoc\b|\bin[- ]office\b|\brapid\b", c
    ):
        return [Px("80305", dx=("F1", "Z79", "T4", "Z03"), rule="lab")]
    return []


@dataclass(frozen=True)
class Rule:
    name: str
    rx: re.Pattern
    make: Callable[[re.Match, str, Visit], list[Px]]
    office_only: bool = False  # not billed by the ED physician


def _r(name: str, pattern: str, make, office_only: bool = False) -> Rule:
    return Rule(name, re.compile(pattern, re.I), make, office_only)


RULES: list[Rule] = [
    _r(
        "venipuncture",
        r"\bvenipuncture\b|\bblood (?:was )?drawn\b|\blabs? (?:were |was )?drawn\b|\bblood draw\b|\bphlebotomy\b",
        _simple("36415", (), rule="lab"),
        True,
    ),
    _r("ecg", r"\b(?:12[- ]lead\s+)?(?:ecg|ekg|electrocardiogram)\b", _ecg),
    _r("xray", _XR.pattern, _xray, True),
    _r("urinalysis", r"\burinalysis\b|\bua\b|\burine dip(?:stick)?\b|\bu/a\b", _ua, True),
    _r(
        "strep",
        r"\brapid strep(?:tococcal)?\b(?:\s+(?:a|test|screen|antigen))*|\bstrep (?:a )?(?:test|screen|antigen)\b",
        _simple("87880", ("J02", "J03", "J06", "R07", "J02")),
        True,
    ),
    _r(
        "flu_test",
        r"\b(?:rapid )?(?:influenza|flu)\s*(?:a\s*(?:and|/|&)\s*b\s*)?(?:antigen\s*)?(?:test|swab|screen)\b"
        r"|\brapid (?:influenza|flu)\s*(?:a\s*(?:and|/|&)\s*b\s*)?antigen\b",
        _simple("87804", ("J10", "J11", "R50", "R05", "J06", "B34"), _flu_units),
        True,
    ),
    _r(
        "covid_test",
        r"\b(?:rapid\s+)?(?:covid(?:-?19)?|sars-cov-2)\s*(?:rapid\s*)?(?:antigen\s*|ag\s*|pcr\s*|naat\s*|molecular\s*)?(?:test|swab|testing|screen)\b",
        _covid,
        True,
    ),
    _r(
        "mono",
        r"\bmono ?spot\b|\bheterophile\b",
        _simple("86308", ("J02", "B27", "R50", "R53")),
        True,
    ),
    _r(
        "glucose_poc",
        r"\b(?:finger ?stick|point[- ]of[- ]care|poc|capillary)\s+(?:blood\s+)?glucose\b|\bglucometer\b",
        _simple("82962", ("E08", "E09", "E10", "E11", "E13", "R73")),
        True,
    ),
    _r(
        "a1c_poc",
        r"\b(?:point[- ]of[- ]care|poc|in[- ]office)\s+(?:hemoglobin\s+|hgb\s+)?a1c\b",
        _simple("83036", ("E08", "E09", "E10", "E11", "E13", "R73")),
        True,
    ),
    _r(
        "pregnancy_test",
        r"\burine (?:pregnancy|hcg) test\b|\bupt\b|\burine hcg\b",
        _simple("81025", ("Z32", "N9", "R10")),
        True,
    ),
    _r(
        "repair",
        r"\b(?:simple|intermediate|layered|complex)?\s*(?:laceration\s+|wound\s+)?repair(?:ed)?\b|\bsutured\b"
        r"|\bclosed with\b[^.;]{0,40}\b(?:sutures?|staples?|dermabond|tissue adhesive)\b|\b(?:sutures?|staples?) (?:were )?placed\b",
        _repair,
    ),
    _r(
        "i_and_d",
        r"\bincision and drainage\b|\bi\s*&\s*d\b|\bi and d\b|\bincised and drained\b",
        _incision_drainage,
    ),
    _r(
        "joint",
        r"\b(?:intra-?articular|joint|steroid|corticosteroid|cortisone)\s+injection\b|\barthrocentesis\b"
        r"|\binjected (?:into )?(?:the )?(?:right |left )?(?:knee|shoulder|hip|wrist|elbow|ankle|subacromial)"
        r"|\b(?:knee|shoulder|hip|wrist|elbow|ankle)(?: joint)? (?:injection|aspiration)\b"
        r"|\b(?:injection|aspiration) (?:of|into) (?:the )?(?:right |left )?(?:knee|shoulder|hip|wrist|elbow|ankle|subacromial)",
        _joint,
    ),
    _r(
        "cerumen",
        r"\bcerumen (?:removal|disimpaction|extraction|(?:was )?removed)\b|\bremoved (?:the )?(?:impacted )?cerumen\b"
        r"|\bear (?:lavage|irrigation)\b|\b(?:lavage|irrigation) of (?:the )?(?:right |left |both )?ears?\b",
        _cerumen,
    ),
    _r(
        "destruction",
        r"\bcryotherapy\b|\bcryo\b|\bliquid nitrogen\b|\bdestruction\b|\bdestroyed\b",
        _destruction,
    ),
    _r("biopsy", r"\b(?:shave|tangential|punch) biopsy\b", _biopsy),
    _r(
        "splint",
        r"\b(?:short arm|long arm|sugar[- ]tong|volar|wrist|thumb spica|ulnar gutter|radial gutter|short leg|long leg|"
        r"posterior (?:ankle|leg)|ankle stirrup|stirrup|finger)\s+splint\b|\bbuddy tap\w+\b|\bankle strapping\b",
        _splint,
    ),
    _r(
        "nebulizer",
        r"\bneb(?:ulizer|ulized)?\s*(?:treatments?|tx|txs)\b|\bduoneb\b|\bnebulized\b|\balbuterol\s+(?:neb|nebulizer)\b"
        r"|\bbreathing treatments?\b|\bvia neb(?:ulizer)?\b",
        _nebulizer,
    ),
    _r(
        "tobacco_counsel",
        r"\b(?:smoking|tobacco) cessation counsel\w*|\bcounsel\w*[^.;]{0,40}\b(?:(?:smoking|tobacco) )?cessation\b",
        _tobacco_counsel,
    ),
    _r("spirometry", r"\bspirometry\b", _spirometry, True),
    _r(
        "feno",
        r"\bfeno\b|\bexhaled nitric oxide\b",
        _simple("95012", ("J45", "J44", "R06", "R05")),
        True,
    ),
    _r(
        "rsv_test",
        r"\b(?:rapid\s+)?rsv\s+(?:antigen|test|swab|screen)\b",
        _simple("87807", ("J21", "J20", "J12", "B974", "R05", "R06")),
        True,
    ),
    _r(
        "pvr",
        r"\bbladder scan\b|\bpost[- ]?void residual\b[^.;]{0,30}\b(?:ultrasound|scan)\b|\bpvr\b[^.;]{0,20}\bscan\b",
        _simple("51798", ("N40", "R33", "R39", "N31", "N32", "N39", "R35")),
        True,
    ),
    _r(
        "walk_test",
        r"\b(?:six|6)[- ]minute walk(?: test)?\b|\b6mwt\b",
        _simple("94618", ("J4", "J84", "I27", "J96", "R06")),
        True,
    ),
    # in-office tests and endoscopy the tuning half showed (CPT code by the wording)
    _r(
        "kub",
        r"\bkub\b",
        _simple("74018", ("N20", "N13", "R10", "K59", "K56"), rule="imaging"),
        True,
    ),
    _r(
        "elastography",
        r"\bfibroscan\b|\b(?:transient|shear[- ]wave|vibration[- ]controlled) elastography\b",
        _simple("91200", ("K7", "B18", "E66", "E11"), rule="imaging"),
        True,
    ),
    _r(
        "abi",
        r"\bankle[- ]brachial (?:index|indices|pressures?)\b|\babis?\b(?=[^.;]{0,60}\d)",
        _simple("93922", ("I70", "I73", "E11", "E10"), rule="imaging"),
        True,
    ),
    _r(
        "nasal_endoscopy",
        r"\b(?:diagnostic )?nasal endoscopy\b",
        _simple("31231", ("J32", "J33", "J34", "J31", "R04"), rule="minor"),
        True,
    ),
    _r(
        "vision_screen",
        r"\bvision screen(?:ing)?\b|\bvisual acuity screen(?:ing)?\b",
        _simple("99173", ("Z00",), rule="screening"),
        True,
    ),
    _r(
        "hearing_screen",
        r"\bhearing screen(?:ing)?\b|\baudiometry\b",
        _simple("92551", ("Z00",), rule="screening"),
        True,
    ),
    _r(
        "device_check",
        r"\binterrogat\w*|\bdevice (?:check|evaluation)\b|\breprogramm\w*",
        _device_check,
        True,
    ),
    _r("fna", r"\bfine[- ]needle aspirat\w*|\bfna\b", _fna, True),
    _r("thoracentesis", r"\bthoracentesis\b", _thoracentesis, True),
    _r("paracentesis", r"\bparacentesis\b", _paracentesis, True),
    _r(
        "echo",
        r"\btte\b|\btransthoracic echo\w*|\bechocardiogra\w*|\becho\b(?=[^.;]{0,40}\b(?:performed|today|in[- ]office|lvef|ef\b))",
        _echo,
        True,
    ),
    _r("oct", r"\boct\b(?!\.?\s*\d)|\boptical coherence tomograph\w*", _oct, True),
    _r(
        "intravitreal",
        r"\bintravitreal (?:injection|inj)\b|\binjected intravitreal\w*",
        _intravitreal,
        True,
    ),
    _r(
        "cgm",
        r"\bcgm\b|\bcontinuous glucose monitor\w*|\bdexcom\b|\bfreestyle libre\b|\blibre\b",
        _cgm,
        True,
    ),
    _r(
        "reduction",
        r"\b(?:closed )?reduction\b|\breduced\b|\breduction maneuver\b|\b(?:hyperpronation|supination[- ]flexion) (?:maneuver|technique)\b",
        _reduction,
    ),
    _r(
        "burn_care",
        r"\bburn (?:care|dressing|wound care)\b|\bblisters? (?:were |was )?debrided\b|\bdebride\w*[^.;]{0,40}\bblisters?\b"
        r"|\bburn\w*[^.;]{0,40}\b(?:dressed|dressing applied)\b",
        _burn,
    ),
    _r(
        "intralesional",
        r"\bintralesional (?:injection|inj|kenalog|triamcinolone|steroid)\w*|\bilk\b|\binjected (?:into )?(?:the )?(?:cyst|keloid|lesion)s?\b",
        _intralesional,
        True,
    ),
    _r(
        "soft_tissue_injection",
        rf"\b(?:{SOFT_TISSUE_RX})\b[^.;]{{0,30}}\binjection\b|\binjection\b[^.;]{{0,30}}\b(?:{SOFT_TISSUE_RX})\b",
        _soft_tissue,
        True,
    ),
    _r(
        "endoscopy",
        r"^\s*(?:procedure:\s*)?(?:screening |diagnostic |surveillance )?(?:colonoscopy|egd|upper endoscopy|esophagogastroduodenoscopy)\b"
        r"|\b(?:colonoscopy|egd) (?:was )?(?:performed|completed)\b|\bcecum (?:was )?reached\b",
        _endoscopy,
        True,
    ),
    _r(
        "drug_screen",
        r"\b(?:urine )?drug screen\b|\budt\b|\buds\b|\burine tox(?:icology)?(?: screen)?\b",
        _drug_screen,
        True,
    ),
    _r(
        "psychotherapy",
        r"\bpsychotherapy\b|\bcbt\b|\bcognitive[- ]behavio(?:u)?ral therapy\b|\bdbt\b|\bsupportive therapy\b"
        r"|\binterpersonal therapy\b|\bexposure therapy\b|\bmotivational interviewing\b|\bdialectical behavio(?:u)?r therapy\b",
        _psychotherapy,
        True,
    ),
    _r(
        "psych_evaluation",
        r"\bpsychiatric diagnostic evaluation\b|\bdiagnostic (?:psychiatric )?interview\b",
        _psych_evaluation,
        True,
    ),
    _r(
        "phq9",
        r"\bphq-?9\b|\bphq-?a\b|\bgad-?7\b",
        _simple("96127", ("F32", "F33", "F41", "Z00", "Z13"), rule="screening"),
        True,
    ),
]
_SKIP = {"pmh", "family", "meds", "allergies", "ros", "social"}
# procedures that inject their own drug: the drug is billed with them, without 96372
_INJECTION_PROCEDURES = {"joint", "soft_tissue_injection", "intralesional", "intravitreal"}
# keyword pre-checks (see prefilter): most sentences name no service at all
_RULE_GATES = [(rule, Gate(rule.rx)) for rule in RULES]
_VACCINE_GATES = [(Gate(rx), code, comps, route) for rx, code, comps, route in VACCINES_RX]
_INJECTED_GATE = Gate(INJECTED)


def find(note: str, sents, v: Visit) -> list[Px]:
    """Procedure lines (E/M excluded) the note documents as done at this visit."""
    out: list[Px] = []
    vaccines: list[tuple[Px, int, str]] = []
    joint_sentences: set[int] = set()
    office = v.enc.encounter_class in ("AMB", "VR")
    low_note = lower_ascii(note)
    gates = None  # the note's keyword pre-check, made when a sentence is new
    for si, s in enumerate(sents):
        if s.section in _SKIP:
            continue
        text = note[s.start : s.end]
        key = (text, s.section, low_note is None)
        got = _SERVICES.get(key)
        if got is None:
            if gates is None:
                gates = _note_gates(low_note)
            got = _SERVICES.put(
                key,
                _services(
                    text, s.section, None if low_note is None else low_note[s.start : s.end], gates
                ),
            )
        hits, vaccine_hits, injected = got
        if s.section == "procedure" and (si == 0 or sents[si - 1].section != "procedure"):
            # the procedure named in its section's header ('Procedure - I&D: consent, ...')
            for rule, m, header in _header_services(note, s.start):
                if not (rule.office_only and not office) and not any(r is rule for r, _ in hits):
                    for px in rule.make(m, f"{header} {text}", v):
                        px.start, px.end = px.start or s.start, px.end or s.start
                        out.append(px)
        for rule, m in hits:
            if rule.office_only and not office:
                continue
            window = text
            if rule.name in _INJECTION_PROCEDURES:
                # the drug and dose often follow in the next sentence of the procedure note
                joint_sentences.update((si, si + 1))
                if si + 1 < len(sents) and sents[si + 1].section == s.section:
                    window = f"{text} {note[sents[si + 1].start : sents[si + 1].end]}"
            for px in rule.make(m, window, v):
                if px.start is None:
                    px.start, px.end = s.start + m.start(), s.start + m.end()
                out.append(px)
        for code, comps, route, m in vaccine_hits:
            if code in PEDIATRIC and v.age < PEDIATRIC[code][1]:
                code = PEDIATRIC[code][0]
            if not any(x[0].code == code for x in vaccines):
                vaccines.append(
                    (
                        Px(
                            code,
                            dx=("Z23",),
                            rule="vaccine",
                            start=s.start + m.start(),
                            end=s.start + m.end(),
                        ),
                        comps,
                        route,
                    )
                )
        # the ED facility, not the physician, bills drugs and their administration
        if office and injected and si not in joint_sentences:
            for drug in drug_lines(text, s.start, v, default_ok=False):
                if not any(p.code == drug.code for p in out):
                    out.append(drug)
                    out.append(Px("96372", dx=(), rule="admin", start=drug.start, end=drug.end))
    out.extend(px for px, _, _ in vaccines)
    out.extend(vaccine_admin(vaccines, v))
    return _merge(out)


# what one sentence documents as done, whatever the visit, by (sentence text,
# section, whether the note is non-ASCII): templated sentences are read once
_SERVICES = Memo(8192)


_PROCEDURE_HEADER = re.compile(r"^\s*procedure\b[\s\-:]*(.+?)[\s:]*$", re.I)


def _header_services(note: str, start: int):
    """(rule, match, header) for each rule the header line of a procedure section names."""
    line = note[note.rfind("\n", 0, start) + 1 : start]
    h = _PROCEDURE_HEADER.match(line)
    if h is None or not h.group(1).strip():
        return []
    header = h.group(1)
    return [(rule, m, header) for rule in RULES if (m := rule.rx.search(header))]


def _note_gates(low_note: str | None):
    """The rules (and their keywords) that can match somewhere in the note:
    a rule whose keywords the note lacks matches none of its sentences."""
    rules = [(r, keys) for r, g in _RULE_GATES if (keys := g.present(low_note)) != ()]
    vaccines = [(g, keys, *x) for g, *x in _VACCINE_GATES if (keys := g.present(low_note)) != ()]
    return rules, vaccines, _INJECTED_GATE.present(low_note)


def _services(text: str, section: str, low: str | None, gates):
    """Per rule its first match the sentence says was done; per vaccine (code,
    components, route, match); whether an injection is documented. ``low``:
    the lower-cased sentence (None: the note is not ASCII); ``gates``: see
    ``_note_gates``. The answer does not depend on which rules the note
    allows, only the work does (the pre-checks never change a match)."""
    rules, vaccine_rules, injected_keys = gates
    hits = []
    for rule, keys in rules:
        if not any_in(keys, low):
            continue
        for m in rule.rx.finditer(text):
            if rule.name in ("tobacco_counsel", "psychotherapy") or done(text, m, section):
                hits.append((rule, m))  # one line per rule and sentence
                break
    vaccines = []
    for gate, keys, code, comps, route in vaccine_rules:
        if not any_in(keys, low):
            continue
        m = gate.rx.search(text)
        if m and done(text, m, section):
            vaccines.append((code, comps, route, m))
    injected = False
    if (
        injected_keys != ()
        and any_in(injected_keys, low)
        and INJECTED.search(text)
        and not ORAL.search(text)
    ):
        injected = done(text, INJECTED.search(text), section)
    return tuple(hits), tuple(vaccines), injected


def _merge(lines: list[Px]) -> list[Px]:
    """One line per code (and modifier set): injections add units."""
    out: dict[tuple[str, tuple[str, ...]], Px] = {}
    for px in lines:
        key = (px.code, tuple(px.modifiers))
        if key in out:
            if px.code == "96372":
                out[key].units += px.units
            continue
        out[key] = px
    return list(out.values())
