"""What the encounter documents: its note, the diagnoses and procedures the EHR coded."""

from __future__ import annotations

from datetime import date

from services.intake.domain.bundles import day_of, encounter_refs, stamp_of
from services.intake.domain.context import Ctx
from services.intake.domain.notes import Unreadable, decode_payload, narrative_text
from services.intake.domain.references import Res, join
from services.intake.domain.systems import CLAIM_CODE_SYSTEMS, EVIDENCE_CODE_SYSTEMS
from shared.events import SuppliedCode

NO_DOCUMENTATION = "no readable documentation"
WHO_ICD10 = "http://hl7.org/fhir/sid/icd-10"
# Preference among the renditions of one document.
_RANK = {"text/plain": 0, "text/markdown": 0, "text/html": 1, "application/xhtml+xml": 1}


# --------------------------------------------------------------------------- codes


def codes(ctx: Ctx, r: Res) -> list[SuppliedCode]:
    """A Condition's or Procedure's codes: claim-code codings (ICD-10-CM, CPT, HCPCS, ICD-10-PCS)
    when it has any; else evidence codings (SNOMED CT, ICD-9-CM), with the ICD-10-CM targets
    of a SNOMED CT map when one is configured; else its text as a code of system ``unknown``."""
    read, p = ctx.read, r.path
    cc = read.obj(r.data, "code", p)
    if cc is None:
        return []
    codings, text = read.concept(cc, f"{p}.code")
    claim = [
        SuppliedCode(system=CLAIM_CODE_SYSTEMS[s], code=c, display=d)
        for s, c, d in codings
        if s in CLAIM_CODE_SYSTEMS and c
    ]
    if claim:
        return claim
    out = []
    for s, c, d in codings:
        if s in EVIDENCE_CODE_SYSTEMS and c:
            out.append(SuppliedCode(system=EVIDENCE_CODE_SYSTEMS[s], code=c, display=d or text))
            if ctx.snomed is not None and EVIDENCE_CODE_SYSTEMS[s] == "snomed":
                out.extend(
                    SuppliedCode(system="icd10cm", code=target, display=name or d or text)
                    for target, name in ctx.snomed.icd10cm(c)
                )
        elif s == WHO_ICD10 and c:
            out.append(SuppliedCode(system="unknown", code=c, display=d or text))
    if out:
        return out
    label = text or next((d for _, _, d in codings if d), None)
    return [SuppliedCode(system="unknown", code=label)] if label else []


def _unique(items: list[SuppliedCode]) -> list[SuppliedCode]:
    seen, out = set(), []
    for c in items:
        if (c.system, c.code) not in seen:
            seen.add((c.system, c.code))
            out.append(c)
    return out


def diagnoses(ctx: Ctx, enc: Res, group: list[Res]) -> list[SuppliedCode]:
    """``Encounter.diagnosis`` by rank, then the encounter's other Conditions (not refuted or
    entered in error; problem-list items only when they name this encounter)."""
    read, ep = ctx.read, enc.path
    ranked = []
    for i, (dp, diag) in enumerate(read.objs(enc.data, "diagnosis", ep)):
        cond = diag.get("condition")
        if isinstance(cond, list) and cond:
            cond = cond[0]  # R5: a list of CodeableReferences
        if isinstance(cond, dict) and isinstance(cond.get("reference"), dict):
            cond = cond["reference"]
        ref = ctx.resolve(cond, f"{dp}.condition", enc, "Condition", "Procedure")
        rank = diag.get("rank")
        if rank is not None and (type(rank) is not int or rank < 1):
            read.warn(f"{dp}.rank", "expected a positive integer")
            rank = None
        if ref.res is not None and ref.res.type == "Condition":
            ranked.append((rank or 10**6, i, ref.res))
    order = [r for _, _, r in sorted(ranked, key=lambda t: (t[0], t[1]))]
    for r in group:
        if r.type != "Condition" or any(r is o for o in order):
            continue
        status = [
            c
            for _, c, _ in read.concept(
                read.obj(r.data, "verificationStatus", r.path) or {}, f"{r.path}.verificationStatus"
            )[0]
        ]
        if {"refuted", "entered-in-error"} & set(status):
            continue
        cats = [
            c
            for cp, cc in read.objs(r.data, "category", r.path)
            for _, c, _ in read.concept(cc, cp)[0]
        ]
        if not encounter_refs(r) and cats and set(cats) == {"problem-list-item"}:
            continue  # the standing problem list is not this visit's diagnoses
        order.append(r)
    return _unique([code for r in order for code in codes(ctx, r)])


def procedures(ctx: Ctx, group: list[Res]) -> list[SuppliedCode]:
    out = []
    for r in group:
        if r.type == "Procedure" and r.data.get("status") not in ("not-done", "entered-in-error"):
            out.extend(codes(ctx, r))
    return _unique(out)


# --------------------------------------------------------------------------- notes


def note_dates(group: list[Res]) -> list[date]:
    return sorted(
        d for r in group if r.type in ("DocumentReference", "Composition") and (d := day_of(r))
    )


def note(ctx: Ctx, enc: Res, group: list[Res]) -> str | None:
    """Every readable note of the encounter, oldest first, joined by a blank line. A note
    that cannot be read (or fetched) is a warning "no readable documentation: why"; so is an
    encounter with no readable note at all."""
    docs = [
        r
        for r in group
        if r.type in ("DocumentReference", "Composition")
        and r.data.get("status") != "entered-in-error"
        and r.data.get("docStatus") != "entered-in-error"
    ]
    docs.sort(key=lambda r: (stamp_of(r) is None, stamp_of(r) or ""))
    parts: list[str] = []
    for r in docs:
        text = _document(ctx, r) if r.type == "DocumentReference" else _composition(ctx, r)
        if text and text not in parts:
            parts.append(text)
    text = "\n\n".join(parts).strip() or None
    if text is None and not docs:
        ctx.warn(enc.path, NO_DOCUMENTATION)
    return text


def _document(ctx: Ctx, r: Res) -> str | None:
    read = ctx.read
    attachments = []
    for cp, content in read.objs(r.data, "content", r.path):
        att = read.obj(content, "attachment", cp)
        if att is not None:
            mime = (read.str_(att, "contentType", f"{cp}.attachment") or "").split(";")[0].lower()
            attachments.append((_RANK.get(mime, 2), len(attachments), f"{cp}.attachment", att))
    why = None
    for _, _, ap, att in sorted(attachments, key=lambda t: (t[0], t[1])):
        try:
            text = _attachment(ctx, r, att, ap)
        except Unreadable as e:
            why = why or (join(ap, e.field) if e.field else ap, str(e))
            continue
        if text:
            return text
    where, reason = why or (r.path, "no attachment with text")
    ctx.warn(where, f"{NO_DOCUMENTATION}: {reason}")
    return None


def _attachment(ctx: Ctx, holder: Res, att: dict, ap: str) -> str | None:
    """Text of one attachment: inline ``data``, or ``url`` naming a Binary in the input."""
    ctype = ctx.read.str_(att, "contentType", ap) or ""
    data = att.get("data")
    if data is not None:
        if not isinstance(data, str):
            raise Unreadable("expected base64-encoded data")
        return decode_payload(data, ctype)
    url = att.get("url")
    if not isinstance(url, str) or not url.strip():
        raise Unreadable("an attachment with neither data nor url")
    binary = ctx.index.lookup(url, holder)
    if binary is None:
        raise Unreadable("an attachment url outside the input (not fetched)")
    if binary.type == "Binary":
        inner = binary.data.get("data")
        if not isinstance(inner, str):
            raise Unreadable("a Binary without data")
        try:
            declared = binary.data.get("contentType")
            return decode_payload(inner, declared if isinstance(declared, str) else ctype)
        except Unreadable as e:
            raise Unreadable(f"{e} (in the Binary)") from None
    if binary.type == "DocumentReference" and binary is not holder:
        return _document(ctx, binary)
    raise Unreadable("an attachment url naming a resource that is not a Binary")


def _composition(ctx: Ctx, r: Res) -> str | None:
    chunks = _sections(ctx, r.data, r.path)
    if not chunks:
        narrative = ctx.read.obj(r.data, "text", r.path)
        div = ctx.read.str_(narrative, "div", join(r.path, "text")) if narrative else None
        chunks = [narrative_text(div)] if div else []
    text = "\n\n".join(c for c in chunks if c).strip()
    if not text:
        ctx.warn(r.path, f"{NO_DOCUMENTATION}: a Composition without section text")
    return text or None


def _sections(ctx: Ctx, holder: dict, path: str, depth: int = 0) -> list[str]:
    read = ctx.read
    out: list[str] = []
    if depth > 8:  # real documents nest a level or two; bound the recursion
        return out
    for sp, sec in read.objs(holder, "section", path):
        narrative = read.obj(sec, "text", sp)
        div = read.str_(narrative, "div", f"{sp}.text") if narrative else None
        chunk = "\n\n".join(
            filter(None, [narrative_text(div or ""), *_sections(ctx, sec, sp, depth + 1)])
        )
        title = read.str_(sec, "title", sp)
        if title and chunk and not chunk.lower().startswith(title.lower()):
            chunk = f"{title}:\n{chunk}"
        if chunk:
            out.append(chunk)
    return out
