"""The patient statement run: who owes what after insurance, one PDF per account, dunning cycles.

A statement goes to each patient account (site + opaque account key) whose patient
balance is above the threshold: cycle 0 at once, reminders 30/60/90 days after the
previous one (``needs_statement``), none once the balance is paid (<= 0) or after
the final notice. The balance is what the payers left to the patient less what the patient
paid (payments' patient accounts, less refunds); an encounter whose patient responsibility
still waits for a next payer (a coverage whose payer has not adjudicated) is left out until it
has; an account keeping to an active payment plan gets no further dunning cycle, and each
statement shows the payments received and the plan's status (``patient_accounts``). Each statement is a PDF under the statements directory, a row in
``statement`` and a ``followup.statement_issued`` event (outbox), all in the run's
transaction. The guarantor's name and address go into the PDF only.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path

import asyncpg

from services.followup import repository as repo
from services.followup.domain.statements import (
    StatementLine,
    amount_due,
    build_statement,
    needs_statement,
    plan_line,
    render_pdf,
)
from services.followup.parties import guarantor_lines, practice_name
from services.followup.patient_accounts import EncounterFacts, statement_facts
from shared.events import StatementIssued, StatementIssuedPayload
from shared.logs import log
from shared.mailbox import FILE_MODE, private_file
from shared.messaging import Emitter

_log = logging.getLogger("rcm.followup.statements")


def statement_line(claim) -> StatementLine:
    """One line per claim: billed, what insurance paid, adjustments, and what the patient owes now."""
    codes = [ln.get("code") for ln in json.loads(claim["lines"] or "[]") if ln.get("code")]
    more = f" and {len(codes) - 1} more service(s)" if len(codes) > 1 else ""
    billed, paid, due = claim["total_charge"], claim["paid"], claim["patient_balance"]
    return StatementLine(
        service_date=claim["service_date"],
        code=codes[0] if codes else "-",
        description=f"Services{more} (claim {claim['claim_id']})",
        billed=billed,
        insurance_paid=paid,
        adjustments=billed - paid - due,
        patient_due=due,
    )


def _render_private(statement, path: Path) -> None:
    """The statement's PDF (the guarantor's name and address: PHI), 0600 in a 0700 directory."""
    render_pdf(statement, private_file(path))
    path.chmod(FILE_MODE)  # whatever the renderer did: still only rcm's


async def run_statements(
    pool: asyncpg.Pool,
    as_of: date,
    *,
    statements_dir: Path,
    threshold: Decimal,
    on_commit: Callable[[], None] | None = None,
    sites: list[str] | None = None,
) -> dict:
    """Issue the statements due on ``as_of`` for the accounts of ``sites`` (all when None); return
    counts and the statements issued (ids, no PHI)."""
    emitter = Emitter(repo.SCHEMA)
    issued: list[dict] = []
    skipped = waiting = paused = 0
    async with pool.acquire() as conn, conn.transaction():
        await repo.lock_statement_run(conn)
        rows = await repo.patient_balances(conn, sites)
        facts = await statement_facts(conn, sorted({r["encounter_id"] for r in rows}))
        accounts: dict[tuple[str, str], list] = {}
        for r in rows:
            if facts[r["encounter_id"]].waiting_next_payer:
                waiting += 1  # the next payer has not adjudicated: not the patient's yet
                continue
            accounts.setdefault((r["site_id"], r["account_key"]), []).append(r)
        last = await repo.last_statements(conn)
        for (site_id, account), claims in sorted(accounts.items()):
            of_account = [facts[e] for e in sorted({c["encounter_id"] for c in claims})]
            received = sum((f.payments_received for f in of_account), Decimal("0.00"))
            balance = amount_due(
                sum((c["patient_balance"] for c in claims), Decimal("0.00")), received
            )
            plan = _plan_of(of_account)
            prev = last.get((site_id, account))
            current = plan is not None and plan.plan_status == "active"
            cycle = needs_statement(
                balance,
                threshold,
                prev["statement_date"] if prev else None,
                prev["cycle"] if prev else None,
                as_of,
                plan_current=current,
            )
            if cycle is None:
                if current and prev is not None and balance > threshold:
                    paused += 1
                continue
            latest = max(claims, key=lambda c: (c["service_date"] or date.min, c["claim_id"]))
            addressed = next(
                (
                    g
                    for c in sorted(
                        claims, key=lambda c: c["service_date"] or date.min, reverse=True
                    )
                    if (g := guarantor_lines(c["guarantor"])) is not None
                ),
                None,
            )
            if addressed is None:
                skipped += 1  # no guarantor address on record: nothing to mail
                continue
            statement_id = f"ST{as_of:%Y%m%d}-{account}-{cycle}"
            statement = build_statement(
                statement_id,
                account,
                practice_name(latest["billing_provider"], site_id),
                addressed[0],
                addressed[1],
                [statement_line(c) for c in claims],
                as_of,
                cycle,
                payments_received=received,
                claim_ids=[c["claim_id"] for c in claims],
                plan=plan
                and plan_line(
                    plan.plan_status, plan.plan_instalment, plan.plan_period, plan.plan_next_due
                ),
            )
            file_name = f"{statement_id}.pdf"
            if not await repo.insert_statement(
                conn,
                statement_id=statement_id,
                site_id=site_id,
                account_key=account,
                encounter_id=latest["encounter_id"],
                claim_ids=list(statement.claim_ids),
                amount_due=statement.amount_due,
                cycle=cycle,
                statement_date=as_of,
                due_date=statement.due_date,
                file_name=file_name,
            ):
                continue  # this cycle went out already (a concurrent or repeated run)
            await asyncio.to_thread(_render_private, statement, statements_dir / file_name)
            emitter.emit(
                StatementIssued(
                    site_id=site_id,
                    encounter_id=latest["encounter_id"],
                    payload=StatementIssuedPayload(
                        statement_id=statement_id,
                        claim_ids=list(statement.claim_ids),
                        amount_due=statement.amount_due,
                        due_date=statement.due_date,
                        cycle=cycle,
                        file_name=file_name,
                    ),
                )
            )
            issued.append(
                {
                    "statement_id": statement_id,
                    "site_id": site_id,
                    "account_key": account,
                    "cycle": cycle,
                    "amount_due": str(statement.amount_due),
                    "file_name": file_name,
                }
            )
        await emitter.flush(conn)
    if issued and on_commit:
        on_commit()
    log(
        _log,
        logging.INFO,
        "statement run",
        count=len(issued),
        status=f"skipped_no_address={skipped} waiting_next_payer={waiting} paused_by_plan={paused}",
    )
    return {
        "as_of": as_of.isoformat(),
        "issued": issued,
        "skipped_no_address": skipped,
        "waiting_next_payer": waiting,  # claims left out: a next payer has not adjudicated
        "paused_by_plan": paused,  # accounts whose dunning a current payment plan pauses
        "directory": str(statements_dir),
    }


def _plan_of(facts: list[EncounterFacts]) -> EncounterFacts | None:
    """The account's plan to show: an active one first, else the latest known."""
    with_plan = [f for f in facts if f.plan_status is not None]
    active = [f for f in with_plan if f.plan_status == "active"]
    return (active or with_plan or [None])[-1]
