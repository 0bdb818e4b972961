"""Coordination of benefits, the remittance side: what a posted payer decision means for the
next coverage on file.

Pure: turns a ``remittance.received`` payload into the stored form of a payer's adjudication
(JSON, decimals as strings) and back into ``cob.PriorAdjudication``; tells a crossover (the
payer forwarded the claim to the next payer itself) from an adjudication to bill the next
payer from; and names the next coverage in COB order.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from shared.claim_ids import claim_id_for
from shared.events import Adjustment, Coverage, RemittanceReceivedPayload

from .cob import PriorAdjudication, PriorAdjustment, PriorLine

ORDER = ("primary", "secondary", "tertiary")
CENT = Decimal("0.01")
# CLP02 19/20: processed as primary (or secondary) and forwarded to the additional payer(s).
CROSSOVER_STATUS = frozenset({"19", "20"})
# MA18: claim forwarded to the supplemental insurer; N89: forwarded to the next payer.
CROSSOVER_REMARKS = frozenset({"MA18", "N89"})


def is_crossover(p: RemittanceReceivedPayload) -> bool:
    """Whether the payer says it forwarded the claim to the next payer: CLP02 19/20, remark
    MA18 or N89, or an 835 naming the crossover carrier (NM1*TT, ``crossover_carrier``)."""
    return (
        p.status_code in CROSSOVER_STATUS
        or any(r.upper() in CROSSOVER_REMARKS for r in p.remarks)
        or bool(p.crossover_carrier)
    )


def next_coverage(coverages: Sequence[Coverage], current: str) -> Coverage | None:
    """The coverage after ``current`` in COB order, or None when ``current`` is the last."""
    by_seq = {c.sequence: c for c in coverages}
    for seq in ORDER[ORDER.index(current) + 1 :]:
        if seq in by_seq:
            return by_seq[seq]
    return None


def cob_claim_id(primary_claim_id: str, cob_sequence: str) -> str:
    """The deterministic claim id (CLM01) of the encounter's secondary or tertiary claim.

    Same shape as every claim id (``shared.claim_ids``) so that payments recognises the
    next payer's 835 CLP01; derived from the primary claim and the sequence, so a redelivered
    remittance finds the claim it already built.
    """
    return claim_id_for("", f"cob-{cob_sequence}", primary_claim_id, 0)


def _money(v: Decimal) -> str:
    """Cents always shown: events may carry 115 for 115.00, and the reasons a held claim
    gives quote these amounts beside the claim's own."""
    return str(Decimal(v).quantize(CENT))


def _adj(a: Adjustment) -> dict:
    return {
        "group": a.group,
        "reason": a.reason,
        "amount": _money(a.amount),
        "quantity": None if a.quantity is None else str(a.quantity),
    }


def adjudication_record(p: RemittanceReceivedPayload, received_on: date) -> dict:
    """The stored form of one payer's decision (what ``prior_adjudication`` reads back).

    ``p.adjustments`` carries the claim-level adjustments first, then every line's: the claim
    level is what precedes the lines' own.
    """
    line_count = sum(len(sl.adjustments) for sl in p.service_lines)
    claim_level = p.adjustments[: len(p.adjustments) - line_count]
    return {
        "status": p.status_code,
        "date": (p.payment_date or received_on).isoformat(),
        "charge": _money(p.charge),
        "paid": _money(p.paid),
        "payer_claim_control_number": p.payer_claim_control_number,
        "adjustments": [_adj(a) for a in claim_level],
        "lines": [
            {
                "code": sl.code,
                "modifiers": list(sl.modifiers),
                "charge": _money(sl.charge),
                "paid": _money(sl.paid),
                "units": None if sl.units is None else str(sl.units),
                "adjustments": [_adj(a) for a in sl.adjustments],
            }
            for sl in p.service_lines
        ],
    }


def _prior_adj(d: dict) -> PriorAdjustment:
    q = d.get("quantity")
    return PriorAdjustment(
        d["group"], d["reason"], Decimal(d["amount"]), None if q is None else Decimal(q)
    )


def prior_adjudication(d: dict) -> PriorAdjudication:
    """A stored adjudication as ``build_cob_claim`` takes it."""
    return PriorAdjudication(
        adjudication_date=date.fromisoformat(d["date"]),
        charge=Decimal(d["charge"]),
        paid=Decimal(d["paid"]),
        payer_claim_control_number=d.get("payer_claim_control_number"),
        adjustments=tuple(_prior_adj(a) for a in d["adjustments"]),
        lines=tuple(
            PriorLine(
                code=ln["code"],
                modifiers=tuple(ln["modifiers"]),
                charge=Decimal(ln["charge"]),
                paid=Decimal(ln["paid"]),
                adjustments=tuple(_prior_adj(a) for a in ln["adjustments"]),
                units=Decimal(ln["units"]) if ln.get("units") else Decimal(1),
            )
            for ln in d["lines"]
        ),
        status=d["status"],
    )
