"""Posting 835 remittances: balance, match, post to the ledger, emit remittance.received.

One 835 file is applied in one transaction (called from the inbound mailbox).
A transaction whose payment does not balance is held whole; a claim payment that
does not balance is held alone; one for an unknown claim waits in the unmatched
queue and is posted when the claim becomes known. The same check/EFT trace
number from the same payer never posts twice, whatever file brings it.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import asyncpg

from services.payments import repository as repo
from services.payments.domain.balancing import check_claim, check_transaction
from services.payments.domain.era import parse_835
from services.payments.domain.ledger import entry_for_claim_payment, entry_for_plb
from services.payments.domain.matching import CandidateLine, ClaimCandidate, ClaimIndex
from services.payments.domain.remittance import Adjustment, ClaimPayment, ServiceLine
from shared.events import Adjustment as EventAdjustment
from shared.events import RemittanceLine, RemittanceReceived, RemittanceReceivedPayload
from shared.messaging import Emitter
from shared.telemetry import tracer


async def apply_era(conn: asyncpg.Connection, text: str, file_name: str, emitter: Emitter) -> None:
    """Apply one 835 file. Raises X12Error for a malformed file (nothing is posted)."""
    with tracer().start_as_current_span("x12 parse 835", attributes={"rcm.file_name": file_name}):
        era = parse_835(text)
    for tx in era.transactions:
        payer_id = tx.payer.payer_id or tx.payer.name
        trace = tx.payment.trace_number
        problems = check_transaction(tx)
        claim_problems = {id(cp): check_claim(cp, tx.st_control_number) for cp in tx.claims}
        tx_problems = [p for p in problems if p.startswith(f"transaction {tx.st_control_number}")]
        status = "held" if tx_problems else "posted"
        advice_id = await repo.insert_advice(
            conn, payer_key=payer_id, trace_number=trace, file_name=file_name, st=tx.st_control_number,
            amount=tx.payment.signed_amount, method=tx.payment.method, payment_date=tx.payment.date,
            status=status, reason="; ".join(tx_problems)[:1000] or None,
        )  # fmt: skip
        if advice_id is None:
            continue  # this check/EFT was posted before
        rows, to_post = [], []
        index = ClaimIndex(_candidates(await repo.claims_for_matching(
            conn, [cp.patient_control_number for cp in tx.claims],
            [cp.payer_claim_control_number for cp in tx.claims if cp.payer_claim_control_number],
            [payer_id], [abs(cp.charge) for cp in tx.claims])))  # fmt: skip
        for k, cp in enumerate(tx.claims, start=1):
            rid = f"{payer_id}:{trace}:{k}"
            why = tx_problems or claim_problems[id(cp)]
            if why:
                rows.append(_row(rid, advice_id, None, cp, payer_id, "held", None, "; ".join(why)[:1000]))
                continue
            claim_id, method = index.match(cp, payer_id)
            if claim_id is None:
                rows.append(_row(rid, advice_id, None, cp, payer_id, "unmatched", method, "no matching claim"))
                continue
            rows.append(_row(rid, advice_id, claim_id, cp, payer_id, "posted", method, None))
            to_post.append((rid, claim_id, cp))
        await repo.insert_claim_payments(conn, rows)
        if status == "posted":
            await post_payments(conn, to_post, payer_id, advice_id, emitter,
                                trace=trace, payment_date=tx.payment.date, file_name=file_name,
                                payer_name=tx.payer.name)  # fmt: skip
            await repo.post_entries(conn, [
                ("plb", f"plb:{payer_id}:{trace}:{i}", None, payer_id, advice_id, entry_for_plb(adj, payer_id))
                for i, adj in enumerate(tx.provider_adjustments, start=1)
            ])  # fmt: skip


async def post_payments(conn: asyncpg.Connection, items: list[tuple[str, str, ClaimPayment]], payer_id: str,
                        advice_id: int | None, emitter: Emitter, *, trace: str | None, payment_date: date | None,
                        file_name: str | None, payer_name: str | None) -> None:  # fmt: skip
    """Post matched claim payments and emit one remittance.received each (in the encounter's trace)."""
    if not items:
        return
    claims = await repo.claims_by_ids(conn, [c for _, c, _ in items])
    entries = []
    for rid, claim_id, cp in items:
        if cp.is_reversal:
            original = await repo.last_payment_source(conn, claim_id, cp.paid)
            lines = await repo.entry_lines(conn, original) if original else None
            source = f"reversal-of:{original.removeprefix('remit:')}" if original else f"remit:{rid}"
            entries.append(("reversal", source, claim_id, payer_id, advice_id,
                            entry_for_claim_payment(cp, claim_id, payer_id, original=lines)))  # fmt: skip
        else:
            entries.append(("payment", f"remit:{rid}", claim_id, payer_id, advice_id,
                            entry_for_claim_payment(cp, claim_id, payer_id)))  # fmt: skip
    await repo.post_entries(conn, [e for e in entries if e[5]])
    for rid, claim_id, cp in items:
        claim = claims[claim_id]
        event = RemittanceReceived(site_id=claim["site_id"], encounter_id=claim["encounter_id"],
                                   payload=_payload(rid, claim_id, cp, payer_id, payer_name, trace, payment_date,
                                                    file_name))  # fmt: skip
        emitter.emit(event, traceparent=claim["traceparent"])


async def rematch(conn: asyncpg.Connection, claim_ids: list[str], emitter: Emitter) -> int:
    """Post unmatched claim payments that name claims which just became known."""
    rows = await repo.unmatched_for(conn, claim_ids)
    done = 0
    for r in rows:
        cp = from_detail(r["detail"])
        await repo.mark_matched(conn, [(r["remittance_id"], r["patient_control_number"], "patient_control_number")])
        await post_payments(conn, [(r["remittance_id"], r["patient_control_number"], cp)], r["payer_id"],
                            r["advice_id"], emitter, trace=r["trace_number"], payment_date=r["payment_date"],
                            file_name=r["file_name"], payer_name=None)  # fmt: skip
        done += 1
    return done


def _candidates(rows) -> list[ClaimCandidate]:
    import json

    out = []
    for r in rows:
        lines = json.loads(r["lines"])
        out.append(ClaimCandidate(
            claim_id=r["claim_id"], payer_id=r["payer_id"], charge=r["total_charge"],
            payer_claim_control_number=r["payer_claim_control_number"],
            lines=tuple(CandidateLine(ln["code"], tuple(ln.get("modifiers") or ()),
                                      date.fromisoformat(ln["service_date"]) if ln.get("service_date") else None)
                        for ln in lines),
        ))  # fmt: skip
    return out


def _row(rid, advice_id, claim_id, cp: ClaimPayment, payer_id, state, method, reason) -> tuple:
    return (rid, advice_id, claim_id, cp.patient_control_number, payer_id, cp.status_code, cp.charge, cp.paid,
            cp.patient_responsibility or Decimal(0), cp.payer_claim_control_number, state, method, reason,
            repo.dumps(to_detail(cp)))  # fmt: skip


# -- a PHI-free, reconstructable copy of a claim payment (for the unmatched queue) ------------


def _adj(a: Adjustment) -> list:
    return [a.group, a.reason, str(a.amount), None if a.quantity is None else str(a.quantity), a.level]


def _unadj(v: list) -> Adjustment:
    return Adjustment(v[0], v[1], Decimal(v[2]), None if v[3] is None else Decimal(v[3]), v[4])


def to_detail(cp: ClaimPayment) -> dict:
    return {
        "pcn": cp.patient_control_number, "status": cp.status_code, "charge": str(cp.charge), "paid": str(cp.paid),
        "pr": None if cp.patient_responsibility is None else str(cp.patient_responsibility),
        "filing": cp.filing_indicator, "pccn": cp.payer_claim_control_number,
        "from": cp.statement_from.isoformat() if cp.statement_from else None,
        "adjustments": [_adj(a) for a in cp.adjustments], "remarks": list(cp.remarks),
        "lines": [{"q": sl.qualifier, "code": sl.code, "mods": list(sl.modifiers), "charge": str(sl.charge),
                   "paid": str(sl.paid), "units": str(sl.units), "oc": sl.original_code,
                   "om": list(sl.original_modifiers),
                   "date": sl.service_date.isoformat() if sl.service_date else None,
                   "adjustments": [_adj(a) for a in sl.adjustments], "remarks": list(sl.remarks)}
                  for sl in cp.service_lines],
    }  # fmt: skip


def from_detail(d: dict | str) -> ClaimPayment:
    import json

    if isinstance(d, str):
        d = json.loads(d)
    return ClaimPayment(
        patient_control_number=d["pcn"], status_code=d["status"], charge=Decimal(d["charge"]), paid=Decimal(d["paid"]),
        patient_responsibility=None if d["pr"] is None else Decimal(d["pr"]), filing_indicator=d["filing"],
        payer_claim_control_number=d["pccn"],
        statement_from=date.fromisoformat(d["from"]) if d["from"] else None,
        adjustments=[_unadj(a) for a in d["adjustments"]], remarks=list(d["remarks"]),
        service_lines=[ServiceLine(qualifier=s["q"], code=s["code"], modifiers=tuple(s["mods"]),
                                   charge=Decimal(s["charge"]), paid=Decimal(s["paid"]), units=Decimal(s["units"]),
                                   original_code=s["oc"], original_modifiers=tuple(s["om"]),
                                   service_date=date.fromisoformat(s["date"]) if s["date"] else None,
                                   adjustments=[_unadj(a) for a in s["adjustments"]], remarks=list(s["remarks"]))
                       for s in d["lines"]],
    )  # fmt: skip


def _payload(rid, claim_id, cp: ClaimPayment, payer_id, payer_name, trace, payment_date, file_name):
    def ev_adj(a: Adjustment) -> EventAdjustment:
        return EventAdjustment(group=a.group, reason=a.reason, amount=a.amount, quantity=a.quantity)

    all_adj = [ev_adj(a) for a in cp.adjustments] + [ev_adj(a) for sl in cp.service_lines for a in sl.adjustments]
    remarks = list(cp.remarks) + [r for sl in cp.service_lines for r in sl.remarks]
    return RemittanceReceivedPayload(
        remittance_id=rid, claim_id=claim_id, patient_control_number=cp.patient_control_number, payer_id=payer_id,
        payer_name=payer_name, status_code=cp.status_code, charge=cp.charge, paid=cp.paid,
        patient_responsibility=cp.patient_responsibility or Decimal(0),
        payer_claim_control_number=cp.payer_claim_control_number, adjustments=all_adj,
        remarks=list(dict.fromkeys(remarks)),
        service_lines=[RemittanceLine(code=sl.billed_code, modifiers=list(sl.modifiers), charge=sl.charge, paid=sl.paid,
                                      units=sl.units, service_date=sl.service_date,
                                      adjustments=[ev_adj(a) for a in sl.adjustments], remarks=list(sl.remarks))
                       for sl in cp.service_lines],
        is_reversal=cp.is_reversal, trace_number=trace, payment_date=payment_date, file_name=file_name,
    )  # fmt: skip
