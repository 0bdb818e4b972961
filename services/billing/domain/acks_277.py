"""277CA (005010X214) reader: claim-level acknowledgement per patient control number.

Hierarchy: HL 20 information source (payer) > 21 information receiver (submitter) >
19 billing provider > PT patient/claim. A rejection reported at the receiver or provider
level applies to every claim beneath it, so it is copied onto those claims' statuses.
A rejection at the payer, receiver or provider level with no claim beneath it (a payer that
refuses a whole batch lists no claims) is a ``BatchAck``: it names the 837 it answers by the
receiver loop's TRN*2 (our BHT03) and, at the provider level, the provider's NM109.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from shared.x12 import X12Error, check_envelope, shown, split_segments

from . import ack_codes

_LEVEL_NAMES = {"20": "payer", "21": "receiver", "19": "provider", "PT": "claim"}
VERSION = "005010X214"
_VERSION_SHAPE = re.compile(r"\d{6}X\d{3}[A-Z0-9]{0,2}")


@dataclass(frozen=True, slots=True)
class StatusDetail:
    category: str  # STC01-1, e.g. A2
    code: str | None  # STC01-2, e.g. 20
    entity: str | None  # STC01-3, e.g. 85
    level: str = "claim"  # "claim", or "provider"/"receiver" when inherited from above

    @property
    def message(self) -> str:
        return ack_codes.describe_277_status(self.category, self.code, self.entity)


@dataclass(frozen=True)
class ClaimAck:
    claim_id: str  # TRN02 at the patient level = our CLM01
    status_category: str | None
    statuses: list[StatusDetail]
    payer_claim_control_number: str | None = None  # REF*1K
    clearinghouse_trace: str | None = None  # REF*D9
    total_charge: Decimal | None = None  # STC04
    action_code: str | None = None  # STC03: WQ accepted, U rejected

    @property
    def status_codes(self) -> list[str]:
        return [s.code for s in self.statuses if s.code]

    @property
    def rejected(self) -> bool:
        return any(s.category in ack_codes.REJECTED_CATEGORIES for s in self.statuses)

    @property
    def accepted(self) -> bool:
        return not self.rejected and self.status_category in ack_codes.ACCEPTED_CATEGORIES

    @property
    def message(self) -> str:
        return "; ".join(s.message for s in self.statuses) or "no status"


@dataclass(frozen=True)
class BatchAck:
    """A rejection at the payer, receiver or provider level with no claim (HL PT) beneath it:
    every claim of the 837 transaction it answers (of that billing provider, at level 19)."""

    level: str  # "payer", "receiver" or "provider"
    batch_reference: str | None  # TRN02 of the receiver loop (2200B): the 837's BHT03
    provider_id: str | None  # NM109 of the billing provider loop (2100C), at level 19
    statuses: list[StatusDetail]  # the rejecting ones, this level's and those above it

    @property
    def message(self) -> str:
        return "; ".join(s.message for s in self.statuses)


@dataclass(frozen=True)
class Ack277CA:
    claims: list[ClaimAck]
    batches: list[BatchAck] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # what the tokenizer repaired


@dataclass
class _Hl:
    level: str
    parent: str
    statuses: list[StatusDetail] = field(default_factory=list)
    reference: str | None = None  # TRN*2 of a receiver loop
    provider_id: str | None = None  # NM1*85 NM109 of a provider loop
    claims: bool = False  # a patient loop sits beneath it
    children: list[str] = field(default_factory=list)


def parse_277ca(text: str) -> list[ClaimAck]:
    """The claim-level acknowledgements of a 277CA file (see ``parse_277ca_file``)."""
    return parse_277ca_file(text).claims


def parse_277ca_file(text: str) -> Ack277CA:
    """Claim and batch acknowledgements of a 277CA file, with what the tokenizer repaired.

    Raises ``X12Error`` if malformed, if GS08 or ST03 is not 005010X214 (a 277 claim status
    response is not a 277CA), or if its envelope is cut short or miscounted (refused whole).
    """
    warnings: list[str] = []
    segments, seps = split_segments(text, warnings=warnings)
    claims, batches = _parse_277ca(segments, seps.component)
    check_envelope(segments)
    return Ack277CA(claims, batches, warnings)


def _version_problem(value: str, element: str) -> str:
    said = value if _VERSION_SHAPE.fullmatch(value) else shown(value, quote=False)
    return (
        f"{element} is {said}, not {VERSION}: not a 277CA claim acknowledgement"
        " (a 277 claim status response is 005010X212)"
    )


def _parse_277ca(  # noqa: C901 - one pass over the segments
    segments: list[list[str]], comp: str
) -> tuple[list[ClaimAck], list[BatchAck]]:
    """Claim-level statuses and batch-level rejections. Raises X12Error if malformed."""
    hls: dict[str, _Hl] = {}
    claims: list[ClaimAck] = []
    current: _Hl | None = None
    claim: dict | None = None
    seen_st = False

    def finish() -> None:
        nonlocal claim
        if claim is None:
            return
        if not claim["claim_id"]:
            raise X12Error("patient loop has no TRN*2 patient control number", claim["at"], "HL")
        if not claim["statuses"]:
            raise X12Error("patient loop has no STC claim status", claim["at"], "HL")
        statuses = claim["statuses"] + _inherited(hls, claim["parent"])
        rejecting = [s for s in statuses if s.category in ack_codes.REJECTED_CATEGORIES]
        claims.append(
            ClaimAck(
                claim_id=claim["claim_id"],
                status_category=(rejecting or statuses)[0].category,
                statuses=statuses,
                payer_claim_control_number=claim.get("1K"),
                clearinghouse_trace=claim.get("D9"),
                total_charge=claim.get("charge"),
                action_code=claim.get("action"),
            )
        )
        claim = None

    for n, seg in enumerate(segments, start=1):
        sid = seg[0]
        el = seg + [""] * (10 - len(seg)) if len(seg) < 10 else seg
        if sid == "GS":
            if not el[8].startswith(VERSION):
                raise X12Error(_version_problem(el[8], "GS08"), n, sid)
        elif sid == "ST":
            if el[1] != "277":
                raise X12Error(f"expected a 277 transaction, found ST01 {shown(el[1])}", n, sid)
            if el[3] and not el[3].startswith(VERSION):
                raise X12Error(_version_problem(el[3], "ST03"), n, sid)
            seen_st = True
        elif sid == "HL":
            finish()
            if not el[1] or not el[3]:
                raise X12Error("HL01 id and HL03 level code are required", n, sid)
            current = hls[el[1]] = _Hl(el[3], el[2])
            if el[2] in hls:
                hls[el[2]].children.append(el[1])
            if el[3] == "PT":
                _mark_claims(hls, el[2])
                claim = {"at": n, "parent": el[2], "claim_id": "", "statuses": [], "line": False}
        elif sid == "TRN" and el[1] == "2":
            if claim is not None:
                claim["claim_id"] = el[2]
            elif current is not None and current.level == "21":
                current.reference = el[2] or None
        elif sid == "NM1" and claim is None and current is not None and current.level == "19":
            current.provider_id = el[9] or None
        elif sid == "STC":
            statuses = _stc(seg, comp, n)
            if claim is not None:
                if claim["line"]:
                    continue  # service-line status (after SVC): not the claim's
                claim["statuses"].extend(statuses)
                claim.setdefault("action", el[3] or None)
                if el[4]:
                    try:
                        claim.setdefault("charge", Decimal(el[4]))
                    except InvalidOperation:
                        raise X12Error("STC04 amount is not a number", n, sid) from None
            elif current is not None:
                current.statuses.extend(statuses)
        elif sid == "REF" and claim is not None and not claim["line"] and el[1] in ("1K", "D9"):
            claim[el[1]] = el[2] or None
        elif sid == "SVC" and claim is not None:
            claim["line"] = True
        elif sid == "SE":
            finish()
            current = None
    finish()
    if not seen_st:
        raise X12Error("no ST segment: not a 277 transaction", None, None)
    return claims, _batches(hls)


def _mark_claims(hls: dict[str, _Hl], parent: str) -> None:
    seen = set()
    while parent in hls and parent not in seen:
        seen.add(parent)
        hls[parent].claims = True
        parent = hls[parent].parent


def _batches(hls: dict[str, _Hl]) -> list[BatchAck]:
    """Rejecting payer/receiver/provider loops with no patient loop beneath them."""
    out = []
    for hl_id, hl in hls.items():
        if hl.claims or hl.level not in ("20", "21", "19"):
            continue
        own = [
            StatusDetail(s.category, s.code, s.entity, _LEVEL_NAMES[hl.level])
            for s in hl.statuses
            if s.category in ack_codes.REJECTED_CATEGORIES
        ]
        if not own:
            continue
        statuses = own + _inherited(hls, hl.parent)
        provider = hl.provider_id if hl.level == "19" else None
        for reference in _references(hls, hl_id):
            out.append(BatchAck(_LEVEL_NAMES[hl.level], reference, provider, statuses))
    return out


def _references(hls: dict[str, _Hl], hl_id: str) -> list[str | None]:
    """The 837 batch references (receiver TRN*2) a loop answers: its own or its receiver
    ancestor's; for a payer loop, those of the receiver loops beneath it (None: unnamed)."""
    hl = hls[hl_id]
    if hl.level == "20":
        refs = [hls[c].reference for c in hl.children if c in hls and hls[c].level == "21"]
        return refs or [None]
    seen = set()
    while hl.level != "21" and hl.parent in hls and hl.parent not in seen:
        seen.add(hl.parent)
        hl = hls[hl.parent]
    return [hl.reference if hl.level == "21" else None]


def _stc(seg: list[str], comp: str, n: int) -> list[StatusDetail]:
    """STC01, STC10 and STC11 composites (category:code:entity)."""
    out = []
    for i in (1, 10, 11):
        if len(seg) <= i or not seg[i]:
            if i == 1:
                raise X12Error("STC01 claim status is required", n, "STC")
            continue
        parts = seg[i].split(comp) + ["", ""]
        if not parts[0]:
            raise X12Error(f"STC{i:02d}-1 status category is required", n, "STC")
        out.append(StatusDetail(parts[0], parts[1] or None, parts[2] or None))
    return out


def _inherited(hls: dict[str, _Hl], parent: str) -> list[StatusDetail]:
    """Rejections reported on the claim's provider/receiver HLs, re-labelled with their level."""
    out: list[StatusDetail] = []
    seen = set()
    while parent and parent in hls and parent not in seen:
        seen.add(parent)
        hl = hls[parent]
        for s in hl.statuses:
            if s.category in ack_codes.REJECTED_CATEGORIES:
                out.append(
                    StatusDetail(s.category, s.code, s.entity, _LEVEL_NAMES.get(hl.level, hl.level))
                )
        parent = hl.parent
    return out
