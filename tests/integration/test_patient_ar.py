"""Patient A/R on the real stack (issue 21 item 4): credit applied when patient responsibility
posts (audited), credit that waits while a next payer has not adjudicated, the refund
lifecycle, and payment plans that default or complete under the review job."""

from __future__ import annotations

import re
from datetime import date, timedelta

import httpx
import pytest

from shared.auth import issue
from shared.settings import AuthSettings
from tests.integration import payments_support as harness
from tests.integration.payments_support import Clp, D, era_835, new_id, submitted

payments = harness.payments
ledger_invariant = harness.ledger_invariant
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("ledger_invariant")]


async def _call(
    payments, method, path, *, role="biller", user=None, key=None, sites=("SITE-PAY",), **kw
):
    token = issue(AuthSettings().token_secret, user or f"ar-{role}", role, list(sites))
    headers = {"authorization": f"Bearer {token}"}
    if key:
        headers["idempotency-key"] = key
    async with httpx.AsyncClient(base_url=payments.url, timeout=30) as client:
        return await client.request(method, path, headers=headers, **kw)


async def _pay(payments, account: str, amount: str) -> None:
    body = {"account": account, "amount": amount, "method": "cash"}
    r = await _call(payments, "POST", "/patient-payments", key=new_id("IDEM"), json=body)
    assert r.status_code == 201, r.text


def _with_pr(claim: str, pr: str, status: str = "1", paid: str = "80.00") -> Clp:
    co = D("150.00") - D(paid) - D(pr)
    return Clp(
        claim,
        D("150.00"),
        D(paid),
        status=status,
        pr=D(pr),
        cas=[("CO", "45", co), ("PR", "1", D(pr))],
    )


async def _account(payments, account: str) -> dict:
    r = await _call(payments, "GET", f"/patient-accounts/{account}")
    assert r.status_code == 200, r.text
    return r.json()


async def _audits(payments, resource: str, account: str) -> list:
    return await payments.pool.fetch(
        "SELECT action, resource_ids, actor FROM payments.audit_record"
        " WHERE resource_type = $1 AND account_key = $2 ORDER BY seq",
        resource,
        account,
    )


async def test_credit_is_applied_when_patient_responsibility_posts_with_an_audit_record(payments):
    payer, claim = new_id("PY"), new_id("CL")
    account = f"ENC-{claim}"
    await payments.register(submitted(claim, D("150.00"), payer_id=payer))
    await _pay(payments, account, "50.00")
    assert (
        await payments.drop(era_835([_with_pr(claim, "20.00")], payer_id=payer, trace=new_id("T")))
        == "processed"
    )
    assert await payments.balance(claim) == (D("0.00"), D("0.00"))
    state = await _account(payments, account)
    assert (state["credit"], state["payments_received"], state["pending_next_payer"]) == (
        "30.00",
        "50.00",
        False,
    )
    [applied] = await _audits(payments, "credit_application", account)
    assert applied["action"] == "update" and applied["resource_ids"][0] == claim
    assert applied["actor"] == "payments"


async def test_credit_waits_while_the_next_payer_has_not_adjudicated(payments):
    primary_payer, secondary_payer = new_id("PY"), new_id("PY")
    claim, second = new_id("CL"), new_id("CL")
    account = f"ENC-{claim}"
    await payments.register(submitted(claim, D("150.00"), payer_id=primary_payer))
    await _pay(payments, account, "20.00")
    era = era_835([_with_pr(claim, "20.00")], payer_id=primary_payer, trace=new_id("T"))
    assert await payments.drop(era) == "processed"
    assert (await _account(payments, account))["credit"] == "0.00"  # applied: no next payer known
    # billing bills the secondary (same encounter): the applied credit goes back to the account
    secondary = submitted(second, D("150.00"), payer_id=secondary_payer)
    await payments.register(secondary.model_copy(update={"encounter_id": account}))
    state = await _account(payments, account)
    assert state["pending_next_payer"] is True and state["credit"] == "20.00"
    assert len(await _audits(payments, "credit_withdrawal", account)) == 1
    assert await payments.balance(claim) == (D("0.00"), D("20.00"))
    # the secondary pays 15.00 of the 20.00: 5.00 is the patient's, settled from the credit
    # (OA 23: the prior payer's adjudication, not posted again)
    sec = Clp(
        second,
        D("150.00"),
        D("15.00"),
        status="2",
        pr=D("5.00"),
        cas=[("OA", "23", D("130.00")), ("PR", "1", D("5.00"))],
    )
    era2 = era_835([sec], payer_id=secondary_payer, trace=new_id("T"))
    assert await payments.drop(era2) == "processed"
    state = await _account(payments, account)
    assert state["pending_next_payer"] is False and state["credit"] == "15.00"
    owed = sum([(await payments.balance(c))[1] for c in (claim, second)], D(0))
    assert owed == D("0.00")


def _with_crossover_carrier(era: str) -> str:
    """The 835 with an NM1*TT (crossover carrier) after the patient's NM1, SE's count kept."""
    era = era.replace(
        "NM1*QC*1*TESTPATIENT*PAT~", "NM1*QC*1*TESTPATIENT*PAT~NM1*TT*2*MEDIGAP PLAN~"
    )
    return re.sub(r"~SE\*(\d+)\*", lambda m: f"~SE*{int(m.group(1)) + 1}*", era)


@pytest.mark.parametrize("sign", ["CLP02 19", "NM1*TT"])
async def test_a_crossover_keeps_credit_off_the_patient_share(payments, sign):
    payer, claim = new_id("PY"), new_id("CL")
    account = f"ENC-{claim}"
    await payments.register(submitted(claim, D("150.00"), payer_id=payer))
    await _pay(payments, account, "20.00")
    status = "19" if sign == "CLP02 19" else "1"
    era = era_835([_with_pr(claim, "20.00", status=status)], payer_id=payer, trace=new_id("T"))
    if sign == "NM1*TT":
        era = _with_crossover_carrier(era)
    assert await payments.drop(era) == "processed"
    state = await _account(payments, account)
    assert state["pending_next_payer"] is True and state["credit"] == "20.00"
    assert await payments.balance(claim) == (D("0.00"), D("20.00"))
    pb = await payments.get(f"/claims/{claim}/patient-balance")
    assert pb["pending_next_payer"] is True and pb["patient_balance"] == "20.00"


async def test_refund_goes_requested_approved_issued_once_each(payments):
    payer, claim = new_id("PY"), new_id("CL")
    account = f"ENC-{claim}"
    await payments.register(submitted(claim, D("150.00"), payer_id=payer))
    await _pay(payments, account, "50.00")
    assert (
        await payments.drop(era_835([_with_pr(claim, "20.00")], payer_id=payer, trace=new_id("T")))
        == "processed"
    )
    credits = {c["account"]: c for c in (await _call(payments, "GET", "/credits")).json()}
    assert credits[account]["credit"] == "30.00" and credits[account]["refund_pending"] == "0.00"
    body = {"account": account, "amount": "30.00", "method": "check", "reason": "overpaid"}
    too_much = await _call(
        payments, "POST", "/refunds", user="ann", key=new_id("K"), json=body | {"amount": "30.01"}
    )
    assert too_much.status_code == 422 and "amount" in too_much.text
    key = new_id("K")
    asked = await _call(payments, "POST", "/refunds", user="ann", key=key, json=body)
    assert asked.status_code == 201 and asked.json()["state"] == "requested", asked.text
    refund_id = asked.json()["refund_id"]
    again = await _call(payments, "POST", "/refunds", user="ann", key=key, json=body)
    assert again.status_code == 201 and again.json()["refund_id"] == refund_id
    other = await _call(
        payments, "POST", "/refunds", user="ann", key=key, json=body | {"reason": "x"}
    )
    assert other.status_code == 409
    credits = {c["account"]: c for c in (await _call(payments, "GET", "/credits")).json()}
    assert credits[account]["refund_pending"] == "30.00"
    early = await _call(payments, "POST", f"/refunds/{refund_id}/issue", user="ann")
    assert early.status_code == 409
    own = await _call(
        payments, "POST", f"/refunds/{refund_id}/approve", role="supervisor", user="ann"
    )
    assert own.status_code == 403
    by_biller = await _call(payments, "POST", f"/refunds/{refund_id}/approve", user="bob")
    assert by_biller.status_code == 403
    for _ in range(2):
        ok = await _call(
            payments, "POST", f"/refunds/{refund_id}/approve", role="supervisor", user="sue"
        )
        assert ok.status_code == 200 and ok.json()["state"] == "approved"
        assert ok.json()["approved_by"] == "sue"
    for _ in range(2):
        issued = await _call(payments, "POST", f"/refunds/{refund_id}/issue", user="ann")
        assert issued.status_code == 200 and issued.json()["state"] == "issued", issued.text
    lines = await payments.pool.fetch(
        "SELECT l.account, l.amount, l.claim_id FROM payments.journal_line l JOIN"
        " payments.journal_entry e USING (entry_id) WHERE e.source = $1 ORDER BY l.account",
        f"refund:{refund_id}",
    )
    assert [(r["account"], r["amount"], r["claim_id"]) for r in lines] == [
        ("cash_clearing", D("-30.00"), None),
        ("patient_credit", D("30.00"), None),
    ]
    state = await _account(payments, account)
    assert (state["credit"], state["payments_received"]) == ("0.00", "20.00")
    assert account not in {c["account"] for c in (await _call(payments, "GET", "/credits")).json()}
    trail = await _audits(payments, "refund", account)
    steps = [tuple(r["resource_ids"]) for r in trail if r["action"] != "read"]
    # the retries (same key, approve and issue again) are reads on the trail, not changes
    assert sum(r["action"] == "read" for r in trail) == 3
    assert steps == [
        (str(refund_id),),
        (str(refund_id), "state=approved"),
        (str(refund_id), "state=issued"),
    ]
    listed = (await _call(payments, "GET", "/refunds", params={"state": "issued"})).json()
    assert refund_id in {r["refund_id"] for r in listed}


async def test_a_plan_defaults_after_a_missed_instalment_and_another_completes(payments):
    payer, claim = new_id("PY"), new_id("CL")
    account = f"ENC-{claim}"
    await payments.register(submitted(claim, D("150.00"), payer_id=payer))
    era = era_835([_with_pr(claim, "90.00", paid="40.00")], payer_id=payer, trace=new_id("T"))
    assert await payments.drop(era) == "processed"
    today = date.today()
    body = {
        "account": account,
        "instalment_amount": "30.00",
        "period": "weekly",
        "first_due_date": today.isoformat(),
        "grace_days": 5,
    }
    key = new_id("K")
    made = await _call(payments, "POST", "/payment-plans", key=key, json=body)
    assert made.status_code == 201, made.text
    plan = made.json()
    assert (plan["total"], plan["status"]) == ("90.00", "active")
    second = await _call(payments, "POST", "/payment-plans", key=new_id("K"), json=body)
    assert second.status_code == 409
    same = await _call(payments, "POST", "/payment-plans", key=key, json=body)
    assert same.json()["plan_id"] == plan["plan_id"]
    state = await _account(payments, account)
    assert (
        state["plan"]["status"] == "active" and state["plan"]["next_due_date"] == today.isoformat()
    )

    async def review(as_of: date) -> list:
        r = await _call(
            payments,
            "POST",
            "/payment-plans/review",
            role="supervisor",
            params={"as_of": as_of.isoformat()},
        )
        assert r.status_code == 200, r.text
        return [c for c in r.json()["changed"] if c["plan_id"] == plan["plan_id"]]

    assert await review(today + timedelta(days=5)) == []  # within the grace period
    # another site's supervisor reviews that site's plans only
    r = await _call(
        payments,
        "POST",
        "/payment-plans/review",
        role="supervisor",
        sites=("SITE-ELSEWHERE",),
        params={"as_of": (today + timedelta(days=60)).isoformat()},
    )
    assert r.status_code == 200 and plan["plan_id"] not in {
        c["plan_id"] for c in r.json()["changed"]
    }
    [changed] = await review(today + timedelta(days=6))
    assert changed["status"] == "defaulted"
    assert (await _account(payments, account))["plan"]["status"] == "defaulted"
    [job] = [r for r in await _audits(payments, "payment_plan", account) if r["action"] == "job"]
    assert "status=defaulted" in job["resource_ids"]
    # A new plan, paid off at once: the job completes it.
    again = await _call(payments, "POST", "/payment-plans", key=new_id("K"), json=body)
    assert again.status_code == 201, again.text
    body_pay = {
        "account": account,
        "amount": "90.00",
        "method": "card",
        "processor_reference": "ch_plan_payoff",
        "allocations": [{"claim_id": claim, "amount": "90.00"}],
    }
    paid = await _call(payments, "POST", "/patient-payments", key=new_id("IDEM"), json=body_pay)
    assert paid.status_code == 201, paid.text
    [done] = [
        c
        for c in (await _call(payments, "POST", "/payment-plans/review", role="supervisor")).json()[
            "changed"
        ]
        if c["plan_id"] == again.json()["plan_id"]
    ]
    assert done["status"] == "completed"
    assert await payments.balance(claim) == (D("0.00"), D("0.00"))


async def _rcm(payments, *args: str) -> tuple[int, str, str]:
    """Run the rcm command against the test's payments service (a development token)."""
    import asyncio
    import sys

    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "rcm.cli.main",
        *args,
        "--url",
        payments.url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, out.decode(), err.decode()


async def test_rcm_patient_payment_and_refund_commands(payments):
    import json

    payer, claim = new_id("PY"), new_id("CL")
    account = f"ENC-{claim}"
    await payments.register(submitted(claim, D("150.00"), payer_id=payer))
    era = era_835([_with_pr(claim, "20.00")], payer_id=payer, trace=new_id("T"))
    assert await payments.drop(era) == "processed"
    key = new_id("CLI")
    pay = ("patient-payment", "--account", account, "--amount", "50.00", "--method", "check",
           "--check-number", "5521", "--allocate", f"{claim}=20.00", "--idempotency-key", key)  # fmt: skip
    rc, out, err = await _rcm(payments, *pay)
    assert rc == 0, err
    first = json.loads(out)
    assert first["account_credit"] == "30.00"
    rc, out, _ = await _rcm(payments, *pay)  # a retry with the same key: the same payment
    assert rc == 0 and json.loads(out)["payment_id"] == first["payment_id"]
    assert await payments.balance(claim) == (D("0.00"), D("0.00"))
    rc, out, err = await _rcm(
        payments, "refund", "request", "--account", account, "--amount", "30.00",
        "--reason", "overpaid", "--user", "cli-ann",
    )  # fmt: skip
    assert rc == 0, err
    refund_id = str(json.loads(out)["refund_id"])
    rc, _, err = await _rcm(payments, "refund", "approve", refund_id, "--role", "supervisor",
                            "--user", "cli-ann")  # fmt: skip
    assert rc == 2 and "403" in err
    rc, out, err = await _rcm(payments, "refund", "approve", refund_id, "--role", "supervisor",
                              "--user", "cli-sue")  # fmt: skip
    assert rc == 0 and json.loads(out)["state"] == "approved", err
    rc, out, err = await _rcm(payments, "refund", "issue", refund_id, "--user", "cli-ann")
    assert rc == 0 and json.loads(out)["state"] == "issued", err
    assert (await _account(payments, account))["credit"] == "0.00"
