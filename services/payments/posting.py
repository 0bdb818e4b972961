"""Posting 835 remittances: balance, match, post to the ledger, emit remittance.received.

One 835 file is applied in one transaction (called from the inbound mailbox).
A transaction whose payment does not balance is held whole; a claim payment that
does not balance is held alone; one for an unknown claim waits in the unmatched
queue and is posted when the claim becomes known. A claim payment outside plausible
bounds (negative on an original claim, paid above billed: ``domain.plausibility``) is held
for review like one that does not balance. The same check/EFT trace
number from the same payer never posts twice, whatever file brings it (a held
one is replaced by the payer's corrected resend). A reversal (CLP02 22) posts
the exact negation of the payment it undoes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

import asyncpg

from services.payments import repository as repo
from services.payments.domain.balancing import check_claim, check_transaction
from services.payments.domain.carcs import is_beyond_contract
from services.payments.domain.era import parse_835
from services.payments.domain.ledger import (
    CASH_CLEARING,
    JournalLine,
    LedgerError,
    claim_balance,
    entry_for_claim_payment,
    entry_for_plb,
)
from services.payments.domain.matching import CandidateLine, ClaimCandidate, ClaimIndex
from services.payments.domain.outcome import contractual_amount, remittance_outcome
from services.payments.domain.plausibility import check_bounds
from services.payments.domain.remittance import (
    Adjustment,
    ClaimPayment,
    RemitTransaction,
    ServiceLine,
)
from services.payments.patient_accounts import after_posting
from shared.claim_ids import is_claim_id
from shared.events import RemittanceHeld, RemittanceReceived
from shared.jsonutil import loads
from shared.logs import log
from shared.messaging import Emitter
from shared.telemetry import tracer

_log = logging.getLogger("rcm.payments")
_UNMATCHED = {
    "unmatched": "no matching claim",
    "ambiguous": "several claims match its service lines",
}


@dataclass(slots=True)
class Posting:
    """A claim payment matched to a claim, with the deposit it came in."""

    remittance_id: str
    claim_id: str
    cp: ClaimPayment
    payer_id: str
    advice_id: int
    payer_name: str | None
    trace_number: str | None
    payment_date: date | None
    file_name: str | None
    lines: list[JournalLine] | None = None  # its journal entry, once ``ledger_entries`` made it


async def apply_era(conn: asyncpg.Connection, text: str, file_name: str, emitter: Emitter) -> None:
    """Apply one 835 file in the caller's transaction.

    A clearinghouse's ERA file carries a transaction (a payment) per payer: each records its
    deposit first, in file order; then the claim payments of all of them are matched,
    posted and emitted together (one round of statements per file, not per payment).
    Raises ``X12Error`` for a malformed file: nothing of it is posted.
    """
    with tracer().start_as_current_span("x12 parse 835", attributes={"rcm.file_name": file_name}):
        era = parse_835(text)
    deposits = []
    for tx in era.transactions:
        deposit = await _record_deposit(conn, tx, file_name)
        if deposit is not None:
            deposits.append(deposit)
    if not deposits:
        return
    await repo.lock_matching(conn)
    by_number = await repo.candidates_by_number(
        conn,
        [cp.patient_control_number for d in deposits for cp in d.tx.claims],
        [
            cp.payer_claim_control_number
            for d in deposits
            for cp in d.tx.claims
            if cp.payer_claim_control_number
        ],
    )
    placed: list[Placement] = []
    postings: list[Posting] = []
    plb: list[repo.Entry] = []
    for d in deposits:
        tx, payer_id, trace = d.tx, d.payer_id, d.tx.payment.trace_number
        index = await _claim_index(
            conn, tx.claims, payer_id, by_number, {p.claim_id for p in postings}
        )
        for k, cp in enumerate(tx.claims, start=1):
            rid = f"{payer_id}:{trace}:{k}"
            why = d.problems or check_claim(cp, tx.st_control_number)
            claim_id, method = (None, None) if why else index.match(cp, payer_id)
            if claim_id is not None:
                why = check_bounds(cp, index.by_id[claim_id].charge, tx.st_control_number)
            if why:
                state, reason = "held", "; ".join(why)[:1000]
            elif claim_id is None:
                state, reason = "unmatched", _UNMATCHED.get(method, method)
            else:
                state, reason = "posted", None
                postings.append(
                    Posting(
                        rid,
                        claim_id,
                        cp,
                        payer_id,
                        d.advice_id,
                        tx.payer.name,
                        trace,
                        tx.payment.date,
                        file_name,
                    )
                )
            placed.append(
                Placement(rid, d.advice_id, k, claim_id, cp, payer_id, state, method, reason)
            )
        if not d.problems:
            plb += [
                repo.Entry(
                    "plb",
                    f"plb:{payer_id}:{trace}:{i}",
                    None,
                    payer_id,
                    d.advice_id,
                    entry_for_plb(adj, payer_id),
                )
                for i, adj in enumerate(tx.provider_adjustments, start=1)
            ]
    entries, failed = await ledger_entries(conn, postings)
    for pl in placed:
        if (
            pl.remittance_id in failed
        ):  # the ledger refused it: held with the reason, never half-posted
            pl.state, pl.reason = "held", failed[pl.remittance_id]
    now = datetime.now(UTC)
    await repo.insert_claim_payments(conn, [pl.row(now) for pl in placed])
    await repo.post_entries(conn, entries + plb)
    await emit_received(conn, [p for p in postings if p.remittance_id not in failed], emitter)
    await emit_held(
        conn,
        [
            Held(pl.remittance_id, pl.claim_id, pl.payer_id, pl.cp, pl.reason or "")
            for pl in placed
            if pl.state == "held" and pl.claim_id is not None
        ],
        emitter,
    )


@dataclass(slots=True)
class Placement:
    """Where one CLP of the file went: posted to a claim, held, or waiting unmatched."""

    remittance_id: str
    advice_id: int
    position: int
    claim_id: str | None
    cp: ClaimPayment
    payer_id: str
    state: str
    method: str | None
    reason: str | None

    def row(self, now: datetime) -> repo.ClaimPaymentRow:
        """Its claim_payment row; the detail is kept only while it waits."""
        cp, posted = self.cp, self.state == "posted"
        return repo.ClaimPaymentRow(
            remittance_id=self.remittance_id,
            advice_id=self.advice_id,
            position=self.position,
            claim_id=self.claim_id,
            patient_control_number=cp.patient_control_number,
            payer_id=self.payer_id,
            status_code=cp.status_code,
            charge=cp.charge,
            paid=cp.paid,
            patient_responsibility=cp.patient_responsibility or Decimal(0),
            payer_claim_control_number=cp.payer_claim_control_number,
            state=self.state,
            match_method=self.method,
            reason=self.reason,
            detail=None if posted else repo.dumps(to_detail(cp)),
            posted_at=now if posted else None,
        )


@dataclass(slots=True)
class _Deposit:
    """One 835 transaction whose payment was recorded: its advice and what holds it whole."""

    tx: RemitTransaction
    payer_id: str
    advice_id: int
    problems: list[str]  # the payment does not balance: every claim payment is held


async def _record_deposit(
    conn: asyncpg.Connection, tx: RemitTransaction, file_name: str
) -> _Deposit | None:
    """Record one 835 transaction's deposit (held when its payment does not balance).

    None when the payer's check/EFT trace was already received: recorded as a duplicate,
    nothing of it is posted again.
    """
    payer_id = tx.payer.payer_id or tx.payer.name
    trace, st = tx.payment.trace_number, tx.st_control_number
    # Claim problems also start "transaction <st> claim ..."; only the payment total holds the whole set.
    problems = [p for p in check_transaction(tx) if p.startswith(f"transaction {st}:")]
    got = await repo.upsert_advice(
        conn,
        payer_key=payer_id,
        payer_name=tx.payer.name,
        trace_number=trace,
        file_name=file_name,
        st=st,
        amount=tx.payment.signed_amount,
        method=tx.payment.method,
        payment_date=tx.payment.date,
        status="held" if problems else "posted",
        reason="; ".join(problems)[:1000] or None,
    )
    if got is None:
        await repo.record_duplicate_advice(
            conn,
            payer_key=payer_id,
            trace_number=trace,
            file_name=file_name,
            st=st,
            amount=tx.payment.signed_amount,
        )
        log(
            _log,
            logging.WARNING,
            "835 payment already received; not posted again",
            file_name=file_name,
            payer_id=payer_id,
            component=f"transaction {st} trace {trace}",
        )
        return None
    return _Deposit(tx, payer_id, got[0], problems)


async def rematch(conn: asyncpg.Connection, claim_ids: list[str], emitter: Emitter) -> int:
    """Post the unmatched claim payments whose CLP01 names one of ``claim_ids`` (claims just registered)."""
    if not claim_ids:
        return 0
    rows = await repo.unmatched_for(conn, claim_ids)
    if not rows:
        return 0
    postings = [
        Posting(
            r["remittance_id"],
            r["patient_control_number"],
            from_detail(r["detail"]),
            r["payer_id"],
            r["advice_id"],
            r["payer_name"],
            r["trace_number"],
            r["payment_date"],
            r["file_name"],
        )
        for r in rows
    ]
    billed = {r["claim_id"]: r["total_charge"] for r in await repo.claim_balances(conn, claim_ids)}
    bounds = {
        p.remittance_id: "; ".join(why)[:1000]
        for p in postings
        if (why := check_bounds(p.cp, billed.get(p.claim_id)))
    }
    postings, held = (
        [p for p in postings if p.remittance_id not in bounds],
        [p for p in postings if p.remittance_id in bounds],
    )
    entries, failed = await ledger_entries(conn, postings)
    failed |= bounds
    postings += held
    await repo.settle_unmatched(
        conn,
        [
            repo.Settled(
                p.remittance_id,
                p.claim_id,
                "held" if p.remittance_id in failed else "posted",
                failed.get(p.remittance_id),
            )
            for p in postings
        ],
    )
    await repo.post_entries(conn, entries)
    done = [p for p in postings if p.remittance_id not in failed]
    await emit_received(conn, done, emitter)
    await emit_held(
        conn,
        [
            Held(p.remittance_id, p.claim_id, p.payer_id, p.cp, failed[p.remittance_id])
            for p in postings
            if p.remittance_id in failed
        ],
        emitter,
    )
    return len(done)


async def ledger_entries(
    conn: asyncpg.Connection, postings: list[Posting]
) -> tuple[list[repo.Entry], dict[str, str]]:
    """Journal entries for matched claim payments, in order; and the ones the ledger refuses (id -> reason).

    A payment on a next payer's claim (one a COB transfer opened: a secondary's or tertiary's
    claim, or a replacement of one) settles its payer receivable (``entry_for_claim_payment(next_payer=True)``). A reversal undoes the newest
    not-yet-reversed payment of its claim that paid the same amount (posted before, or
    earlier in ``postings``); with none, its negative amounts are posted by the ordinary
    rules.
    """
    reversing = {p.claim_id for p in postings if p.cp.is_reversal}
    open_payments = await repo.unreversed_payments(conn, sorted(reversing)) if reversing else {}
    # Next payers' claims (a COB transfer opened them) settle their own payer receivable.
    transferred = (
        await repo.transferred_claims(conn, sorted({p.claim_id for p in postings}))
        if postings
        else set()
    )
    entries: list[repo.Entry] = []
    failed: dict[str, str] = {}
    for p in postings:
        kind, source = ("reversal" if p.cp.is_reversal else "payment"), f"remit:{p.remittance_id}"
        original = (
            _take_original(open_payments.get(p.claim_id, []), p.cp.paid)
            if p.cp.is_reversal
            else None
        )
        if original is not None:
            source = "reversal-of:" + original[0].removeprefix("remit:")
        try:
            lines = entry_for_claim_payment(
                p.cp,
                p.claim_id,
                p.payer_id,
                original=original[1] if original is not None else None,
                next_payer=p.claim_id in transferred,
            )
        except LedgerError as e:
            failed[p.remittance_id] = str(e)[:1000]
            continue
        p.lines = lines
        entries.append(repo.Entry(kind, source, p.claim_id, p.payer_id, p.advice_id, lines))
        if (
            kind == "payment" and p.claim_id in reversing
        ):  # a later reversal in this batch may undo it
            open_payments.setdefault(p.claim_id, []).append((source, lines))
    return entries, failed


def _take_original(candidates: list[tuple[str, list[JournalLine]]], paid: Decimal):
    for i in range(len(candidates) - 1, -1, -1):
        source, lines = candidates[i]
        if (
            source.startswith("remit:")
            and sum(ln.amount for ln in lines if ln.account == CASH_CLEARING) == -paid
        ):
            return candidates.pop(i)
    return None


async def emit_received(
    conn: asyncpg.Connection, postings: list[Posting], emitter: Emitter
) -> None:
    """One remittance.received per posted claim payment, continuing the encounter's trace;
    then the patient accounts (credit applied, crossovers: ``patient_accounts.after_posting``)."""
    if not postings:
        return
    claims = await repo.claim_routing(conn, sorted({p.claim_id for p in postings}))
    await after_posting(conn, claims, postings, emitter)
    for p in postings:
        claim = claims[p.claim_id]
        emitter.emit(
            received_event(p, claim["site_id"], claim["encounter_id"]),
            traceparent=claim["traceparent"],
        )


@dataclass(slots=True, frozen=True)
class Held:
    """A claim payment matched to a claim but held for review, with the reason (amounts, ids)."""

    remittance_id: str
    claim_id: str
    payer_id: str
    cp: ClaimPayment
    reason: str


async def emit_held(conn: asyncpg.Connection, held: list[Held], emitter: Emitter) -> None:
    """One remittance.held per claim payment held on its claim (a biller reviews it), in the
    caller's transaction like the hold itself."""
    if not held:
        return
    claims = await repo.claim_routing(conn, sorted({h.claim_id for h in held}))
    for h in held:
        claim = claims[h.claim_id]
        emitter.emit(
            RemittanceHeld(
                site_id=claim["site_id"],
                encounter_id=claim["encounter_id"],
                payload={
                    "remittance_id": h.remittance_id,
                    "claim_id": h.claim_id,
                    "payer_id": h.payer_id,
                    "charge": h.cp.charge,
                    "paid": h.cp.paid,
                    "reason": h.reason or "held for review",
                },
            ),
            traceparent=claim["traceparent"],
        )


async def _claim_index(
    conn: asyncpg.Connection,
    claims: list[ClaimPayment],
    payer_id: str,
    by_number: list[asyncpg.Record],
    paid_in_file: set[str],
) -> ClaimIndex:
    """Candidates for one transaction's ``claims``: of ``by_number`` (the file's claims found by claim id
    or payer claim number), those its claims name; by charge and service lines only for what those
    leave open. Lines are read (and decoded) only for the charge fallback, which is rare.
    """
    pcns = {cp.patient_control_number for cp in claims}
    pccns = {cp.payer_claim_control_number for cp in claims if cp.payer_claim_control_number}
    rows = {
        r["claim_id"]: r
        for r in by_number
        if r["claim_id"] in pcns or r["payer_claim_control_number"] in pccns
    }
    index = ClaimIndex(_candidates(rows.values()))
    charges = sorted(
        {
            abs(cp.charge)
            for cp in claims
            if cp.service_lines
            and cp.patient_control_number not in index.by_id
            and cp.payer_claim_control_number not in index.by_icn
            # A CLP01 that is one of our claim ids (shared.claim_ids) but not a claim we know yet
            # waits in the unmatched queue for its claim.submitted: guessing by service lines
            # would risk posting it to an identical twin claim.
            and not is_claim_id(cp.patient_control_number)
        }
    )
    if charges:
        # Keyed by claim id: a claim listed twice would make its own match look ambiguous.
        # Claims paid earlier in this file are not in the ledger yet: left out as those posted before are.
        rows.update(
            (r["claim_id"], r)
            for r in await repo.candidates_by_charge(conn, payer_id, charges)
            if r["claim_id"] not in paid_in_file
        )
        index = ClaimIndex(_candidates(rows.values()))
    return index


def _candidates(rows) -> list[ClaimCandidate]:
    out = []
    for r in rows:
        lines = loads(r["lines"]) if r["lines"] is not None else ()
        out.append(
            ClaimCandidate(
                claim_id=r["claim_id"],
                payer_id=r["payer_id"],
                charge=r["total_charge"],
                payer_claim_control_number=r["payer_claim_control_number"],
                lines=tuple(
                    CandidateLine(
                        ln["code"],
                        tuple(ln.get("modifiers") or ()),
                        date.fromisoformat(ln["service_date"]) if ln.get("service_date") else None,
                    )
                    for ln in lines
                ),
            )
        )
    return out


# -- a PHI-free, reconstructable copy of a claim payment (for the unmatched queue) ------------


def _adj(a: Adjustment) -> list:
    return [
        a.group,
        a.reason,
        str(a.amount),
        None if a.quantity is None else str(a.quantity),
        a.level,
    ]


def _unadj(v: list) -> Adjustment:
    return Adjustment(v[0], v[1], Decimal(v[2]), None if v[3] is None else Decimal(v[3]), v[4])


def to_detail(cp: ClaimPayment) -> dict:
    return {
        "pcn": cp.patient_control_number,
        "status": cp.status_code,
        "charge": str(cp.charge),
        "paid": str(cp.paid),
        "pr": None if cp.patient_responsibility is None else str(cp.patient_responsibility),
        "filing": cp.filing_indicator,
        "pccn": cp.payer_claim_control_number,
        "from": cp.statement_from.isoformat() if cp.statement_from else None,
        "adjustments": [_adj(a) for a in cp.adjustments],
        "remarks": list(cp.remarks),
        "lines": [
            {
                "q": sl.qualifier,
                "code": sl.code,
                "mods": list(sl.modifiers),
                "charge": str(sl.charge),
                "paid": str(sl.paid),
                "units": str(sl.units),
                "oc": sl.original_code,
                "om": list(sl.original_modifiers),
                "date": sl.service_date.isoformat() if sl.service_date else None,
                "adjustments": [_adj(a) for a in sl.adjustments],
                "remarks": list(sl.remarks),
            }
            for sl in cp.service_lines
        ],
    }


def from_detail(d: dict | str) -> ClaimPayment:
    if isinstance(d, str):
        d = loads(d)
    return ClaimPayment(
        patient_control_number=d["pcn"],
        status_code=d["status"],
        charge=Decimal(d["charge"]),
        paid=Decimal(d["paid"]),
        patient_responsibility=None if d["pr"] is None else Decimal(d["pr"]),
        filing_indicator=d["filing"],
        payer_claim_control_number=d["pccn"],
        statement_from=date.fromisoformat(d["from"]) if d["from"] else None,
        adjustments=[_unadj(a) for a in d["adjustments"]],
        remarks=list(d["remarks"]),
        service_lines=[
            ServiceLine(
                qualifier=s["q"],
                code=s["code"],
                modifiers=tuple(s["mods"]),
                charge=Decimal(s["charge"]),
                paid=Decimal(s["paid"]),
                units=Decimal(s["units"]),
                original_code=s["oc"],
                original_modifiers=tuple(s["om"]),
                service_date=date.fromisoformat(s["date"]) if s["date"] else None,
                adjustments=[_unadj(a) for a in s["adjustments"]],
                remarks=list(s["remarks"]),
            )
            for s in d["lines"]
        ],
    )


class _Received(RemittanceReceived):
    """remittance.received whose JSON is written by pydantic's serializer (the posting hot path).

    Same document as ``Envelope.to_json`` (``event_type`` added, decimals as strings).
    """

    def to_json(self) -> bytes:
        return (
            b'{"event_type":"%s",' % self.event_type.encode()
            + self.__pydantic_serializer__.to_json(self)[1:]
        )


def received_event(p: Posting, site_id: str, encounter_id: str) -> RemittanceReceived:
    """The remittance.received of one posted claim payment (validated like any event).

    Its balance changes are those of the posting's journal entry (``ledger_entries``); a posting
    without one gets the entry the ordinary rules make. Raises ``LedgerError`` if that fails.
    """
    cp = p.cp
    lines = p.lines if p.lines is not None else entry_for_claim_payment(cp, p.claim_id, p.payer_id)
    payer_change, patient_change = claim_balance(lines, p.claim_id)

    def adj(a: Adjustment) -> dict:
        return {
            "group": a.group,
            "reason": a.reason,
            "amount": a.amount,
            "quantity": a.quantity,
            "beyond_contract": is_beyond_contract(a.group, a.reason),
        }

    remarks = list(cp.remarks) + [r for sl in cp.service_lines for r in sl.remarks]
    adjustments = list(cp.adjustments) + [a for sl in cp.service_lines for a in sl.adjustments]
    patient_responsibility = cp.patient_responsibility or Decimal(0)
    tt = cp.crossover_carrier  # NM1*TT: the payer this one forwarded the claim to, by id or name
    return _Received.model_validate(
        {
            "site_id": site_id,
            "encounter_id": encounter_id,
            "payload": {
                "remittance_id": p.remittance_id,
                "claim_id": p.claim_id,
                "patient_control_number": cp.patient_control_number,
                "payer_id": p.payer_id,
                "payer_name": p.payer_name,
                "status_code": cp.status_code,
                "charge": cp.charge,
                "paid": cp.paid,
                "patient_responsibility": patient_responsibility,
                "payer_claim_control_number": cp.payer_claim_control_number,
                "adjustments": [adj(a) for a in adjustments],
                "remarks": list(dict.fromkeys(remarks)),
                "service_lines": [
                    {
                        "code": sl.billed_code,
                        "modifiers": list(sl.modifiers),
                        "charge": sl.charge,
                        "paid": sl.paid,
                        "units": sl.units,
                        "service_date": sl.service_date,
                        "adjustments": [adj(a) for a in sl.adjustments],
                        "remarks": list(sl.remarks),
                    }
                    for sl in cp.service_lines
                ],
                "is_reversal": cp.is_reversal,
                "outcome": remittance_outcome(
                    cp.status_code, cp.paid, patient_responsibility, adjustments, cp.is_reversal
                ),
                "contractual_adjustment": contractual_amount(adjustments),
                "payer_balance_change": payer_change,
                "patient_balance_change": patient_change,
                "trace_number": p.trace_number,
                "payment_date": p.payment_date,
                "file_name": p.file_name,
                "crossover_carrier": (tt.id or tt.last_or_org or None) if tt else None,
            },
        }
    )
