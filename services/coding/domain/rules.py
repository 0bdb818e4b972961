"""ICD-10-CM rules applied to the candidate list: integral symptoms, combination
codes, 'use additional code' companions and sequencing.

- Signs and symptoms routinely part of a definitive diagnosis are not coded
  with it (guideline I.B.5); ``absorb`` drops them.
- 'With' presumes a link (guideline I.A.15): diabetes + CKD -> E1x.22,
  hypertension + CKD -> I12.x, hypertension + heart failure -> I11.0, all three
  -> I13.x (I.C.9.a), diabetes + polyneuropathy/hypoglycemia/hyperglycemia/
  angiopathy -> the diabetic combination code.
- Companions are added only when a coded diagnosis' own 'use additional code'
  note asks for them (insulin Z79.4, oral agents Z79.84, injectable
  non-insulin Z79.85, BMI Z68, dialysis Z99.2, former smoker Z87.891), plus
  current tobacco dependence (F17.2-) and anticoagulant use (Z79.01) with its
  usual indications, whenever documented.
"""

from __future__ import annotations

import re
from dataclasses import replace
from functools import lru_cache

from services.coding.domain.diagnoses import CHRONIC, Dx
from services.coding.domain.prefilter import fold, gated
from services.coding.domain.specificity import BODY_PARTS, desc_tokens, refine
from services.coding.domain.specificity import Ctx as SpCtx
from services.coding.domain.text import Context, norm_tokens
from shared import icd10cm

_DM = ("E08", "E09", "E10", "E11", "E13")
_INFECTIOUS = ("A", "B", "J", "U07", "H60", "H65", "H66", "N10", "N30", "N39", "L0", "K52")
# symptom code prefix -> diagnosis prefixes that explain it
_ABSORB: dict[tuple[str, ...], tuple[str, ...]] = {
    ("R05", "R06", "R0981", "J3489", "R070", "R0982"): ("J", "U07", "B34"),
    ("R509", "R6883", "R5381"): _INFECTIOUS,
    ("R30", "R35", "R31", "R39"): ("N",),
    ("R10",): ("K", "N10", "N20", "N30", "N39", "A08", "A09"),
    ("R11", "R197"): ("K", "A08", "A09"),
    ("R21",): ("L", "B0"),
    ("R519",): ("G43", "G44", "J01", "J32", "U07", "J11", "J10", "S06"),
    ("R42",): ("H81",),
    ("R079", "R0789", "R0781"): ("I20", "I21", "I25", "M940", "S20", "S22"),
    ("R030",): ("I10", "I11", "I12", "I13"),
    ("R739",): _DM,
    ("H920",): ("H60", "H61", "H65", "H66"),
    ("R600", "R229"): ("S", "L0", "M"),
}
_PAIN_BY_SITE = ("M255", "M796", "M545", "M542", "M549", "M543")
# 'Z' status/history codes follow the conditions they describe
# Z codes that name the reason for the encounter and are listed first when it is the visit's
# reason (Official Guidelines I.C.21.c.16 and IV): exams, observation, follow-up after completed
# treatment, screening, aftercare and device fitting/checks, therapy sessions
REASON_Z = (
    "Z00",
    "Z01",
    "Z02",
    "Z03",
    "Z04",
    "Z08",
    "Z09",
    "Z11",
    "Z12",
    "Z13",
    "Z4",
    "Z51",
    "Z52",
)
STATUS = ("Z79", "Z68", "Z87", "Z86", "Z85", "Z80", "Z81", "Z82", "Z83", "Z84", "Z99", "Z72", "F17")


def is_symptom(code: str) -> bool:
    return code.startswith("R") or code.startswith(_PAIN_BY_SITE) or code.startswith("H920")


_EXCLUDED_COMBINATION = re.compile(r"^(.+?) with (.+?) \(([A-Z]\d[\w.]*?)-?\)$")


@lru_cache(maxsize=20000)
def _combinations_excluded(code: str) -> tuple[tuple[frozenset[str], frozenset[str], str], ...]:
    """The combinations a code's Excludes1 notes send elsewhere ('sciatica with lumbago
    (M54.4-)'): the words naming the code itself, the words naming its partner, and the
    combination code."""
    out = []
    for note in icd10cm.excludes1(code):
        m = _EXCLUDED_COMBINATION.match(note.strip())
        if m:
            own, partner = frozenset(norm_tokens(m.group(1))), frozenset(norm_tokens(m.group(2)))
            ref = icd10cm.normalize(m.group(3))
            if own and partner and icd10cm.is_valid(ref):
                out.append((own, partner, ref))
    return tuple(out)


@lru_cache(maxsize=20000)
def _names(code: str) -> tuple[frozenset[str], ...]:
    """A code's title and inclusion terms as word sets ('Lumbago NOS' names M54.50)."""
    terms = [icd10cm.description(code) or "", *icd10cm.inclusion_terms(code)]
    return tuple(frozenset(norm_tokens(t)) - {"nos"} for t in terms)


def excluded_combinations(found: list[Dx]) -> list[Dx]:
    """Two codes whose pair an Excludes1 note sends to a combination code ('Sciatica, left
    side' with 'Low back pain', whose inclusion term is 'Lumbago': M54.42 'Lumbago with
    sciatica, left side') are that code alone: the tabular's own combination."""
    out = list(found)
    for d in found:
        if d not in out:
            continue
        for own, partner, ref in _combinations_excluded(d.code):
            if not any(own <= ws for ws in _names(d.code)):
                continue
            other = next(
                (o for o in out if o is not d and any(partner <= ws for ws in _names(o.code))),
                None,
            )
            if other is None:
                continue
            words = set(desc_tokens(d.code)) | set(desc_tokens(other.code))
            side = next((w for w in ("bilateral", "right", "left") if w in words), None)
            code, _ = refine(ref, SpCtx(words, side))
            if not icd10cm.is_billable(code):
                continue
            i = min(out.index(d), out.index(other))
            combo = replace(
                d,
                code=code,
                source="rule",
                kind="dx",
                conf=round(min(d.conf, other.conf) * 0.98, 3),
            )
            out = [x for x in out if x is not d and x is not other]
            out.insert(min(i, len(out)), combo)
            break
    return out


def absorb(found: list[Dx]) -> list[Dx]:
    """Drop symptoms a definitive diagnosis explains (unless its own 'use additional
    code' note asks for them: nocturia with BPH with LUTS), and an unspecified code
    when a more specific code of the same category is also found."""
    definitive = [d.code for d in found if not is_symptom(d.code) and not d.code.startswith("Z")]
    codes = {d.code for d in found}
    out = []
    for d in found:
        asked = (is_symptom(d.code) or d.kind == "organism") and any(
            _asks_for(c, d.code) for c in definitive
        )
        if is_symptom(d.code) and _explained(d.code, definitive) and not asked:
            continue
        if d.kind == "organism" and not asked:
            continue  # 'E. coli' only completes a code that asks for its infectious agent
        if _less_specific(d.code, codes):
            continue
        if _named_by_combination(d.code, definitive):
            continue
        out.append(d)
    return out


_GENERIC = frozenset("unspecified other specified nos".split())


@lru_cache(maxsize=20000)
def _with_words(code: str) -> frozenset[str]:
    """The words a title joins to its condition by 'with' ('Irritable bowel syndrome
    with constipation'), up to a 'without'."""
    desc = re.sub(r"\([^)]*\)", " ", icd10cm.description(code) or "")
    m = re.search(r"\bwith\b(.*?)(?=\bwithout\b|$)", desc, re.I)
    return frozenset(norm_tokens(m.group(1))) if m else frozenset()


def _named_by_combination(code: str, definitive: list[str]) -> bool:
    """A code whose whole title another coded title names after its 'with' (constipation
    beside 'irritable bowel syndrome with constipation'): the combination code says it
    all (guideline I.B.9), unless that code's 'use additional code' note asks for it."""
    core = desc_tokens(code) - _GENERIC
    if not core:
        return False
    return any(
        c != code and c[:3] != code[:3] and core <= _with_words(c) and not _asks_for(c, code)
        for c in definitive
    )


def _less_specific(code: str, codes: set[str]) -> bool:
    siblings = [c for c in codes if c != code and c[:3] == code[:3]]
    if not siblings:
        return False
    if code[3:4] == "9" and any(c[3:4] != "9" for c in siblings):
        return True  # X.9 (unspecified) beside a specified code of its category
    desc = (icd10cm.description(code) or "").lower()
    return "unspecified" in desc and any(
        "unspecified" not in (icd10cm.description(c) or "").lower() for c in siblings
    )


def _explained(sym: str, definitive: list[str]) -> bool:
    for syms, dxs in _ABSORB.items():
        if sym.startswith(syms) and any(c.startswith(dxs) for c in definitive):
            return True
    if sym.startswith(_PAIN_BY_SITE):
        parts = _parts(sym)
        return any(c[0] in "SML" and (_parts(c) & parts or not parts) for c in definitive)
    return False


def _parts(code: str) -> set[str]:
    toks = set(desc_tokens(code))
    if "back" in toks or code.startswith("M54"):
        toks |= {"back", "lumbar", "lower"}
    return toks & (BODY_PARTS | {"lumbar", "lower"})


# ----------------------------------------------------------------------------- combinations


def _first(found: list[Dx], prefixes: tuple[str, ...]) -> Dx | None:
    return next((d for d in found if d.code.startswith(prefixes)), None)


def combine(found: list[Dx]) -> list[Dx]:
    found = list(found)
    dm = _first(found, _DM)
    if dm is not None:
        fam = dm.code[:3]
        for other, suffix, keep in (
            ("N18", "22", True),
            (("G60", "G61", "G62", "G63"), "42", False),
            ("R739", "65", False),
            ("E162", "649", False),
            ("I739", "51", False),
        ):
            o = _first(found, other if isinstance(other, tuple) else (other,))
            target = fam + suffix
            if o is None or not icd10cm.is_billable(target):
                continue
            if any(d.code == target for d in found):
                # the note named the combination itself ('PAD due to type 2 diabetes'):
                # the separate code is still part of it
                if not keep:
                    found.remove(o)
                continue
            combo = replace(
                dm,
                code=target,
                source="rule",
                kind="dx",
                conf=round(min(dm.conf, o.conf) * 0.98, 3),
            )
            found.insert(found.index(dm), combo)
            if not keep:
                found.remove(o)
        complicated = [d for d in found if d.code.startswith(fam) and d.code != fam + "9"]
        if complicated:
            found = [d for d in found if d.code != fam + "9"]
    if _first(found, ("E063",)) is not None:
        # the Index's 'Hypothyroidism, autoimmune' and Hashimoto's are E06.3 alone
        found = [d for d in found if d.code != "E039"]
    htn = _first(found, ("I10", "I119", "I110"))
    if htn is not None:
        ckd = _first(found, ("N18",))
        hf = _first(found, ("I50",))
        stage5 = ckd is not None and ckd.code in ("N185", "N186")
        target = None
        if ckd and hf:
            target = "I132" if stage5 else "I130"
        elif ckd:
            target = "I120" if stage5 else "I129"
        elif hf:
            target = "I110"
        if target:
            parts = [x for x in (ckd, hf) if x]
            conf = round(min([htn.conf] + [x.conf for x in parts]) * 0.98, 3)
            found[found.index(htn)] = replace(htn, code=target, source="rule", conf=conf)
    if any(d.code.startswith(("I11", "I12", "I13")) for d in found):
        # hypertension with heart or kidney disease is the combination code alone (I.C.9.a)
        found = [d for d in found if d.code != "I10"]
    return found


@lru_cache(maxsize=50000)
def _excluded(a: str, b: str) -> bool:
    return icd10cm.excludes1_conflict(a, b) is not None


@lru_cache(maxsize=20000)
def _combines(combo: str, part: str) -> bool:
    """Does ``combo``'s title name every word of ``part``'s, and more ('Type 2 diabetes
    mellitus with hypoglycemia without coma' and 'Hypoglycemia, unspecified')?"""
    words = desc_tokens(part) - {"unspecified"}
    return bool(words) and words < desc_tokens(combo)


def exclusive(found: list[Dx]) -> tuple[list[Dx], list[str]]:
    """Never two codes an Excludes1 note forbids together, nor two stages of one condition
    (CKD N18.1-N18.6): the later-listed, less certain one goes. Returns the codes kept
    and a description of each conflict (the coder confirms the choice)."""
    out: list[Dx] = []
    conflicts: list[str] = []
    for d in sorted(found, key=lambda d: (-d.conf, d.rank)):
        clash = next(
            (o for o in out if (o.code[:3] == d.code[:3] == "N18") or _excluded(o.code, d.code)),
            None,
        )
        if clash is None:
            out.append(d)
        elif _combines(d.code, clash.code):
            # the combination code carries the other one's condition ('with hypoglycemia'
            # beside hypoglycemia, unspecified): it is the one the 'with' convention codes
            out[out.index(clash)] = d
            conflicts.append(f"{icd10cm.with_dot(clash.code)} with {icd10cm.with_dot(d.code)}")
        else:
            conflicts.append(f"{icd10cm.with_dot(d.code)} with {icd10cm.with_dot(clash.code)}")
    kept = {id(d) for d in out}
    return [d for d in found if id(d) in kept], conflicts


# ----------------------------------------------------------------------------- companions

_MEDS = {
    # the look-behinds after 'insulin', not before: ahead of every alternative they
    # stopped re from skipping to a word's first letter (ten times slower, same matches)
    "Z794": r"\binsulin\b(?<!sliding scale insulin)(?<!sliding-scale insulin)|\blantus\b|\bglargine\b|\bhumalog\b|\bnovolog\b|\blispro\b|\bdetemir\b|\blevemir\b"
    r"|\btresiba\b|\bdegludec\b|\bbasaglar\b|\btoujeo\b",
    "Z7984": r"\bmetformin\b|\bglipizide\b|\bglyburide\b|\bglimepiride\b|\bsitagliptin\b|\bjanuvia\b"
    r"|\bpioglitazone\b|\bempagliflozin\b|\bjardiance\b|\bdapagliflozin\b|\bfarxiga\b|\blinagliptin\b"
    r"|\btradjenta\b|\brybelsus\b|\boral (?:hypoglycemic|antidiabetic|diabetes) (?:agent|medication|drug)",
    "Z7985": r"\bozempic\b|\btrulicity\b|\bdulaglutide\b|\bvictoza\b|\bliraglutide\b|\bmounjaro\b"
    r"|\btirzepatide\b|\bbyetta\b|\bexenatide\b",
    "Z992": r"\b(?:hemo|peritoneal )?dialysis\b",
    "Z87891": r"\bformer (?:cigarette )?smoker\b|\bex-?smoker\b|\bquit smoking\b|\bhistory of (?:smoking|tobacco)\b"
    r"|\bquit (?:cigarettes|tobacco)\b",
    "Z7722": r"\bsecond[- ]?hand smoke\b|\benvironmental tobacco smoke\b|\bpassive smok\w*"
    r"|\bsmokes? (?:in|inside) the (?:home|house|car)\b|\b(?:tobacco )?smoke exposure\b|\bexposure to (?:tobacco )?smoke\b",
    "Z9981": r"\bhome (?:o2|oxygen)\b|\b(?:o2|oxygen)[- ]dependent\b|\bcontinuous (?:o2|oxygen)\b"
    r"|\b\d+(?:\.\d+)?\s*l(?:pm)?\s+(?:continuous|nc|o2|oxygen)\b|\bon (?:supplemental |home )?(?:o2|oxygen)\b",
}
_MEDS_RX = {k: gated(v, re.I) for k, v in _MEDS.items()}
_ANTICOAG = gated(
    r"\bwarfarin\b|\bcoumadin\b|\bapixaban\b|\beliquis\b|\brivaroxaban\b|\bxarelto\b|\bdabigatran\b"
    r"|\bpradaxa\b|\bedoxaban\b|\benoxaparin\b|\blovenox\b",
    re.I,
)
_ANTICOAG_FOR = (
    "I48",
    "I26",
    "I82",
    "Z8671",
    "Z952",
    "Z953",
    "Z954",
    "I63",
    "Z8673",
    "D685",
    "D686",
)
# Status and long-term drug codes a coder adds beside the condition they bear on
# (I.C.21.c.3 status, Z79 long-term prophylactic use): (companion, note pattern, codes it goes with)
_STATUS_FOR = (
    (
        "Z7982",
        gated(
            r"\baspirin\b|\basa\s*81\b|\bbaby aspirin\b|\basa\b(?=[^.\n]{0,20}\b(?:daily|qd|mg))",
            re.I,
        ),
        # cardiovascular prophylaxis, and GI bleeding or ulcer on it
        ("I25", "I21", "I22", "I63", "Z8673", "K920", "K921", "K922", "K25", "K26", "K27", "K28"),
    ),
    (
        "Z955",
        gated(
            r"\bcoronary stents?\b|\b(?:des|bms|drug[- ]eluting stent)\b|\bstent(?:ed|s)?\b", re.I
        ),
        ("I25",),
    ),
    ("Z9981", _MEDS_RX["Z9981"], ("J961", "J962", "J44", "J84", "I272")),
)
# codes whose title names their cause, which a 'code first' note asks to be coded too
_ETIOLOGY_NAMED = {"J1282": "U071"}
_SMOKER = [
    (
        "F17210",
        gated(
            r"\bcurrent(?:ly)?\s+(?:every[- ]day\s+|daily\s+|cigarette\s+)?smok\w*|\bsmokes\b"
            r"|smoker\b(?<![-\w]smoker)|\b\d+(?:\.\d+)?\s*(?:packs?|ppd)\b(?! ?-?years?)"
            r"|\bcigarettes? (?:daily|per day|a day)",
            re.I,
        ),
    ),
    ("F17290", gated(r"\bvap(?:es|ing)\b|\be-?cigarettes?\b", re.I)),
    ("F17220", gated(r"\bchew(?:s|ing)? tobacco\b|\bsmokeless tobacco\b", re.I)),
]
_NOT_SMOKER = gated(
    r"\b(?:former|ex|never|non|quit)[- ]?\s*smok|\bsmok\w*\s*:\s*(?:no|never|denies|none)", re.I
)
_CURRENT_SMOKER = gated(r"\bcurrent(?:ly)? smok", re.I)
_BMI = gated(
    r"\bBMI\b\s*(?:is|of|was|=|:)?\s*(\d{2}(?:\.\d+)?)(?!\s*(?:st|nd|rd|th)?\s*percentile)", re.I
)
_BMI_PCT = gated(r"\bBMI\b[^.\n]{0,30}?(\d{1,2}(?:\.\d+)?)(?:st|nd|rd|th)?\s*percentile", re.I)
# the callers read spans and BMI digits only
fold(
    *_MEDS_RX.values(),
    _ANTICOAG,
    *(rx for _, rx, _ in _STATUS_FOR[:2]),
    *(rx for _, rx in _SMOKER),
    _NOT_SMOKER,
    _CURRENT_SMOKER,
    _BMI,
    _BMI_PCT,
)


def _affirmed(ctx: Context, m: re.Match) -> bool:
    return ctx.status(m.start(), m.end()) in ("affirmed", "history")


_OTHER_PERSON = re.compile(
    r"\b(?:father|mother|dad|mom|parents?|brother|sister|spouse|husband|wife|partner|roommate|grandparent\w*)\b[^.;\n]*$",
    re.I,
)


def _search(rx: re.Pattern, note: str, ctx: Context) -> re.Match | None:
    return next((m for m in rx.finditer(note) if _affirmed(ctx, m)), None)


def _own_habit(note: str, m: re.Match) -> bool:
    """The patient's, not a household member's ('Father smokes in the home')."""
    return _OTHER_PERSON.search(note, max(0, m.start() - 40), m.start()) is None


@lru_cache(maxsize=20000)
def _asks_for(code: str, companion: str) -> bool:
    """Does the code's 'use additional code' note reference the companion?"""
    return any(
        icd10cm.in_range(companion, ref)
        for n in icd10cm.use_additional(code)
        for ref in icd10cm.code_refs(n)
    )


def adult_bmi_code(bmi: float) -> str:
    if bmi < 20:
        return "Z681"
    if bmi < 40:
        return f"Z68{int(bmi)}"
    for hi, code in ((45, "Z6841"), (50, "Z6842"), (60, "Z6843"), (70, "Z6844")):
        if bmi < hi:
            return code
    return "Z6845"


def _bmi(note: str, age: int) -> tuple[str, re.Match] | None:
    if age >= 20:
        m = _BMI.search(note)
        return (adult_bmi_code(float(m.group(1))), m) if m else None
    m = _BMI_PCT.search(note)
    if m and age >= 2:
        p = float(m.group(1))
        code = "Z6851" if p < 5 else "Z6852" if p < 85 else "Z6853" if p < 95 else "Z6854"
        return code, m
    return None


def companions(found: list[Dx], note: str, ctx: Context, age: int) -> list[Dx]:
    have = {d.code for d in found}
    out = list(found)

    def add(code: str, anchor: Dx | None, m: re.Match | None, conf: float) -> None:
        if code in have:
            return
        have.add(code)
        out.append(
            Dx(
                code,
                conf,
                m.start() if m else None,
                m.end() if m else None,
                source="rule",
                kind="companion",
                rank=(8, m.start() if m else 0),
                anchor=anchor.code if anchor else None,
            )
        )

    smoking = (
        None
        if _NOT_SMOKER.search(note) and not _CURRENT_SMOKER.search(note)
        else next(
            (
                (c, m)
                for c, rx in _SMOKER
                if (m := _search(rx, note, ctx)) is not None and _own_habit(note, m)
            ),
            None,
        )
    )
    if smoking and not any(c.startswith("F17") for c in have):
        add(smoking[0], None, smoking[1], 0.88)
    for d in list(found):
        asked = _companions_asked(d.code)
        for comp, rx in _MEDS_RX.items():
            if comp == "Z87891" and smoking:
                continue
            if comp in asked and (m := _search(rx, note, ctx)):
                add(comp, d, m, 0.9)
        if "Z6830" in asked or "Z6851" in asked:
            b = _bmi(note, age)
            if b:
                add(b[0], d, b[1], 0.92)
        if d.code.startswith(_ANTICOAG_FOR) and (m := _search(_ANTICOAG, note, ctx)):
            add("Z7901", d, m, 0.9)
        if d.code in _ETIOLOGY_NAMED:
            # the title names its cause and the tabular's 'code first' asks for it
            # (I.C.1.g.1: pneumonia due to COVID-19 is U07.1 first, then J12.82)
            cause = _ETIOLOGY_NAMED[d.code]
            if cause not in have:
                have.add(cause)
                out.append(replace(d, code=cause, kind="dx", rank=(d.rank[0], d.rank[1] - 1)))
        for comp, rx, conditions in _STATUS_FOR:
            if d.code.startswith(conditions) and (m := _search(rx, note, ctx)):
                add(comp, d, m, 0.85)
        # combination codes whose manifestation is missing (EHR-supplied, usually)
        if d.code.startswith(("I12", "I13")) or d.code[3:] == "22" and d.code.startswith(_DM):
            if not any(c.startswith("N18") for c in have):
                add("N189", d, None, 0.75)
        if d.code in ("I110", "I130", "I132") and not any(c.startswith("I50") for c in have):
            add("I509", d, None, 0.75)
    return out


# ----------------------------------------------------------------------------- sequencing


_ABNORMAL = gated(r"\babnormal(?<!without abnormal)(?<!no abnormal) findings?\b", re.I)


fold(_ABNORMAL)


def preventive_findings(found: list[Dx], note: str) -> list[Dx]:
    """Z00.00/Z00.129 become 'with abnormal findings' when a new, non-chronic problem is coded."""
    abnormal = _ABNORMAL.search(note) is not None or any(
        d.kind == "dx" and not d.code.startswith(("Z", *CHRONIC)) for d in found
    )
    swap = {"Z0000": "Z0001", "Z00129": "Z00121"}
    return [replace(d, code=swap[d.code]) if abnormal and d.code in swap else d for d in found]


def order(found: list[Dx]) -> list[Dx]:
    """Principal first: preventive exam, then conditions in assessment order, then
    symptoms, then status codes; companions right after the code that asked for
    them; code-first notes respected."""

    def group(d: Dx) -> int:
        if d.kind == "preventive" or d.code.startswith(REASON_Z):
            return 0
        if d.code.startswith(STATUS) or d.kind == "history":
            return 3
        if is_symptom(d.code) and not (d.source == "note" and d.rank[0] == 0):
            # a symptom the assessment itself lists (not one integral to a condition,
            # which absorb dropped) keeps its place: 'chest pain' listed first is the
            # reason for the visit (IV.D); symptoms read elsewhere follow the conditions
            return 2
        return 1

    seen: set[str] = set()
    main = []
    for d in sorted((d for d in found if d.anchor is None), key=lambda d: (group(d), d.rank)):
        if d.code not in seen:
            seen.add(d.code)
            main.append(d)
    # status companions (Z79, Z68, Z99, F17...) after the conditions, in the
    # order of the codes that asked for them; manifestations right after theirs
    tail = []
    for c in (d for d in found if d.anchor is not None):
        if c.code in seen:
            continue
        seen.add(c.code)
        if c.code.startswith(STATUS):
            tail.append(c)
            continue
        idx = next((i for i, d in enumerate(main) if d.code == c.anchor), len(main) - 1)
        main.insert(idx + 1, c)
    pos = {d.code: i for i, d in enumerate(main)}
    tail.sort(key=lambda c: pos.get(c.anchor or "", len(main)))
    return code_first_order(main + tail)


@lru_cache(maxsize=20000)
def code_first_refs(code: str) -> tuple[tuple[str, str], ...]:
    """The code ranges a code's 'code first' notes name."""
    return tuple(r for n in icd10cm.code_first(code) for r in icd10cm.code_refs(n))


@lru_cache(maxsize=20000)
def _companions_asked(code: str) -> frozenset[str]:
    """Which of the regex-found companions (and BMI) the code's notes ask for."""
    return frozenset(c for c in (*_MEDS_RX, "Z6830", "Z6851") if _asks_for(code, c))


def code_first_order(items: list) -> list:
    """Move a code after any code its 'code first' note names that is listed later."""
    items = list(items)
    for _ in range(len(items)):
        moved = False
        for i, d in enumerate(items):
            refs = code_first_refs(d.code)
            if not refs:
                continue
            later = [
                j
                for j in range(i + 1, len(items))
                if any(icd10cm.in_range(items[j].code, r) for r in refs)
            ]
            if later:
                items.insert(max(later), items.pop(i))
                moved = True
                break
        if not moved:
            break
    return items
