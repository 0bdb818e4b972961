"""Computer-assisted coding of one documented encounter.

``code_encounter`` reads the note (diagnoses, services, E/M level), checks the
codes the EHR attached, runs the coding edits and routes the result: ``auto``
when nothing blocks and every code's confidence reaches the threshold, else
``review`` (a coder's work queue). Pure: no I/O besides the packaged code sets.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date
from decimal import Decimal

from services.coding.domain import cpt, em, procedures, routing, rules
from services.coding.domain import diagnoses as dxm
from services.coding.domain import specificity as sp
from services.coding.domain.edits import as_line, diagnosis_edits, edit, procedure_edits
from services.coding.domain.lexicon import Searcher
from services.coding.domain.lines import Px, Visit
from services.coding.domain.model import (
    CodingResult,
    DxSuggestion,
    Evidence,
    PxSuggestion,
    offline_json,
)
from services.coding.domain.prefilter import fold, gated, keep_facts
from services.coding.domain.text import norm_tokens, sentences
from shared import icd10cm
from shared.events import CodingEdit, Encounter

__all__ = ["code_encounter", "validate_final_codes", "offline_json", "CodingResult"]

_ADMIN_OR_SCREEN = ("admin", "vaccine", "screening")
_SEPARATE = gated(r"\bseparately identifiable\b|\bsignificant(?:,| and) separate", re.I)
_PLAN = gated(
    r"\bplan\b|\bprescri|\brecommend|\bfollow[- ]?up\b|\bf/u\b|\breturn\b|\brtc\b|\bcont(?:inue)?\b|\bstart(?:ed)?\b|\bdischarge|\brefill",
    re.I,
)
_NEW_PATIENT = gated(r"\bnew patient\b|\bestablish(?:ing)? care\b|\bfirst visit\b", re.I)
# confidence given to a code that replaced the EHR's: just under the default
# threshold, so the encounter goes to a coder to confirm the change
_CONFIRM = 0.79
_AWV = gated(r"(?i:\bannual wellness visit\b|\bmedicare wellness\b)|\bAWV\b")
fold(_SEPARATE, _PLAN, _NEW_PATIENT, _AWV)  # truth values only


def age_on(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


# Intake lets an encounter without a birth date through (billing holds its claim). The note
# is then read as an adult's, and the encounter goes to a coder: age-banded codes (preventive
# visits, pediatric vaccines, BMI) need a person to check, and age edits cannot be run.
_UNKNOWN_AGE_READ_AS = 40


def _age_unknown_edit(severity: str) -> CodingEdit:
    return edit(
        "AGE_UNKNOWN",
        severity,
        "patient birth date is missing: age edits were skipped and age-dependent codes"
        " need a coder's check",
    )


def _is_medicare(enc: Encounter) -> bool:
    cov = enc.primary_coverage
    return cov is not None and (
        cov.filing_indicator in ("MA", "MB") or "medicare" in cov.payer_name.lower()
    )


def code_encounter(
    enc: Encounter,
    *,
    threshold: Decimal = Decimal("0.80"),
    history_new_patient: bool | None = None,
    index: Searcher | None = None,
) -> CodingResult:
    """Suggest ICD-10-CM and CPT/HCPCS codes for an encounter and route it.

    Never raises on clinical content: a missing note, unknown codes or an
    undocumented E/M become edits and the route is ``review``. ``index``
    replaces the in-memory term index for statements the synonym list lacks.
    """
    note = enc.note or ""
    birth = enc.patient.birth_date
    known_age = age_on(birth, enc.service_date) if birth is not None else None
    age = known_age if known_age is not None else _UNKNOWN_AGE_READ_AS
    sex = enc.patient.gender
    edits: list[CodingEdit] = [] if known_age is not None else [_age_unknown_edit("blocking")]
    result = CodingResult()
    if not note.strip():
        edits.append(
            edit(
                "NO_DOCUMENTATION",
                "blocking",
                "encounter has no clinical note; codes cannot be verified",
            )
        )
    findings = dxm.find(note, age, index=index) if note.strip() else dxm.DxFindings()
    found = rules.combine(rules.absorb(rules.excluded_combinations(findings.found)))
    visit = Visit(note, enc, age, _is_medicare(enc), [d.code for d in found])
    pxs = procedures.find(note, findings.sents, visit) if note.strip() else []
    vacc = [p for p in pxs if p.rule == "vaccine"]
    if vacc and not any(d.code == "Z23" for d in found):
        found.append(
            dxm.Dx(
                "Z23", 0.95, vacc[0].start, vacc[0].end, kind="late", rank=(5, vacc[0].start or 0)
            )
        )
    found = rules.companions(found, note, findings.ctx, age)
    found = rules.preventive_findings(found, note)
    found, conflicts = rules.exclusive(found)
    ordered = _codes_in_force(rules.order(found), enc.service_date, edits)
    ordered, ehr_edits = _reconcile_dx(enc, ordered, findings, bool(note.strip()))
    edits.extend(ehr_edits)
    ordered, evidence_edits = _ehr_evidence(enc, ordered, age, bool(note.strip()), index)
    edits.extend(evidence_edits)
    ordered = _codes_in_force(ordered, enc.service_date, edits)
    if findings.uncertain:
        edits.append(
            edit(
                "DX_UNCERTAIN",
                "info",
                "uncertain diagnosis documented; coded the signs/symptoms (guideline IV.H)",
            )
        )
        if not any(d.source == "rule" for d in ordered) and not ordered:
            edits.append(
                edit(
                    "DX_UNCERTAIN_NO_SYMPTOM",
                    "warning",
                    "uncertain diagnosis without a documented sign or symptom to code",
                )
            )

    pxs, ehr_px_edits = _reconcile_px(enc, pxs, bool(note.strip()))
    edits.extend(ehr_px_edits)
    em_lines, em_edits, basis, mdm = _evaluation(
        enc, note, findings, ordered, pxs, age, history_new_patient
    )
    edits.extend(em_edits)
    pxs = em_lines + pxs

    dx_codes = [d.code for d in ordered]
    result.diagnoses = [
        DxSuggestion(
            d.code,
            icd10cm.description(d.code),
            round(d.conf, 3),
            _ev(note, d.start, d.end),
            d.source,
        )  # type: ignore[arg-type]
        for d in ordered
    ]
    result.procedures = []
    for p in pxs:
        pointers = _pointers(p, dx_codes)
        if p.lateral and not p.modifiers and pointers:
            side = _side_of(dx_codes[pointers[0] - 1])
            p.modifiers = [side] if side else []
        result.procedures.append(
            PxSuggestion(
                p.code,
                p.system,
                p.modifiers,
                p.units,
                pointers,
                round(p.conf, 3),  # type: ignore[arg-type]
                _ev(note, p.start, p.end),
                p.source,
                cpt.label(p.code),
            )
        )
    edits.extend(diagnosis_edits(dx_codes, known_age, sex, enc.service_date))
    edits.extend(procedure_edits([as_line(p) for p in result.procedures], len(dx_codes)))
    result.edits = _dedupe(edits)
    result.em_basis, result.mdm = basis, mdm
    result.code_set_version = icd10cm.release_for(enc.service_date)[0].version
    confident = all(
        x.confidence >= float(threshold) for x in [*result.diagnoses, *result.procedures]
    )
    blocked = any(e.severity == "blocking" for e in result.edits)
    reasons = _route_reasons(note, findings, ordered, pxs, result, conflicts)
    result.route_reasons = reasons
    if reasons:
        # one line for the coder: every reason the engine saw, most specific first
        result.edits.append(
            CodingEdit.model_construct(
                code="ROUTE_REVIEW",
                severity="info",
                message="; ".join(routing.REASONS[r] for r in reasons),
            )
        )
    result.route = (
        "auto"
        if confident and not blocked and not reasons and result.diagnoses and result.procedures
        else "review"
    )
    return result


def _route_reasons(note, findings, ordered, pxs, result, conflicts) -> list[str]:
    """The routing.REASONS that hold for this encounter (see routing). The reasons read
    from what the engine already holds are all listed; those that read the note's text
    again are checked only when none of the others holds (one reason is enough to send
    the encounter to a coder, and most encounters have one)."""
    codes = [d.code for d in ordered]
    # one pass over the diagnoses for the reasons read from them
    negated = findings.negated
    n_symptoms = index = conflict = history = combination = companion = 0
    definitive = unspecified = ehr = plan_only = False
    for d in ordered:
        c = d.code
        if rules.is_symptom(c):
            n_symptoms += 1
        elif not c.startswith("Z"):
            definitive = True
        kind, source = d.kind, d.source
        index = index or d.guessed
        if source == "note":
            conflict = conflict or d.stem in negated
            plan_only = plan_only or d.rank[0] >= 2
        elif source == "rule":
            combination = combination or kind == "dx"
        elif source == "ehr":
            ehr = True
        history = history or kind == "history"
        companion = companion or kind == "companion"
        unspecified = unspecified or (d.defaulted and not sp.is_default(c))
    em_lines = [p for p in result.procedures if cpt.is_em(p.code)]
    has_note = bool(note.strip())
    got = {
        "unmatched": bool(findings.unmatched),
        "index": bool(index),
        "set_aside": any(k != "negated" for k, _, _ in findings.set_aside),
        "conflict": bool(conflict),
        "uncertain": bool(findings.uncertain),
        "history": bool(history),
        "combination": bool(combination),
        "companion": bool(companion),
        "symptom": definitive and n_symptoms > 0,
        "exclusive": bool(conflicts),
        "unspecified": bool(unspecified),
        "no_assessment": not findings.has_assessment and has_note,
        "em_mdm": result.em_basis == "mdm"
        and (not em.settled(result.mdm) or em.data_sensitive(result.mdm, note)),
        "em_separate": any("25" in p.modifiers for p in em_lines)
        or any(e.code == "EM_NOT_SEPARATE" for e in result.edits),
        "ehr": ehr,
        "many": len(codes) > 4,
        "symptom_only": bool(codes) and n_symptoms == len(codes),
        "plan_only": bool(plan_only),
        "drug": any(p.rule in ("drug", "vaccine", "admin") for p in pxs),
        "no_em": not em_lines and has_note,
    }
    out = [r for r, hit in got.items() if hit and r in ROUTE_ON]
    if out or not has_note:
        return out
    text_checks = {
        "context": lambda: routing.context_near(ordered, findings.sents, findings.ctx),
        "status": lambda: routing.status_mentioned(note, findings.sents),
        "siblings": lambda: any(
            d.source == "note"
            and d.start is not None
            and routing.sibling_words(d.code, note[d.start : d.end])
            for d in ordered
        ),
        "use_additional": lambda: routing.owed_companion(
            codes, lambda: _documented(note, findings)
        ),
        "service": lambda: routing.service_unrecognised(
            note, [(p.start, p.end) for p in pxs if not cpt.is_em(p.code)], findings.sents
        ),
    }
    return [r for r, check in text_checks.items() if r in ROUTE_ON and check()]


def _documented(note: str, findings) -> str:
    """The sentences that document this visit (not history lists), lower-cased."""
    return " ".join(
        note[s.start : s.end].lower()
        for s in findings.sents
        if s.section in ("assessment", "plan", "hpi", "cc", "other", "mdm")
    )


# the reasons that send an encounter to review (all of routing.REASONS; see docs/coding.md)
ROUTE_ON = frozenset(routing.REASONS)


def _ev(note: str, start: int | None, end: int | None) -> Evidence | None:
    if start is None or end is None or not note:
        return None
    return Evidence(note[start:end], start, end)


def _dedupe(edits: list[CodingEdit]) -> list[CodingEdit]:
    seen, out = set(), []
    for e in edits:
        if (e.code, e.message) not in seen:
            seen.add((e.code, e.message))
            out.append(e)
    return out


# ----------------------------------------------------------------------------- date of service


def _codes_in_force(found: list[dxm.Dx], on: date, edits: list[CodingEdit]) -> list[dxm.Dx]:
    """Suggestions come from the bundled release. When another release is in force on the
    date of service, a suggested code it does not have becomes its nearest ancestor that it
    bills (M54.50 -> M54.5 before FY2022, when M54.5 was not yet subdivided), with an info
    edit; one without such an ancestor stays, and the diagnosis edits flag it."""
    release = icd10cm.release_for(on)[0].version
    if release == icd10cm.VERSION:
        return found
    out: list[dxm.Dx] = []
    for d in found:
        if not icd10cm.check(d.code, on).billable:
            older = next(
                (a for a in icd10cm.ancestors(d.code) if icd10cm.check(a, on).billable), None
            )
            if older is not None:
                edits.append(
                    edit(
                        "DX_CODE_FOR_DATE",
                        "info",
                        f"{icd10cm.with_dot(older)} is the code ICD-10-CM {release} (the release"
                        f" for the date of service) has for {icd10cm.with_dot(d.code)}",
                    )
                )
                d = replace(d, code=older)
        if all(o.code != d.code for o in out):
            out.append(d)
    return out


# ----------------------------------------------------------------------------- EHR codes


def _reconcile_dx(enc: Encounter, found: list[dxm.Dx], findings: dxm.DxFindings, has_note: bool):
    """Validate the EHR's ICD-10-CM diagnoses (against the release in force on the date of
    service): keep, replace by the billable code the note supports, or flag. Diagnoses in
    other systems are not codes to validate (see ``_ehr_evidence``)."""
    out = list(found)
    edits: list[CodingEdit] = []
    for s in enc.diagnoses:
        if s.system != "icd10cm":
            continue
        c = icd10cm.normalize(s.code)
        shown = icd10cm.with_dot(c)
        checked = icd10cm.check(c, enc.service_date)
        same = next((d for d in out if d.code == c), None)
        if same is not None:
            same.conf = min(0.99, same.conf + 0.03)
            continue
        family = [d for d in out if d.code.startswith(c) or (len(c) >= 3 and d.code[:3] == c[:3])]
        if checked.billable:
            if family and has_note:
                # the provider picked a different code than the note supports: a coder confirms
                family[0].conf = min(family[0].conf, _CONFIRM)
                edits.append(
                    edit(
                        "EHR_CODE_REPLACED",
                        "warning",
                        f"EHR diagnosis {shown} replaced by {icd10cm.with_dot(family[0].code)}, which the note supports",
                    )
                )
                continue
            conf = 0.75 if has_note else 0.85
            if has_note:
                edits.append(
                    edit(
                        "EHR_CODE_UNSUPPORTED",
                        "warning",
                        f"EHR diagnosis {shown} is not supported by the note",
                    )
                )
            out.append(dxm.Dx(c, conf, source="ehr", rank=(6, len(out))))
            continue
        descendant = next((d for d in out if d.code.startswith(c)), None) or (
            family[0] if family and icd10cm.is_valid(c[:3]) else None
        )
        if descendant is not None:
            descendant.conf = min(descendant.conf, _CONFIRM)
            edits.append(
                edit(
                    "EHR_CODE_REPLACED",
                    "warning",
                    f"EHR diagnosis {shown} is not billable; replaced by {icd10cm.with_dot(descendant.code)}, which the note supports",
                )
            )
            continue
        if icd10cm.is_valid(c) and has_note:
            # let the note's words choose among the children
            words = sp.context_tokens(
                [t for s_ in findings.sents for t in _norm(enc.note or "", s_)]
            )
            own = sp.desc_tokens(c) - {"unspecified"}
            supported = len(own & words) >= max(
                1, len(own) // 2
            )  # the note talks about this condition
            refined, factor = sp.refine(c, sp.Ctx(words, sp.laterality(words), findings.phase))
            if supported and icd10cm.is_billable(refined) and factor >= 0.95:
                edits.append(
                    edit(
                        "EHR_CODE_REPLACED",
                        "warning",
                        f"EHR diagnosis {shown} is not billable; replaced by {icd10cm.with_dot(refined)} from the note",
                    )
                )
                out.append(dxm.Dx(refined, _CONFIRM, source="ehr", rank=(6, len(out))))
                continue
        problem = icd10cm.seventh_char_problem(c)
        if problem:
            edits.append(edit("DX_7TH_CHARACTER", "blocking", f"EHR diagnosis {shown}: {problem}"))
        elif icd10cm.is_valid(c):
            edits.append(
                edit(
                    "DX_NOT_BILLABLE",
                    "blocking",
                    f"EHR diagnosis {shown} is not billable and the note does not say which code applies",
                )
            )
        else:
            edits.append(
                edit(
                    "DX_INVALID",
                    "blocking",
                    f"EHR diagnosis {shown} is not an ICD-10-CM {checked.release} code",
                )
            )
    return out, edits


def _norm(note: str, s) -> list[str]:
    return norm_tokens(note[s.start : s.end]) if s.section not in ("pmh", "family", "ros") else []


# SNOMED CT semantic tags ("Acute bronchitis (disorder)") say what kind of concept it is
_SEMANTIC_TAG = re.compile(r"\s*\([a-z /]+\)\s*$")
_SYSTEM_NAMES = {"snomed": "SNOMED CT", "icd9cm": "ICD-9-CM", "unknown": "an unrecognised system"}
_EVIDENCE_CONF = 0.7  # a code found only in an EHR condition's text: a coder confirms it


def _ehr_evidence(
    enc: Encounter, found: list[dxm.Dx], age: int, has_note: bool, index: Searcher | None
) -> tuple[list[dxm.Dx], list[CodingEdit]]:
    """EHR diagnoses coded in SNOMED CT, ICD-9-CM or an unrecognised system are evidence,
    not codes: their display text is read like a note's assessment. An ICD-10-CM code
    found there that the note does not already support (same category) is suggested for
    a coder to confirm (low confidence; with a note, an EHR_CONDITION_UNSUPPORTED
    warning). Their own codes never reach the claim, and no message quotes their text."""
    out = list(found)
    edits: list[CodingEdit] = []
    seen: set[str] = set()
    for s in enc.diagnoses:
        if s.system not in _SYSTEM_NAMES:
            continue
        text = _SEMANTIC_TAG.sub("", s.display or (s.code if s.system == "unknown" else "")).strip()
        if not text or text.lower() in seen:
            continue
        seen.add(text.lower())
        read = dxm.find(f"Assessment:\n{text}.", age, index=index)
        new = rules.order(rules.combine(rules.absorb(read.found)))
        # symptoms a diagnosis already found explains (cough, bronchitis) are not added
        kept = {id(d) for d in rules.absorb([*out, *new])}
        for d in new:
            if id(d) not in kept or any(o.code == d.code or o.code[:3] == d.code[:3] for o in out):
                continue
            out.append(
                dxm.Dx(d.code, min(d.conf, _EVIDENCE_CONF), source="ehr", rank=(6, len(out)))
            )
            if has_note:
                edits.append(
                    edit(
                        "EHR_CONDITION_UNSUPPORTED",
                        "warning",
                        f"an EHR condition coded in {_SYSTEM_NAMES[s.system]} suggests"
                        f" {icd10cm.with_dot(d.code)}, which the note does not document",
                    )
                )
    return out, edits


def _reconcile_px(enc: Encounter, pxs: list[Px], has_note: bool):
    out = list(pxs)
    edits: list[CodingEdit] = []
    have = {p.code for p in out}
    for s in enc.procedures:
        code = s.code.strip().upper()
        system = cpt.system_of(code)
        if s.system not in ("cpt", "hcpcs", "unknown"):
            continue
        if system is None:
            if s.system == "unknown":
                continue  # a procedure's text or a local code: the coder sees it, it bills nothing
            edits.append(
                edit(
                    "PX_INVALID",
                    "blocking",
                    f"EHR procedure {code!r} is not a CPT or HCPCS Level II code",
                )
            )
            continue
        if code in have or cpt.is_em(code):
            continue  # E/M codes are compared with the documented level in _evaluation
        have.add(code)
        out.append(Px(code, system=system, conf=0.85 if not has_note else 0.82, source="ehr"))
    return out, edits


# ----------------------------------------------------------------------------- E/M


def _evaluation(enc, note, findings, ordered, pxs, age, history_new_patient):
    """E/M line(s), edits, basis and MDM explanation."""
    edits: list[CodingEdit] = []
    supplied = [s.code.strip().upper() for s in enc.procedures if cpt.is_em(s.code.strip().upper())]
    if enc.encounter_class not in ("AMB", "EMER", "VR", "IMP", "OBSENC"):
        if supplied:
            edits.append(
                edit(
                    "EM_NOT_CHECKED",
                    "info",
                    f"E/M level not checked for encounter class {enc.encounter_class}",
                )
            )
            return [Px(c, conf=0.8, source="ehr") for c in supplied[:1]], edits, None, None
        return [], edits, None, None
    if not note.strip():
        if supplied:
            edits.append(
                edit("EM_NO_BASIS", "blocking", "E/M without documentation of time or MDM")
            )
            return [Px(supplied[0], conf=0.5, source="ehr")], edits, None, None
        return [], edits, None, None
    if (
        em.procedure_only(note) or (ordered and all(d.code == "Z23" for d in ordered))
    ) and not supplied:
        return [], edits, None, None  # nurse/procedure-only or immunization-only visit
    ed = enc.encounter_class == "EMER"
    new, new_conf = _new_patient(enc, note, history_new_patient)
    dx_codes = [d.code for d in ordered]
    minor = [p for p in pxs if cpt.category(p.code) in ("minor", "admin", "treatment")]
    # procedures with a global surgical period include the decision to do them
    surgical = [p for p in minor if cpt.category(p.code) == "minor"]
    tests = {cpt.category(p.code) for p in pxs}
    level, mdm = em.mdm_level(
        note,
        dx_codes,
        findings.ctx,
        uncertain=bool(findings.uncertain),
        ed=ed,
        billed_tests={t for t in tests if t},
        age=age,
        risk_floor=3 if any(p.rule == "drug" for p in pxs) else 2 if minor else 1,
        narrative=lambda: " ".join(
            note[s.start : s.end]
            for s in findings.sents
            if s.section in ("assessment", "mdm", "hpi", "cc", "other")
        ),
        unread=[note[a:b] for a, b in findings.unmatched],
        billed_codes={p.code for p in pxs},
    )
    start = end = None
    preventive = any(c.startswith(("Z000", "Z001")) for c in dx_codes)
    if preventive and not ed:
        if _AWV.search(note) and _is_medicare(enc) and age >= 65:
            code, basis, conf = (
                ("G0438" if re.search(r"\binitial\b", note, re.I) else "G0439"),
                "preventive",
                0.88,
            )
        else:
            code, basis, conf = em.preventive_code(age, new), "preventive", 0.9 * new_conf
        lines = [Px(code, system=cpt.system_of(code) or "cpt", conf=conf, rule="em")]
        if [p for p in minor if p.rule not in _ADMIN_OR_SCREEN]:
            lines[0].modifiers.append("25")
        return lines, edits, basis, None
    stated = em.stated_mdm(note)
    if stated is not None:
        level, mdm = stated, f"documented MDM: {em.LEVEL_NAMES[stated]}"
    if enc.encounter_class in ("IMP", "OBSENC"):
        # initial hospital/observation care by MDM; inpatient coding always goes to a coder
        edits.append(
            edit(
                "HOSPITAL_REVIEW",
                "warning",
                "hospital encounter: E/M and diagnoses need coder review",
            )
        )
        code = em.HOSPITAL_INITIAL[level]
        return [Px(code, conf=0.7, rule="em")], edits, "mdm", mdm
    time = None if ed else em.documented_time(note, enc)
    code, extra, basis = None, 0, None
    if time:
        code, extra = em.by_time(time[0], new)
        if code:
            basis, conf, start, end = "time", 0.95 * new_conf, time[1], time[2]
    has_mdm = findings.has_assessment or (bool(ordered) and _PLAN.search(note) is not None)
    if code is None and has_mdm:
        code = em.MDM_ED[level] if ed else em.MDM_OFFICE["new" if new else "established"][level]
        basis, conf = "mdm", (0.88 if ed else 0.86) * new_conf
        if not any(d.source != "ehr" for d in ordered) and not findings.has_assessment:
            conf = 0.6  # terse note: the problems come from the EHR codes only
        first = next((s for s in findings.sents if s.section == "assessment"), None)
        if first:
            start, end = first.start, first.end
    if code is None:
        if supplied or not pxs:
            edits.append(
                edit("EM_NO_BASIS", "blocking", "E/M without documentation of time or MDM")
            )
        return ([Px(supplied[0], conf=0.5, source="ehr")] if supplied else []), edits, None, mdm
    # a minor procedure includes the decision to do it: bill the E/M only when
    # separately identifiable work is documented (modifier 25)
    if surgical and not ed:
        linked = {d for p in surgical for d in dx_codes if p.dx and d.startswith(p.dx)}
        others = [
            d for d in dx_codes if d not in linked and d != "Z23" and not d.startswith(rules.STATUS)
        ]
        tested = bool(tests & {"lab", "imaging", "ecg"})
        separate = bool(others) or tested or bool(_SEPARATE.search(note)) or basis == "time"
        if not separate:
            edits.append(
                edit(
                    "EM_NOT_SEPARATE",
                    "info",
                    "no E/M billed: the visit is limited to the procedure",
                )
            )
            return [], edits, None, mdm
    line = Px(code, conf=conf, start=start, end=end, rule="em")
    if minor:
        line.modifiers.append("25")
    if enc.encounter_class == "VR":
        line.modifiers.append("95")
    lines = [line]
    if extra:
        lines.append(Px("99417", units=Decimal(extra), conf=conf, start=start, end=end, rule="em"))
    if supplied and supplied[0] != code:
        edits.append(
            edit(
                "EM_LEVEL_DIFFERS",
                "warning",
                f"EHR E/M {supplied[0]} differs from the documented level {code} ({basis})",
            )
        )
    return lines, edits, basis, mdm


def _new_patient(enc: Encounter, note: str, history_new_patient: bool | None) -> tuple[bool, float]:
    if enc.encounter_class in ("EMER", "IMP", "OBSENC"):
        return enc.visit_type == "new", 1.0  # ED and hospital codes do not depend on it
    if enc.visit_type is not None:
        return enc.visit_type == "new", 1.0
    if history_new_patient is not None:
        return history_new_patient, 1.0
    if _NEW_PATIENT.search(note):
        return True, 0.95
    return False, 0.9


# ----------------------------------------------------------------------------- pointers


def _side_of(code: str) -> str | None:
    """RT/LT/50 from the laterality in a diagnosis title."""
    words = sp.desc_tokens(code)
    if "bilateral" in words:
        return "50"
    return "RT" if "right" in words else "LT" if "left" in words else None


def _pointers(p: Px, dx: list[str]) -> list[int]:
    """1-based indexes of the diagnoses supporting a line (max 4); E/M: the first four."""
    if not dx:
        return []
    if p.rule == "em" or cpt.is_em(p.code):
        return list(range(1, min(4, len(dx)) + 1))
    hits = [i for i, c in enumerate(dx, start=1) if p.dx and c.startswith(p.dx)]
    if p.parts and len(hits) > 1:
        by_part = [i for i in hits if sp.desc_tokens(dx[i - 1]) & p.parts]
        hits = by_part or hits
    return hits[:4] or [1]


# ----------------------------------------------------------------------------- coder's final codes


def validate_final_codes(
    enc: Encounter, diagnoses: list[str], procedures: list[dict]
) -> list[CodingEdit]:
    """The same edits for codes a coder finalises (diagnosis codes in order;
    procedures as dicts with code, modifiers, units, diagnosis_pointers)."""
    birth = enc.patient.birth_date
    age = age_on(birth, enc.service_date) if birth is not None else None
    lines = [as_line(p) for p in procedures]
    out = diagnosis_edits(list(diagnoses), age, enc.patient.gender, enc.service_date)
    if age is None:  # the coder's codes stand; the age edits could not be run
        out.append(_age_unknown_edit("warning"))
    out.extend(procedure_edits(lines, len(diagnoses)))
    note = enc.note or ""
    if not note.strip():
        out.append(
            edit(
                "NO_DOCUMENTATION",
                "blocking",
                "encounter has no clinical note; codes cannot be verified",
            )
        )
    elif any(
        cpt.is_em(p.code) and not (cpt.category(p.code) or "").startswith("em-preventive")
        for p in lines
    ):
        # only whether the note has an assessment matters here (as dxm.find decides it)
        has_assessment = any(s.section == "assessment" for s in sentences(note))
        has_time = em.documented_time(note, enc) is not None and enc.encounter_class != "EMER"
        if not has_time and not has_assessment and not _PLAN.search(note):
            out.append(edit("EM_NO_BASIS", "blocking", "E/M without documentation of time or MDM"))
    return _dedupe(out)


# Every module of the engine has made its Gates by now: keep what their patterns allow for the
# next process (see prefilter.facts).
keep_facts()
