"""Parse X12 277 claim-status responses (005010X212), tolerating the 277CA
claim acknowledgment shape (005010X214).

Only claim-level statuses are returned: a TRN at the subscriber (22), dependent
(23) or patient (PT, 277CA) level opens a claim, the STC segments that follow
(before any service line, SVC) are its statuses. Statuses of the payer, receiver
and provider levels (2200A-C) describe the batch, not a claim, and are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation

from shared.x12 import X12Error, check_envelope, components, shown, split_segments

VERSIONS = ("005010X212", "005010X214")
CLAIM_LEVELS = ("22", "23", "PT")


@dataclass(frozen=True, slots=True)
class StatusDetail:
    category: str  # e.g. A1 acknowledged, F1 finalized/paid, F2 denied, P1 pending
    code: str  # claim status code (code list 508)
    entity: str | None = None


@dataclass
class ClaimStatus:
    claim_id: str  # TRN02 of the claim level: our patient control number
    status_category: str
    status_code: str
    effective_date: date | None
    payer_claim_control_number: str | None = None
    total_charge: Decimal | None = None
    paid_amount: Decimal | None = None
    patient_control_number: str | None = None  # REF*EJ, when the payer echoes it
    action_code: str | None = None  # STC03 (277CA: WQ accepted, U rejected)
    adjudication_date: date | None = None  # STC06
    check_number: str | None = None  # STC09
    service_date: date | None = None
    details: list[StatusDetail] = field(default_factory=list)  # every STC01/10/11 of the claim
    version: str = VERSIONS[0]


def _date(value: str, n: int, where: str) -> date | None:
    """CCYYMMDD; ``where`` names the element (a date of service is PHI: never quoted)."""
    if not value:
        return None
    try:
        return date(int(value[:4]), int(value[4:6]), int(value[6:8]))
    except (ValueError, IndexError):
        raise X12Error(f"{where} is not a valid date (expected CCYYMMDD)", n, where[:3]) from None


def _amount(value: str, n: int, where: str) -> Decimal | None:
    if not value:
        return None
    try:
        return Decimal(value).quantize(Decimal("0.01"))
    except InvalidOperation:
        raise X12Error(f"{where} is not a decimal amount", n, where[:3]) from None


def parse_277(text: str) -> list[ClaimStatus]:
    """See ``_parse_277``; a file whose envelope is cut short or miscounted is refused whole."""
    result = _parse_277(text)
    check_envelope(split_segments(text)[0])
    return result


def _parse_277(text: str) -> list[ClaimStatus]:
    """Claim statuses in file order, one per claim-level TRN.

    Raises ``X12Error`` (segment number and id) for a file that is not a 277
    X212/X214, a claim TRN without a trace number, an STC without a
    category:status composite, or a bad date or amount.
    """
    segments, seps = split_segments(text)
    out: list[ClaimStatus] = []
    version = VERSIONS[0]
    level: str | None = None
    claim: ClaimStatus | None = None
    in_line = False  # inside a service line (SVC): its STCs are not claim-level
    opened_at: list[int] = []  # segment number of each claim's TRN
    for n, seg in enumerate(segments, start=1):
        sid = seg[0]
        el = seg + [""] * (12 - len(seg))
        if sid == "GS":
            if el[8] not in VERSIONS:
                raise X12Error(f"GS08 must be a 277 version ({', '.join(VERSIONS)})", n, sid)
            version = el[8]
        elif sid == "ST":
            if el[1] != "277":
                raise X12Error(f"ST01 {shown(el[1])}: expected 277", n, sid)
            level, claim = None, None
        elif sid == "HL":
            level, claim, in_line = el[3], None, False
        elif sid == "TRN" and level in CLAIM_LEVELS:
            if not el[2]:
                raise X12Error("claim trace number (TRN02) is empty", n, sid)
            claim = ClaimStatus(el[2], "", "", None, version=version)
            out.append(claim)
            opened_at.append(n)
            in_line = False
        elif claim is None:
            continue
        elif sid == "SVC":
            in_line = True
        elif sid == "STC" and not in_line:
            _apply_stc(claim, el, seps, n)
        elif sid == "REF" and not in_line:
            if el[1] == "1K":
                claim.payer_claim_control_number = el[2] or None
            elif el[1] == "EJ":
                claim.patient_control_number = el[2] or None
        elif sid == "DTP" and not in_line and el[1] == "472":
            claim.service_date = _date(el[3].split("-")[0], n, "DTP03")
    for c, at in zip(out, opened_at, strict=True):
        if not c.status_category:
            raise X12Error("claim trace (TRN) has no claim-level STC status", at, "TRN")
    return out


def _apply_stc(claim: ClaimStatus, el: list[str], seps, n: int) -> None:
    details = []
    for pos in (1, 10, 11):  # STC01, and the optional extra statuses STC10/STC11
        if not el[pos]:
            continue
        parts = components(el[pos], seps) + ["", ""]
        if not parts[0] or not parts[1]:
            raise X12Error(f"STC{pos:02d} must be category{seps.component}status", n, "STC")
        details.append(StatusDetail(parts[0], parts[1], parts[2] or None))
    if not details:
        raise X12Error("STC01 (claim status) is empty", n, "STC")
    claim.details.extend(details)
    if claim.status_category:
        return  # the first STC of a claim is its current status; later ones are history
    claim.status_category, claim.status_code = details[0].category, details[0].code
    claim.effective_date = _date(el[2], n, "STC02")
    claim.action_code = el[3] or None
    claim.total_charge = _amount(el[4], n, "STC04")
    claim.paid_amount = _amount(el[5], n, "STC05")
    claim.adjudication_date = _date(el[6], n, "STC06")
    claim.check_number = el[9] or None


# Claim status category codes (code list 507) grouped by what follow-up does next.
_REJECTED = {"A3", "A4", "A6", "A7", "A8"}
_FINAL = {
    "F1": "paid",
    "F2": "denied",
    "F3": "revised",
    "F3F": "revised",
    "F3N": "revised",
    "F4": "finalized",
    "F0": "finalized",
}


def status_outcome(category: str) -> str:
    """What a status category means for the claim's history.

    ``acknowledged`` (A0-A2, A5), ``rejected`` (A3, A4, A6-A8: correct and resubmit),
    ``pending`` (P*), ``paid``/``denied``/``revised``/``finalized`` (F*: an 835
    should follow), ``information requested`` (R*), ``not found`` (D0), ``error``
    (E*: resend the inquiry), else ``unknown``.
    """
    c = (category or "").strip().upper()
    if c in _REJECTED:
        return "rejected"
    if c.startswith("A"):
        return "acknowledged"
    if c in _FINAL:
        return _FINAL[c]
    if c.startswith("F"):
        return "finalized"
    if c.startswith("P"):
        return "pending"
    if c.startswith("R"):
        return "information requested"
    if c.startswith("D"):
        return "not found"
    if c.startswith("E"):
        return "error"
    return "unknown"
