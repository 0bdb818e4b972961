"""Coverages in coordination-of-benefits order: the patient's Coverage resources in force on
the date of service, else the insurance the encounter's own Claim/EOB names. Self-pay is
recognised and never becomes a payer; the registry supplies payer ids and filing indicators."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from services.intake.domain.context import Ctx
from services.intake.domain.parties import person
from services.intake.domain.references import Res
from services.intake.domain.systems import (
    ACT_CODE_SYSTEM,
    FILING_INDICATOR_URL,
    PAYER_SYSTEM,
    SELF_PAY_SYSTEM,
    X12_FILING_INDICATORS,
)
from shared.events import Coverage

# FHIR subscriber-relationship codes, and the X12 codes, onto the model's four values.
_RELATIONSHIP = {
    "self": "self",
    "spouse": "spouse",
    "common": "spouse",
    "child": "child",
    "parent": "other",
    "other": "other",
    "injured": "other",
    "18": "self",
    "01": "spouse",
    "19": "child",
    "G8": "other",
}
# Source of Payment Typology (PHDSC) prefixes and v3 ActCode coverage types.
_SOPT_SYSTEMS = ("https://nahdo.org/sopt", "urn:oid:2.16.840.1.113883.3.221.5")
_SOPT = (
    ("311", "CH"),
    ("32", "VA"),
    ("11", "16"),
    ("1", "MB"),
    ("2", "MC"),
    ("511", "HM"),
    ("5", "CI"),
    ("6", "BL"),
    ("95", "WC"),
)
_ACT_COVERAGE = {"HMO": "HM", "MCPOL": "HM", "EHCPOL": "CI", "HIP": "CI", "WCBPOL": "WC"}
_FILING_WORDS = (
    ("medicare part a", "MA"),
    ("medicare advantage", "16"),
    ("medicare", "MB"),
    ("medicaid", "MC"),
    ("tricare", "CH"),
    ("champus", "CH"),
    ("veteran", "VA"),
    ("workers", "WC"),
    ("blue cross", "BL"),
    ("blue shield", "BL"),
    ("bcbs", "BL"),
    ("hmo", "HM"),
    ("commercial", "CI"),
    ("private", "CI"),
)
_SELF_PAY = re.compile(r"(?i)\b(self[\s_-]?pay|no[\s_-]?insurance|uninsured|self[\s_-]?insured)\b")
_SEQUENCES = {1: "primary", 2: "secondary", 3: "tertiary"}


@dataclass
class Found:
    """Coverages read for one encounter, and what the primary's billing lacks."""

    coverages: list[Coverage]
    self_pay: bool = False
    primary_payer_id_unknown: bool = False
    primary_subscriber_unknown: bool = False


@dataclass
class _Read:
    order: int | None
    path: str
    values: dict
    payer_id_known: bool
    subscriber_unknown: bool


def coverages(
    ctx: Ctx, patient_res: Res | None, patient_key: str | None, day: date, group: list[Res]
) -> Found:
    """Coverages of the patient on ``day``; see the module docstring."""
    found: list[_Read] = []
    self_pay = False
    for cov in ctx.index.of_type("Coverage"):
        if not _patients_coverage(ctx, cov, patient_res, patient_key) or not _in_force(
            ctx, cov, day
        ):
            continue
        got = _coverage(ctx, cov, _order(ctx, cov))
        self_pay |= got == "self-pay"
        if isinstance(got, _Read):
            found.append(got)
    if not found and not self_pay:
        for cov_res, display, order in _claim_insurance(ctx, group):
            got = _coverage(ctx, cov_res, order) if cov_res else _display_only(ctx, display, order)
            self_pay |= got == "self-pay"
            if isinstance(got, _Read):
                found.append(got)
    unique: dict[tuple[str, str | None], _Read] = {}
    for r in found:  # a Claim and its EOB name the same insurance
        payer = r.values["payer_id"] or r.values["payer_name"]  # by name when it has no id
        unique.setdefault((payer, r.values["member_id"]), r)
    ordered = _sequence(ctx, list(unique.values()))
    out = []
    primary_id_unknown = primary_sub_unknown = False
    for seq, r in ordered:
        if seq == 1:
            primary_id_unknown = not r.payer_id_known
            primary_sub_unknown = r.subscriber_unknown
        out.append(Coverage(**r.values, sequence=_SEQUENCES[seq]))
    return Found(out, self_pay, primary_id_unknown, primary_sub_unknown)


def _patients_coverage(
    ctx: Ctx, cov: Res, patient_res: Res | None, patient_key: str | None
) -> bool:
    ben = cov.data.get("beneficiary")
    if ben is None:
        return True
    ref = ctx.index.resolve(ben, f"{cov.path}.beneficiary", cov, ("Patient",), _Quiet())
    if ref.res is not None:
        return ref.res is patient_res
    target = ben.get("reference") if isinstance(ben, dict) else None
    return patient_res is None and target is not None and target == patient_key


class _Quiet:
    """A sink for reads whose failure another read reports (beneficiary matching)."""

    def add(self, path: str, message: str) -> None:
        del path, message


def _in_force(ctx: Ctx, cov: Res, day: date) -> bool:
    if cov.data.get("status") in ("cancelled", "entered-in-error", "draft"):
        return False
    period = ctx.read.obj(cov.data, "period", cov.path) or {}
    start = ctx.read.date_(period, "start", f"{cov.path}.period")
    end = ctx.read.date_(period, "end", f"{cov.path}.period")
    return (start is None or start <= day) and (end is None or day <= end)


def _order(ctx: Ctx, cov: Res) -> int | None:
    order = cov.data.get("order")
    if order is not None and (type(order) is not int or order not in (1, 2, 3)):
        ctx.warn(f"{cov.path}.order", "expected 1 (primary), 2 (secondary) or 3 (tertiary)")
        return None
    return order


def _claim_insurance(ctx: Ctx, group: list[Res]) -> list[tuple[Res | None, str | None, int | None]]:
    """Insurance named by the encounter's Claims and EOBs: focal first, then by sequence."""
    out: list[tuple[bool, int, Res | None, str | None]] = []
    seen: set[str] = set()
    for claim in group:
        if claim.type not in ("Claim", "ExplanationOfBenefit"):
            continue
        for ip, ins in ctx.read.objs(claim.data, "insurance", claim.path):
            ref = ctx.resolve(ins.get("coverage"), f"{ip}.coverage", claim, "Coverage")
            key = ref.res.path if ref.res else (ref.display or "")
            if not key or key in seen:
                continue
            seen.add(key)
            seq = ins.get("sequence") if type(ins.get("sequence")) is int else 99
            out.append((ins.get("focal") is not True, seq, ref.res, ref.display))
    out.sort(key=lambda t: (t[0], t[1]))
    return [(res, display, None) for _, _, res, display in out]


def _display_only(ctx: Ctx, name: str | None, order: int | None) -> _Read | str | None:
    if not name:
        return None
    if _SELF_PAY.search(name):
        return "self-pay"
    payer = _payer(ctx, None, name, None)
    if payer is None:
        return "self-pay"
    payer_id, payer_name, filing, known = payer
    values = dict(
        payer_id=payer_id,
        payer_name=payer_name,
        member_id=None,
        relationship="self",
        filing_indicator=filing or _filing_from_concept([], name) or "CI",
    )
    return _Read(order, "", values, known, False)


def _payer(ctx: Ctx, org: dict | None, name: str | None, ident: str | None):
    """(payer id, payer name, registry filing indicator, id known) from what the input says
    and the registry; None when the registry calls the payer self-pay."""
    aliases = [a for a in (org or {}).get("alias") or [] if isinstance(a, str)]
    known = None
    if ctx.registry is not None:
        reg = ctx.registry
        known = (ident and reg.payer(ident)) or next(
            (p for n in [name, *aliases] if n and (p := reg.payer_by_name(n))), None
        )
    if known is not None and known.self_pay:
        return None
    payer_id = ident or (known.payer_id if known else None)
    payer_name = name or (known.name if known else None) or payer_id
    filing = known.filing_indicator if known else None
    if payer_id is None and payer_name:
        return "", payer_name, filing, False  # no id: billing holds the claim for a biller's
    return payer_id, payer_name, filing, payer_id is not None


def _coverage(ctx: Ctx, cov_res: Res, order: int | None) -> _Read | str | None:
    read, cp, cov = ctx.read, cov_res.path, cov_res.data
    type_cc = read.obj(cov, "type", cp)
    codings, type_text = read.concept(type_cc, f"{cp}.type") if type_cc else ([], None)
    plans = [read.str_(k, "value", kp) or "" for kp, k in read.objs(cov, "class", cp)]
    if any(s == SELF_PAY_SYSTEM or c == "pay" for s, c, _ in codings) or any(
        _SELF_PAY.search(t) for t in [type_text or "", *plans]
    ):
        read.warn(cp, "self-pay coverage: the patient pays; not a payer")
        return "self-pay"
    payors = read.objs(cov, "payor", cp)
    org = name = ident = None
    org_path = cp
    for pp, payor in payors:
        ref = ctx.resolve(payor, pp, cov_res, "Organization", "Patient", "RelatedPerson")
        if ref.type in ("Patient", "RelatedPerson"):
            read.warn(cp, "self-pay coverage: the patient pays; not a payer")
            return "self-pay"
        if ref.res is not None:
            org, org_path = ref.res.data, ref.res.path
            name = read.str_(org, "name", ref.res.path)
            ident = read.ident(org, ref.res.path, PAYER_SYSTEM)
        name = name or ref.display
        if ref.identifier and ref.identifier[0] == PAYER_SYSTEM:
            ident = ident or ref.identifier[1]
        break
    if not payors:
        read.warn(f"{cp}.payor", "required: a reference to the payer Organization")
    if name and _SELF_PAY.search(name):
        read.warn(cp, "self-pay coverage: the patient pays; not a payer")
        return "self-pay"
    payer = _payer(ctx, org, name, ident)
    if payer is None:
        read.warn(cp, "self-pay coverage: the patient pays; not a payer")
        return "self-pay"
    payer_id, payer_name, reg_filing, known = payer
    if payer_id is None:
        read.warn(cp, "no payer: the payor has neither an identifier nor a name")
        return None
    member_id = read.str_(cov, "subscriberId", cp) or _member_identifier(ctx, cov_res)
    group = None
    for kp, klass in read.objs(cov, "class", cp):
        if "group" in [c for _, c, _ in read.concept(klass.get("type") or {}, f"{kp}.type")[0]]:
            group = read.str_(klass, "value", kp)
    relationship = _relationship(ctx, cov, cp)
    subscriber, subscriber_unknown = None, False
    if relationship != "self":
        ref = ctx.resolve(
            cov.get("subscriber"), f"{cp}.subscriber", cov_res, "Patient", "RelatedPerson"
        )
        subscriber = person(ctx, ref.res) if ref.res is not None else None
        subscriber_unknown = subscriber is None
    values = dict(
        payer_id=payer_id,
        payer_name=payer_name,
        member_id=member_id,
        group_number=group,
        relationship=relationship,
        subscriber=subscriber,
        filing_indicator=_filing(
            ctx, cov_res, (org, org_path), codings, type_text, reg_filing, payer_name
        ),
    )
    return _Read(order, cp, values, known, subscriber_unknown)


def _member_identifier(ctx: Ctx, cov_res: Res) -> str | None:
    for ip, ident in ctx.read.objs(cov_res.data, "identifier", cov_res.path):
        codes = [c for _, c, _ in ctx.read.concept(ident.get("type") or {}, f"{ip}.type")[0]]
        if "MB" in codes:
            return ctx.read.str_(ident, "value", ip)
    return None


def _relationship(ctx: Ctx, cov: dict, cp: str) -> str:
    cc = ctx.read.obj(cov, "relationship", cp)
    if cc is None:
        return "self"
    codings, text = ctx.read.concept(cc, f"{cp}.relationship")
    for value in [c for _, c, _ in codings] + [(text or "").lower()]:
        if value in _RELATIONSHIP:
            return _RELATIONSHIP[value]
    ctx.warn(
        f"{cp}.relationship",
        "expected a subscriber-relationship code (self, spouse, child, parent, common, other, "
        "injured): self assumed",
    )
    return "self"


def _filing(ctx, cov_res, payer_org, codings, type_text, reg_filing, payer_name) -> str:
    """Claim filing indicator (SBR09): extension, Coverage.type, registry, payer hints, words."""
    read = ctx.read
    if found := read.ext(cov_res.data, FILING_INDICATOR_URL, cov_res.path):
        if found[1] in X12_FILING_INDICATORS:
            return found[1]
        read.warn(found[0], "expected an X12 claim filing indicator code (e.g. MB, MC, CI)")
    if hit := _filing_from_concept(codings, type_text):
        return hit
    if reg_filing:
        return reg_filing
    org, op = payer_org
    if org is not None:
        if (found := read.ext(org, FILING_INDICATOR_URL, op)) and found[1] in X12_FILING_INDICATORS:
            return found[1]
        hint = read.ident(org, op, FILING_INDICATOR_URL)
        if hint in X12_FILING_INDICATORS:
            return hint
    return _filing_from_concept([], payer_name) or "CI"


def _filing_from_concept(codings: list[tuple], text: str | None) -> str | None:
    for system, code, _ in codings:
        if not code:
            continue
        if system == FILING_INDICATOR_URL or (system and "x12" in system.lower()):
            if code in X12_FILING_INDICATORS:
                return code
        if system in _SOPT_SYSTEMS and (
            hit := next((v for prefix, v in _SOPT if code.startswith(prefix)), None)
        ):
            return hit
        if system == ACT_CODE_SYSTEM and code in _ACT_COVERAGE:
            return _ACT_COVERAGE[code]
    words = " ".join(filter(None, [text, *(d for _, _, d in codings)])).lower()
    return next((v for word, v in _FILING_WORDS if word in words), None)


def _sequence(ctx: Ctx, found: list[_Read]) -> list[tuple[int, _Read]]:
    """Explicit orders first; the rest take the free places in input order; at most three.
    Places are then closed up, so a coverage left out never leaves the primary empty."""
    taken: set[int] = set()
    placed: list[tuple[int, int, _Read]] = []
    for i, r in enumerate(found):
        if r.order is not None and r.order in taken:
            ctx.warn(f"{r.path}.order", "duplicate order: each coverage needs its own")
            r.order = None
        if r.order is not None:
            taken.add(r.order)
            placed.append((r.order, i, r))
    free = (o for o in (1, 2, 3) if o not in taken)
    for i, r in enumerate(found):
        if r.order is None:
            o = next(free, None)
            if o is None:
                ctx.warn(
                    r.path or "insurance", "at most three coverages (primary, secondary, tertiary)"
                )
                continue
            placed.append((o, i, r))
    placed.sort(key=lambda t: (t[0], t[1]))
    return [(n, r) for n, (_, _, r) in enumerate(placed, 1)]
