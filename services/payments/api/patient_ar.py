"""Patient A/R over HTTP (issue 21 item 4): refunds of credit balances (requested -> approved ->
issued), payment plans and their review job, an account's state. Site-scoped and audited;
every step idempotent (a key on creation, the state itself on transitions)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Header, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from services.payments import patient_accounts as accounts
from services.payments import patient_repository as prepo
from services.payments import repository as repo
from services.payments.api.deps import State
from services.payments.domain.patient_ar import (
    APPROVED,
    DEFAULT_GRACE_DAYS,
    ISSUED,
    PERIOD_DAYS,
    Plan,
    TransitionRefused,
    refund_entry,
    refund_transition,
    validate_plan,
    validate_refund,
)
from services.payments.domain.patient_payments import PaymentError, fingerprint
from shared import audit, clock
from shared.auth import Principal, sites_filter
from shared.jsonutil import plain
from shared.messaging import Emitter
from shared.service import requires

router = APIRouter()
BillingStaff = Annotated[Principal, requires("biller", "supervisor")]
Supervisor = Annotated[Principal, requires("supervisor")]
Reader = Annotated[Principal, requires("biller", "supervisor", "auditor")]
JobRunner = Annotated[Principal, requires("supervisor", "ops", "service")]
Key = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]


def _refused(where: str, field: str, message: str) -> HTTPException:
    return HTTPException(422, [{"loc": [where, *field.split(".")], "msg": message}])


def _need_key(key: str | None) -> str:
    if not key:
        raise _refused("header", "Idempotency-Key", "required")
    return key


async def _account_site(conn, account: str, p: Principal) -> str:
    site = await prepo.account_site(conn, account)
    if site is None:
        raise HTTPException(404, "account: no claim of this encounter is known to payments")
    if not p.can_access(site):
        raise HTTPException(403, "account belongs to another site")
    return site


async def _audit(conn, request, p, action, kind, ids, account, site) -> None:
    await audit.record(
        conn, repo.SCHEMA, request, p, action, kind, ids, account_key=account, site_id=site
    )


# ---------------------------------------------------------------------------- refunds


class RefundIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    account: str = Field(min_length=1, max_length=38, description="the encounter id")
    amount: Decimal = Field(max_digits=12, decimal_places=2)
    method: Literal["check", "card", "cash"]
    reference: str | None = Field(default=None, max_length=100)
    reason: str = Field(min_length=1, max_length=200)


def _refund_out(r) -> dict:
    return plain(
        {
            k: r[k]
            for k in (
                "refund_id",
                "site_id",
                "account",
                "amount",
                "method",
                "state",
                "requested_by",
                "approved_by",
                "issued_by",
            )
        }
    )


@router.post("/refunds", status_code=201)
async def request_refund(
    body: RefundIn, request: Request, p: BillingStaff, api: State, idempotency_key: Key = None
):
    """Ask for a refund of an account's credit (``Idempotency-Key`` required: the same key and
    body answer the first refund, another body 409). 422 names the field: more than the credit
    not already being refunded, a card-number-looking reference."""
    key = _need_key(idempotency_key)
    digest = fingerprint(body.model_dump(mode="json"))
    async with api.pool.acquire() as conn, conn.transaction():
        site = await _account_site(conn, body.account, p)
        await prepo.lock_accounts(conn, [body.account])
        earlier = await prepo.refund_by_key(conn, site, key)
        if earlier is not None:
            if earlier["fingerprint"] != digest:
                raise HTTPException(409, "Idempotency-Key already used with another body")
            rid = [str(earlier["refund_id"])]
            await _audit(conn, request, p, "read", "refund", rid, body.account, site)
            return _refund_out(earlier)
        credit = (await prepo.credit_of(conn, [body.account])).get(body.account, Decimal(0))
        open_refunds = sum(
            (
                r["amount"]
                for r in await prepo.refunds_of(conn, body.account)
                if r["state"] != ISSUED
            ),
            Decimal(0),
        )
        try:
            validate_refund(body.amount, body.method, body.reference, credit - open_refunds)
        except PaymentError as e:
            raise _refused("body", e.field, str(e)) from None
        refund_id = await prepo.insert_refund(
            conn,
            site_id=site,
            account=body.account,
            amount=body.amount,
            method=body.method,
            reference=body.reference,
            reason=body.reason,
            idempotency_key=key,
            fingerprint=digest,
            requested_by=p.user_id,
        )
        if refund_id is None:
            raise HTTPException(409, "Idempotency-Key in use by a concurrent request")
        await _audit(conn, request, p, "create", "refund", [str(refund_id)], body.account, site)
        return _refund_out(await prepo.get_refund(conn, refund_id))


async def _move(refund_id: int, target: str, request: Request, p: Principal, api) -> dict:
    emitter = Emitter(repo.SCHEMA)
    async with api.pool.acquire() as conn, conn.transaction():
        r = await prepo.get_refund(conn, refund_id)
        if r is None:
            raise HTTPException(404, f"refund {refund_id} not found")
        if not p.can_access(r["site_id"]):
            raise HTTPException(403, f"refund {refund_id} belongs to another site")
        await prepo.lock_accounts(conn, [r["account"]])
        r = await prepo.get_refund(conn, refund_id, for_update=True)
        try:
            changes = refund_transition(r["state"], target, r["requested_by"], p.user_id)
        except TransitionRefused as e:
            raise HTTPException(e.status, str(e)) from None
        if not changes:  # already there: a retry, answered as it stands
            await _audit(
                conn, request, p, "read", "refund", [str(refund_id)], r["account"], r["site_id"]
            )
            return _refund_out(r)
        if target == ISSUED:
            credit = (await prepo.credit_of(conn, [r["account"]])).get(r["account"], Decimal(0))
            if r["amount"] > credit:
                raise HTTPException(409, f"refund exceeds the account's credit ({credit})")
            await prepo.post_patient_entry(
                conn,
                "refund",
                f"refund:{refund_id}",
                None,
                r["account"],
                refund_entry(r["amount"]),
                memo=f"patient refund {refund_id} issued",
            )
        await prepo.set_refund_state(conn, refund_id, target, p.user_id)
        await _audit(
            conn,
            request,
            p,
            "update",
            "refund",
            [str(refund_id), f"state={target}"],
            r["account"],
            r["site_id"],
        )
        if target == ISSUED:
            await accounts.emit_account(conn, emitter, r["account"], r["site_id"])
            await emitter.flush(conn)
        return _refund_out(await prepo.get_refund(conn, refund_id))


@router.post("/refunds/{refund_id}/approve")
async def approve_refund(refund_id: int, request: Request, p: Supervisor, api: State):
    """Approve a requested refund: a supervisor other than its requester (403 otherwise);
    approving an approved one answers it unchanged; 409 out of order."""
    return await _move(refund_id, APPROVED, request, p, api)


@router.post("/refunds/{refund_id}/issue")
async def issue_refund(refund_id: int, request: Request, p: BillingStaff, api: State):
    """Issue an approved refund: the credit is paid out (patient_credit debited, cash credited,
    one journal entry); issuing it again answers it unchanged; 409 unless approved or when the
    credit no longer covers it."""
    return await _move(refund_id, ISSUED, request, p, api)


@router.get("/refunds")
async def list_refunds(
    request: Request,
    p: Reader,
    api: State,
    state: Literal["requested", "approved", "issued"] | None = None,
    limit: int = Query(1000, gt=0),
):
    """Refunds of the caller's sites (a state's work list with ``state``), oldest first."""
    async with api.pool.acquire() as conn, conn.transaction():
        rows = await prepo.refunds(
            conn, sites=sites_filter(p), state=state, limit=min(limit, api.page_limit)
        )
        await audit.append(
            conn,
            repo.SCHEMA,
            audit.Actor.of(request, p),
            [
                audit.AuditEvent(
                    "read", "refund", [str(r["refund_id"])], r["account"], r["site_id"]
                )
                for r in rows
            ],
        )
    return [plain(dict(r)) for r in rows]


# ---------------------------------------------------------------------------- payment plans


class PlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    account: str = Field(min_length=1, max_length=38, description="the encounter id")
    instalment_amount: Decimal = Field(max_digits=12, decimal_places=2)
    period: Literal["weekly", "biweekly", "monthly"]
    first_due_date: date | None = None
    grace_days: int = DEFAULT_GRACE_DAYS


def _plan_out(r) -> dict:
    keys = ("plan_id", "site_id", "account", "total", "instalment_amount", "period")
    return plain({k: r[k] for k in (*keys, "first_due_date", "grace_days", "status", "created_by")})


@router.post("/payment-plans", status_code=201)
async def create_plan(
    body: PlanIn, request: Request, p: BillingStaff, api: State, idempotency_key: Key = None
):
    """Set up a payment plan for the account's open patient balance (less its credit), first
    instalment one period from today unless ``first_due_date``. 409 when the account already
    has an active plan or the key was used with another body; 422 names the field."""
    key = _need_key(idempotency_key)
    digest = fingerprint(body.model_dump(mode="json"))
    emitter = Emitter(repo.SCHEMA)
    async with api.pool.acquire() as conn, conn.transaction():
        site = await _account_site(conn, body.account, p)
        await prepo.lock_accounts(conn, [body.account])
        earlier = await prepo.plan_by_key(conn, site, key)
        if earlier is not None:
            if earlier["fingerprint"] != digest:
                raise HTTPException(409, "Idempotency-Key already used with another body")
            pid = [str(earlier["plan_id"])]
            await _audit(conn, request, p, "read", "payment_plan", pid, body.account, site)
            return _plan_out(earlier)
        owed = sum(
            (r["patient_balance"] for r in await prepo.encounter_claims(conn, body.account)),
            Decimal(0),
        ) - (await prepo.credit_of(conn, [body.account])).get(body.account, Decimal(0))
        today = clock.today()
        first_due = body.first_due_date or today + timedelta(days=PERIOD_DAYS[body.period])
        plan = Plan(owed, body.instalment_amount, body.period, first_due, body.grace_days)
        try:
            validate_plan(plan, owed)
        except PaymentError as e:
            raise _refused("body", e.field, str(e)) from None
        if first_due < today:
            raise _refused("body", "first_due_date", "cannot be in the past")
        plan_id = await prepo.insert_plan(
            conn,
            site_id=site,
            account=body.account,
            total=owed,
            instalment_amount=body.instalment_amount,
            period=body.period,
            first_due_date=first_due,
            grace_days=body.grace_days,
            idempotency_key=key,
            fingerprint=digest,
            created_by=p.user_id,
        )
        if plan_id is None:
            raise HTTPException(409, "the account has an active plan (or the key is in use)")
        await _audit(conn, request, p, "create", "payment_plan", [str(plan_id)], body.account, site)
        await accounts.emit_account(conn, emitter, body.account, site)
        await emitter.flush(conn)
        return _plan_out(await prepo.get_plan(conn, plan_id))


@router.post("/payment-plans/review")
async def review_plans(request: Request, p: JobRunner, api: State, as_of: date | None = None):
    """The plan review job over the caller's sites (the service runs it daily over all):
    a plan with an instalment missed past its grace period defaults, a paid-off one completes."""
    as_of = as_of or clock.today()
    emitter = Emitter(repo.SCHEMA)
    async with api.pool.acquire() as conn, conn.transaction():
        changed = await accounts.review_plans(conn, as_of, sites_filter(p), emitter)
        await emitter.flush(conn)
        scope = ["sites=*"] if p.all_sites else [f"sites={','.join(sorted(p.sites))}"]
        await audit.record(
            conn, repo.SCHEMA, request, p, "job", "plan_review", [f"as_of={as_of}", *scope]
        )
    return {"as_of": as_of.isoformat(), "changed": changed}


@router.get("/patient-accounts/{account}")
async def patient_account(account: str, request: Request, p: Reader, api: State):
    """An account's patient side: payments received (less refunds), credit, whether its
    patient responsibility waits for a next payer, and its newest plan."""
    async with api.pool.acquire() as conn, conn.transaction():
        site = await _account_site(conn, account, p)
        state = await accounts.account_state(conn, account)
        await _audit(conn, request, p, "read", "patient_account", [account], account, site)
    plan = state["plan"] and plain(state["plan"])
    return plain(state | {"site_id": site}) | {"plan": plan}
