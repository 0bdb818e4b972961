"""Match an ERA claim payment (CLP) to a claim we submitted.

Strategy, first hit wins:
1. ``patient_control_number``: CLP01 echoes our CLM01 claim id exactly.
2. ``payer_claim_control_number``: CLP07 equals a payer claim number we
   already know for a claim (from a 277CA or an earlier ERA).
3. ``service_lines``: among the candidate claims of the same payer, the one
   whose total charge equals CLP03 and whose lines (billed code, modifiers in
   any order, date of service) are the same multiset as the SVC lines (SVC06
   is used when the payer changed the code). Only a unique hit counts.
Otherwise ``(None, "ambiguous")`` when several claims fit, else
``(None, "unmatched")``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from .remittance import ClaimPayment


@dataclass(frozen=True, slots=True)
class CandidateLine:
    code: str
    modifiers: tuple[str, ...]
    service_date: date | None


@dataclass(frozen=True, slots=True)
class ClaimCandidate:
    """What payments knows about one submitted claim."""

    claim_id: str
    payer_id: str | None
    charge: Decimal
    lines: tuple[CandidateLine, ...] = ()
    payer_claim_control_number: str | None = None


def _line_key(code: str, modifiers: Iterable[str], when: date | None) -> tuple:
    return (code, tuple(sorted(modifiers)), when)


class ClaimIndex:
    """Candidate claims indexed for repeated matching (one index per ERA batch)."""

    def __init__(self, candidates: Iterable[ClaimCandidate]):
        self.by_id: dict[str, ClaimCandidate] = {}
        self.by_icn: dict[str, ClaimCandidate] = {}
        self.by_charge: dict[Decimal, list[ClaimCandidate]] = {}
        for c in candidates:
            self.by_id[c.claim_id] = c
            if c.payer_claim_control_number:
                self.by_icn[c.payer_claim_control_number] = c
            self.by_charge.setdefault(c.charge, []).append(c)

    def match(self, cp: ClaimPayment, payer_id: str | None = None) -> tuple[str | None, str]:
        if cp.patient_control_number in self.by_id:
            return cp.patient_control_number, "patient_control_number"
        icn = cp.payer_claim_control_number
        if icn and icn in self.by_icn:
            return self.by_icn[icn].claim_id, "payer_claim_control_number"
        if not cp.service_lines:
            return None, "unmatched"
        # A reversal repeats the original claim with negated amounts.
        charge = -cp.charge if cp.charge < 0 else cp.charge
        wanted = Counter(
            _line_key(sl.billed_code, sl.billed_modifiers, sl.service_date or cp.statement_from)
            for sl in cp.service_lines
        )
        hits = [
            c
            for c in self.by_charge.get(charge, ())
            if (payer_id is None or c.payer_id == payer_id)
            and Counter(_line_key(x.code, x.modifiers, x.service_date) for x in c.lines) == wanted
        ]
        if len(hits) == 1:
            return hits[0].claim_id, "service_lines"
        return None, "ambiguous" if hits else "unmatched"


def match_claim(
    cp: ClaimPayment,
    candidates: ClaimIndex | Iterable[ClaimCandidate],
    payer_id: str | None = None,
) -> tuple[str | None, str]:
    """Return ``(claim_id or None, method)`` for one claim payment (see module doc).

    ``payer_id`` restricts the service-line fallback to that payer's claims
    (None: any payer);
    pass a prebuilt ``ClaimIndex`` when matching many claims of one ERA.
    """
    index = candidates if isinstance(candidates, ClaimIndex) else ClaimIndex(candidates)
    return index.match(cp, payer_id)
