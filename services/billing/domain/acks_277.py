"""277CA (005010X214) reader: claim-level acknowledgement per patient control number.

Hierarchy: HL 20 information source (payer) > 21 information receiver (submitter) >
19 billing provider > PT patient/claim. A rejection reported at the receiver or provider
level applies to every claim beneath it, so it is copied onto those claims' statuses.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from shared.x12 import X12Error, check_envelope, shown, split_segments

from . import ack_codes

_LEVEL_NAMES = {"20": "payer", "21": "receiver", "19": "provider", "PT": "claim"}


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


def parse_277ca(text: str) -> list[ClaimAck]:
    """See ``_parse_277ca``; a file whose envelope is cut short or miscounted is refused whole."""
    result = _parse_277ca(text)
    check_envelope(split_segments(text)[0])
    return result


def _parse_277ca(text: str) -> list[ClaimAck]:
    """Claim-level statuses from a 277CA file. Raises X12Error if malformed."""
    segments, seps = split_segments(text)
    hls: dict[str, tuple[str, str, list[StatusDetail]]] = {}  # id -> (level, parent, statuses)
    claims: list[ClaimAck] = []
    level = ""
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
        el = seg + [""] * (6 - len(seg)) if len(seg) < 6 else seg
        if sid == "ST":
            if el[1] != "277":
                raise X12Error(f"expected a 277 transaction, found ST01 {shown(el[1])}", n, sid)
            seen_st = True
        elif sid == "HL":
            finish()
            if not el[1] or not el[3]:
                raise X12Error("HL01 id and HL03 level code are required", n, sid)
            level = el[3]
            hls[el[1]] = (level, el[2], [])
            if level == "PT":
                claim = {"at": n, "parent": el[2], "claim_id": "", "statuses": [], "line": False}
        elif sid == "TRN" and claim is not None and el[1] == "2":
            claim["claim_id"] = el[2]
        elif sid == "STC":
            statuses = _stc(seg, seps.component, n)
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
            elif hls:
                hls[next(reversed(hls))][2].extend(statuses)
        elif sid == "REF" and claim is not None and not claim["line"] and el[1] in ("1K", "D9"):
            claim[el[1]] = el[2] or None
        elif sid == "SVC" and claim is not None:
            claim["line"] = True
        elif sid == "SE":
            finish()
    finish()
    if not seen_st:
        raise X12Error("no ST segment: not a 277 transaction", None, None)
    return claims


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


def _inherited(hls: dict, parent: str) -> list[StatusDetail]:
    """Rejections reported on the claim's provider/receiver HLs, re-labelled with their level."""
    out: list[StatusDetail] = []
    seen = set()
    while parent and parent in hls and parent not in seen:
        seen.add(parent)
        level, grand, statuses = hls[parent]
        for s in statuses:
            if s.category in ack_codes.REJECTED_CATEGORIES:
                out.append(
                    StatusDetail(s.category, s.code, s.entity, _LEVEL_NAMES.get(level, level))
                )
        parent = grand
    return out
