"""Patient payments (issue 21 item 4): take one (idempotent), a claim's patient balance, the
credit work list. Every call site-scoped and audited.

The patient account is the encounter id (payments knows a claim's encounter, not the patient:
migration 005); credit is kept and applied per encounter.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from services.payments import patient_repository as prepo
from services.payments import repository as repo
from services.payments.api import patient_ar
from services.payments.api.deps import BalanceReader, State
from services.payments.domain.patient_payments import (
    Allocation,
    PatientPayment,
    PaymentError,
    credit_application,
    fingerprint,
    receipt_entry,
    validate,
)
from services.payments.patient_accounts import emit_account, pending
from shared import audit, clock
from shared.auth import Principal, sites_filter
from shared.jsonutil import plain
from shared.messaging import Emitter
from shared.service import requires

router = APIRouter()
PaymentTaker = Annotated[Principal, requires("biller", "supervisor", "integration")]
CreditReader = Annotated[Principal, requires("biller", "supervisor", "auditor")]


class AllocationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    claim_id: str = Field(min_length=1, max_length=38)
    amount: Decimal = Field(max_digits=12, decimal_places=2)


class PatientPaymentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    account: str = Field(min_length=1, max_length=38, description="the encounter id")
    amount: Decimal = Field(max_digits=12, decimal_places=2)
    method: Literal["cash", "check", "card"]
    received_date: date | None = None
    check_number: str | None = Field(default=None, max_length=40)
    processor_reference: str | None = Field(default=None, max_length=100)
    allocations: list[AllocationIn] = Field(default_factory=list, max_length=50)


def _refused(field: str, message: str) -> HTTPException:
    return HTTPException(422, [{"loc": ["body", *field.split(".")], "msg": message}])


@router.post("/patient-payments")
async def take_payment(
    body: PatientPaymentIn,
    request: Request,
    p: PaymentTaker,
    api: State,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
):
    """Take one patient payment: cash in to the account's credit, then each allocation applied
    to its claim's patient receivable. ``Idempotency-Key`` required: the same key with the same
    body answers the first result (200), with another body 409. 422 names the field at fault
    (a card-number-looking value is refused without being repeated)."""
    if not idempotency_key:
        raise HTTPException(422, [{"loc": ["header", "Idempotency-Key"], "msg": "required"}])
    payment = PatientPayment(
        account=body.account,
        amount=body.amount,
        method=body.method,
        received_date=body.received_date or clock.today(),
        check_number=body.check_number,
        processor_reference=body.processor_reference,
        allocations=tuple(Allocation(a.claim_id, a.amount) for a in body.allocations),
    )
    try:
        validate(payment)
    except PaymentError as e:
        raise _refused(e.field, str(e)) from None
    digest = fingerprint(body.model_dump(mode="json"))
    async with api.pool.acquire() as conn, conn.transaction():
        claims = {r["claim_id"]: r for r in await prepo.encounter_claims(conn, body.account)}
        if not claims:
            raise HTTPException(404, "account: no claim of this encounter is known to payments")
        site = next(iter(claims.values()))["site_id"]
        if not p.can_access(site):
            raise HTTPException(403, "account belongs to another site")
        await prepo.lock_accounts(conn, [body.account])
        earlier = await prepo.payment_by_key(conn, site, idempotency_key)
        if earlier is not None:
            if earlier["fingerprint"] != digest:
                raise HTTPException(409, "Idempotency-Key already used with another body")
            await _audit(conn, request, p, "read", earlier["payment_id"], body.account, site)
            return await _result(conn, earlier["payment_id"], body.account)
        for i, a in enumerate(payment.allocations):
            c = claims.get(a.claim_id)
            if c is None:
                raise _refused(f"allocations.{i}.claim_id", "not a claim of this account")
            if a.amount > c["patient_balance"]:
                raise _refused(f"allocations.{i}.amount", "exceeds the claim's patient balance")
        payment_id = await _insert(conn, payment, site, idempotency_key, digest, p)
        await prepo.post_patient_entry(
            conn,
            "patient_payment",
            f"patient-payment:{payment_id}",
            None,
            body.account,
            receipt_entry(payment),
        )
        for a in payment.allocations:
            await prepo.post_patient_entry(
                conn,
                "credit_applied",
                f"patient-payment:{payment_id}:{a.claim_id}",
                a.claim_id,
                body.account,
                credit_application(a.claim_id, a.amount),
                memo=f"patient payment {payment_id} allocated",
            )
        await _audit(conn, request, p, "create", payment_id, body.account, site)
        result = await _result(conn, payment_id, body.account)
        emitter = Emitter(repo.SCHEMA)  # followup's statements show the payment
        await emit_account(conn, emitter, body.account, site)
        await emitter.flush(conn)
    return JSONResponse(result, status_code=201)


async def _insert(conn, payment, site, key, digest, p) -> int:
    payment_id = await prepo.insert_payment(
        conn, payment, site_id=site, key=key, fingerprint=digest, created_by=p.user_id
    )
    if payment_id is None:  # taken meanwhile by a concurrent request with the same key
        raise HTTPException(409, "Idempotency-Key in use by a concurrent request")
    return payment_id


async def _audit(conn, request, p, action, payment_id, account, site) -> None:
    await audit.record(
        conn,
        repo.SCHEMA,
        request,
        p,
        action,
        "patient_payment",
        [str(payment_id)],
        account_key=account,
        site_id=site,
    )


async def _result(conn, payment_id: int, account: str) -> dict:
    allocations = await prepo.allocations_of(conn, payment_id)
    credit = (await prepo.credit_of(conn, [account])).get(account, Decimal("0.00"))
    return plain(
        {
            "payment_id": payment_id,
            "account": account,
            "allocations": [plain(a) for a in allocations],
            "account_credit": credit,
        }
    )


@router.get("/claims/{claim_id}/patient-balance")
async def patient_balance(claim_id: str, request: Request, p: BalanceReader, api: State):
    """A claim's patient balance, its account's unapplied credit and whether that balance still
    waits for a next payer (not the patient's to pay yet); 404 unknown, 403 other site."""
    async with api.pool.acquire() as conn, conn.transaction():
        rows = await repo.claim_balances(conn, [claim_id])
        if not rows:
            raise HTTPException(404, f"claim {claim_id} not known to payments")
        (row,) = rows
        if not p.can_access(row["site_id"]):
            raise HTTPException(403, f"claim {claim_id} belongs to another site")
        account = row["encounter_id"]
        credit = (await prepo.credit_of(conn, [account])).get(account, Decimal("0.00"))
        waiting = account in await pending(conn, [account])
        await audit.record(
            conn,
            repo.SCHEMA,
            request,
            p,
            "read",
            "patient_balance",
            [claim_id],
            account_key=account,
            site_id=row["site_id"],
        )
    return plain(
        {
            "claim_id": claim_id,
            "account": account,
            "site_id": row["site_id"],
            "patient_balance": row["patient_balance"],
            "account_credit": credit,
        }
    ) | {"pending_next_payer": waiting}  # the balance waits for a next payer's 835


@router.get("/credits")
async def credits(request: Request, p: CreditReader, api: State, limit: int = Query(1000, gt=0)):
    """Patient accounts holding unapplied credit (the credit balances work list), largest first."""
    async with api.pool.acquire() as conn, conn.transaction():
        rows = await prepo.credits(conn, sites=sites_filter(p), limit=min(limit, api.page_limit))
        await audit.append(
            conn,
            repo.SCHEMA,
            audit.Actor.of(request, p),
            [
                audit.AuditEvent(
                    "read", "patient_credit", [r["account"]], r["account"], r["site_id"]
                )
                for r in rows
            ],
        )
    return [plain(dict(r)) for r in rows]


# Refunds, payment plans and account state: one more router, served with this one.
router.include_router(patient_ar.router)
