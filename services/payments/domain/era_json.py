"""JSON view of a parsed 835, the ``rcm era FILE`` output (design.md).

Multi-transaction files (several ST/SE, several interchanges): ``payer`` and
``payment`` describe the FIRST transaction, while ``claims`` and
``provider_adjustments`` list those of ALL transactions in file order, each
tagged with its ``st_control_number`` so nothing is hidden from a reader who
only looks at ``claims``. ``transactions`` always lists every transaction with
its own payer, payment, control numbers, claim count and warnings; a
single-transaction file therefore has a one-element ``transactions`` list and
top-level fields that are exactly that transaction's. Amounts are decimal
strings with two places; patient names and member ids are never included.
"""

from __future__ import annotations

from decimal import Decimal

from .remittance import Adjustment, ClaimPayment, Era835, Party, Payment, RemitTransaction

_CENT = Decimal("0.01")


def _money(d: Decimal | None) -> str | None:
    return None if d is None else format(d.quantize(_CENT), "f")


def _qty(d: Decimal) -> str:
    return format(d.normalize(), "f")


def _adjustments(adjs: list[Adjustment]) -> list[dict]:
    return [{"group": a.group, "reason": a.reason, "amount": _money(a.amount)} for a in adjs]


def _payer(p: Party) -> dict:
    return {"name": p.name, "payer_id": p.payer_id}


def _payment(p: Payment) -> dict:
    return {
        "amount": _money(p.amount),
        "credit_debit": p.credit_debit,
        "method": p.method,
        "trace_number": p.trace_number,
        "originator": p.originator,
        "date": p.date.isoformat() if p.date else None,
    }


def _claim(c: ClaimPayment, st: str) -> dict:
    return {
        "st_control_number": st,
        "patient_control_number": c.patient_control_number,
        "status_code": c.status_code,
        "charge": _money(c.charge),
        "paid": _money(c.paid),
        "patient_responsibility": _money(c.patient_responsibility),
        "payer_claim_control_number": c.payer_claim_control_number,
        "adjustments": _adjustments(c.adjustments),
        "remarks": list(c.remarks),
        "service_lines": [
            {
                "code": s.code,
                "modifiers": list(s.modifiers),
                "charge": _money(s.charge),
                "paid": _money(s.paid),
                "units": _qty(s.units),
                "adjustments": _adjustments(s.adjustments),
                "remarks": list(s.remarks),
            }
            for s in c.service_lines
        ],
    }


def _transaction(t: RemitTransaction) -> dict:
    return {
        "st_control_number": t.st_control_number,
        "interchange_control_number": t.isa_control_number,
        "group_control_number": t.gs_control_number,
        "payer": _payer(t.payer),
        "payee": {"name": t.payee.name, "npi": t.payee.npi, "tax_id": t.payee.tax_id},
        "payment": _payment(t.payment),
        "claim_count": len(t.claims),
        "warnings": list(t.warnings),
    }


def era_to_json(era: Era835) -> dict:
    """Render ``era`` as the JSON-ready dict printed by ``rcm era`` (see module doc)."""
    txs = era.transactions
    first = txs[0] if txs else None
    return {
        "interchange_control_number": era.interchange_control_number,
        "payer": _payer(first.payer) if first else None,
        "payment": _payment(first.payment) if first else None,
        "claims": [_claim(c, t.st_control_number) for t in txs for c in t.claims],
        "provider_adjustments": [
            {
                "st_control_number": t.st_control_number,
                "provider_id": a.provider_id,
                "reason": a.reason,
                "reference": a.reference,
                "amount": _money(a.amount),
            }
            for t in txs
            for a in t.provider_adjustments
        ],
        "transactions": [_transaction(t) for t in txs],
    }
