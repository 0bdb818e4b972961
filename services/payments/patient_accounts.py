"""Patient accounts after the payers (issue 21 item 4): credit applied when patient
responsibility arrives (or taken back while it waits for the next payer), the plan review job,
and the ``payments.patient_account`` event followup's statements read.

Called in the caller's transaction: 835 posting (``after_posting``), claim.submitted
(``on_claims_registered``), the HTTP API and the plan review job. Every credit moved here
leaves a balanced journal entry and an audit record naming the account.
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

import asyncpg

from services.payments import patient_repository as prepo
from services.payments import repository as repo
from services.payments.domain.patient_ar import (
    ClaimState,
    Plan,
    pending_next_payer,
    plan_status,
)
from services.payments.domain.patient_payments import credit_application
from shared import audit
from shared.events import PatientAccountUpdated
from shared.messaging import Emitter

ZERO = Decimal("0.00")
# CLP02 19/20, remarks MA18/N89 (and NM1*TT): the payer forwarded the claim to the next payer.
CROSSOVER_STATUS = frozenset({"19", "20"})
CROSSOVER_REMARKS = frozenset({"MA18", "N89"})
SYSTEM = audit.Actor("payments", "service")


def is_crossover(status_code: str, remarks) -> bool:
    return status_code in CROSSOVER_STATUS or any(r.upper() in CROSSOVER_REMARKS for r in remarks)


async def pending(conn: asyncpg.Connection, encounters: list[str]) -> set[str]:
    """Which of ``encounters`` have patient responsibility pending a next payer."""
    claims: dict[str, list[ClaimState]] = {}
    for r in await prepo.original_claims(conn, encounters):
        claims.setdefault(r["encounter_id"], []).append(
            ClaimState(r["claim_id"], r["payer_id"], frozenset(r["posted_payers"]))
        )
    crossovers = await prepo.crossover_payers(conn, encounters)
    return {
        e for e in encounters if pending_next_payer(claims.get(e, []), crossovers.get(e, set()))
    }


async def after_posting(
    conn: asyncpg.Connection, claims: dict[str, asyncpg.Record], postings, emitter: Emitter
) -> None:
    """After claim payments posted on ``claims``: record crossovers, then apply each account's
    unapplied credit to what the patient now owes, unless that waits for a next payer."""
    await prepo.record_crossovers(
        conn,
        [
            (p.remittance_id, p.claim_id, claims[p.claim_id]["encounter_id"], p.payer_id)
            for p in postings
            if not p.cp.is_reversal
            and (
                p.cp.crossover_carrier is not None  # NM1*TT: the payer names where it sent it
                or is_crossover(
                    p.cp.status_code,
                    [*p.cp.remarks, *(r for sl in p.cp.service_lines for r in sl.remarks)],
                )
            )
        ],
    )
    accounts = sorted({c["encounter_id"] for c in claims.values()})
    await prepo.lock_accounts(conn, accounts)
    credit = {a: v for a, v in (await prepo.credit_of(conn, accounts)).items() if v > 0}
    if not credit:
        return
    waiting = await pending(conn, sorted(credit))
    every = [r["claim_id"] for r in await prepo.encounter_claims_of(conn, sorted(credit))]
    owed: dict[str, list] = {}
    for b in await repo.claim_balances(conn, every):
        owed.setdefault(b["encounter_id"], []).append(b)
    moved: dict[str, str] = {}
    for account, rows in owed.items():
        if account in waiting:
            continue
        # The account's balance, not each claim's: a next payer's claim takes what the prior
        # payers left to the patient off the patient receivable on its own claim (the ledger's
        # COB transfer) while the share sits on the first.
        left = min(credit[account], sum((b["patient_balance"] for b in rows), ZERO))
        for b in rows:
            amount = min(left, b["patient_balance"])
            if amount <= 0:
                continue
            left -= amount
            source = f"credit-applied:{b['claim_id']}:{uuid.uuid4()}"
            await prepo.post_patient_entry(
                conn,
                "credit_applied",
                source,
                b["claim_id"],
                account,
                credit_application(b["claim_id"], amount),
                memo="unallocated patient credit applied to patient responsibility from an 835",
            )
            await _audit_credit(
                conn, "credit_application", b["claim_id"], source, account, b["site_id"]
            )
            moved[account] = b["site_id"]
    for account, site in moved.items():
        await emit_account(conn, emitter, account, site)


async def on_claims_registered(
    conn: asyncpg.Connection, claim_ids: list[str], emitter: Emitter
) -> None:
    """A claim billed to a next payer registered: credit applied to its encounter's earlier
    patient responsibility goes back to the account's credit until that payer adjudicates."""
    if not claim_ids:
        return
    encounters = sorted(
        {r["encounter_id"] for r in (await repo.claim_routing(conn, claim_ids)).values()}
    )
    waiting = await pending(conn, encounters)
    if not waiting:
        return
    await prepo.lock_accounts(conn, sorted(waiting))
    rows = await prepo.encounter_claims_of(conn, sorted(waiting))
    applied = await prepo.credit_applied_per_claim(conn, [r["claim_id"] for r in rows])
    moved: dict[str, str] = {}
    for r in rows:
        amount = applied.get(r["claim_id"], ZERO)
        if amount <= 0:
            continue
        source = f"credit-withdrawn:{r['claim_id']}:{uuid.uuid4()}"
        await prepo.post_patient_entry(
            conn,
            "credit_withdrawn",
            source,
            r["claim_id"],
            r["encounter_id"],
            [ln._replace(amount=-ln.amount) for ln in credit_application(r["claim_id"], amount)],
            memo="patient responsibility pending the next payer: applied credit taken back",
        )
        await _audit_credit(
            conn, "credit_withdrawal", r["claim_id"], source, r["encounter_id"], r["site_id"]
        )
        moved[r["encounter_id"]] = r["site_id"]
    for account, site in moved.items():
        await emit_account(conn, emitter, account, site)


async def _audit_credit(conn, resource: str, claim_id: str, source: str, account: str, site: str):
    await audit.append(
        conn,
        repo.SCHEMA,
        SYSTEM,
        [audit.AuditEvent("update", resource, [claim_id, source], account, site)],
    )


async def account_state(conn: asyncpg.Connection, account: str) -> dict:
    """The account as ``payments.patient_account`` carries it (also answered over HTTP)."""
    totals = await prepo.account_totals(conn, account)
    plan = await prepo.newest_plan(conn, account)
    plan_out = None
    if plan is not None:
        paid = await prepo.paid_towards(conn, plan)
        plan_out = {
            "plan_id": plan["plan_id"],
            "status": plan["status"],
            "instalment_amount": plan["instalment_amount"],
            "period": plan["period"],
            "next_due_date": _plan(plan).next_due(paid) if plan["status"] == "active" else None,
        }
    return {
        "account": account,
        "payments_received": totals["received"] - totals["refunded"],
        "credit": totals["credit"],
        "pending_next_payer": account in await pending(conn, [account]),
        "plan": plan_out,
    }


async def emit_account(conn: asyncpg.Connection, emitter: Emitter, account: str, site: str) -> None:
    """Queue the account's current state (with a new version) for followup."""
    state = await account_state(conn, account)
    state["version"] = await prepo.next_version(conn)
    emitter.emit(PatientAccountUpdated(site_id=site, encounter_id=account, payload=state))


def _plan(row) -> Plan:
    return Plan(
        row["total"],
        row["instalment_amount"],
        row["period"],
        row["first_due_date"],
        row["grace_days"],
    )


async def review_plans(
    conn: asyncpg.Connection, as_of: date, sites: list[str] | None, emitter: Emitter
) -> list[dict]:
    """The plan review job: each active plan of ``sites`` whose status changed on ``as_of``
    (an instalment missed past the grace period: defaulted; paid off: completed) is updated,
    audited and announced. Returns the changes (ids and statuses, no PHI)."""
    changed = []
    for row in await prepo.active_plans(conn, sites):
        status = plan_status(_plan(row), row["paid"], as_of)
        if status == row["status"]:
            continue
        await prepo.set_plan_status(conn, row["plan_id"], status)
        await audit.append(
            conn,
            repo.SCHEMA,
            SYSTEM,
            [
                audit.AuditEvent(
                    "job",
                    "payment_plan",
                    [str(row["plan_id"]), f"status={status}", f"as_of={as_of.isoformat()}"],
                    row["account"],
                    row["site_id"],
                )
            ],
        )
        await emit_account(conn, emitter, row["account"], row["site_id"])
        changed.append({"plan_id": row["plan_id"], "site_id": row["site_id"], "status": status})
    return changed
