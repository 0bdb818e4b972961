"""Patient payments over HTTP on the real stack (issue 21 item 4): allocation to a claim's
patient responsibility, idempotent retries, a reused key with another body, card numbers
refused, and credit applied when patient responsibility arrives from an 835."""

from __future__ import annotations

import httpx
import pytest

from shared.auth import issue
from shared.settings import AuthSettings
from tests.integration import payments_support as harness
from tests.integration.payments_support import Clp, D, era_835, new_id, submitted

payments = harness.payments
ledger_invariant = harness.ledger_invariant
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("ledger_invariant")]


async def _post(payments, body: dict, key: str) -> httpx.Response:
    token = issue(AuthSettings().token_secret, "pp-tests", "biller", ["SITE-PAY"])
    async with httpx.AsyncClient(base_url=payments.url, timeout=30) as client:
        return await client.post(
            "/patient-payments",
            json=body,
            headers={"authorization": f"Bearer {token}", "idempotency-key": key},
        )


async def _with_patient_share(payments, pr: str = "20.00") -> str:
    payer, claim = new_id("PY"), new_id("CL")
    await payments.register(submitted(claim, D("150.00"), payer_id=payer))
    clp = Clp(
        claim, D("150.00"), D("80.00"), pr=D(pr), cas=[("CO", "45", D("50.00")), ("PR", "1", D(pr))]
    )
    era = era_835([clp], payer_id=payer, trace=new_id("TRN"))
    assert await payments.drop(era) == "processed"
    return claim


async def _ledger_total(payments) -> D:
    return await payments.pool.fetchval(
        "SELECT coalesce(sum(amount), 0) FROM payments.journal_line"
    )


async def test_a_payment_allocated_to_the_patient_share_clears_it_and_retries_are_idempotent(
    payments,
):
    claim = await _with_patient_share(payments)
    assert await payments.balance(claim) == (D("0.00"), D("20.00"))
    body = {
        "account": f"ENC-{claim}",
        "amount": "20.00",
        "method": "check",
        "check_number": "1042",
        "allocations": [{"claim_id": claim, "amount": "20.00"}],
    }
    key = new_id("IDEM")
    first = await _post(payments, body, key)
    assert first.status_code == 201, first.text
    assert first.json()["allocations"] == [{"claim_id": claim, "amount": "20.00"}]
    assert await payments.balance(claim) == (D("0.00"), D("0.00"))
    assert await _ledger_total(payments) == 0
    again = await _post(payments, body, key)
    assert again.status_code == 200 and again.json() == first.json()
    n = await payments.pool.fetchval(
        "SELECT count(*) FROM payments.patient_payment WHERE idempotency_key = $1", key
    )
    assert n == 1
    other = await _post(payments, body | {"amount": "25.00"}, key)
    assert other.status_code == 409
    pb = await payments.get(f"/claims/{claim}/patient-balance")
    assert pb["patient_balance"] == "0.00" and pb["account_credit"] == "0.00"


async def test_a_card_number_is_refused_naming_the_field_without_the_value(payments):
    claim = await _with_patient_share(payments)
    pan = "4111 1111 1111 1111"
    body = {
        "account": f"ENC-{claim}",
        "amount": "5.00",
        "method": "card",
        "processor_reference": pan,
    }
    r = await _post(payments, body, new_id("IDEM"))
    assert r.status_code == 422
    assert "processor_reference" in r.text and "4111" not in r.text


async def test_unallocated_credit_is_applied_when_patient_responsibility_posts(payments):
    payer, claim = new_id("PY"), new_id("CL")
    await payments.register(submitted(claim, D("150.00"), payer_id=payer))
    # Paid at the desk before the payer adjudicated: all of it credit on the account.
    body = {"account": f"ENC-{claim}", "amount": "30.00", "method": "cash"}
    r = await _post(payments, body, new_id("IDEM"))
    assert r.status_code == 201 and r.json()["account_credit"] == "30.00"
    credits = {c["account"]: c["credit"] for c in await payments.get("/credits")}
    assert credits[f"ENC-{claim}"] == "30.00"
    clp = Clp(
        claim,
        D("150.00"),
        D("80.00"),
        pr=D("20.00"),
        cas=[("CO", "45", D("50.00")), ("PR", "1", D("20.00"))],
    )
    assert await payments.drop(era_835([clp], payer_id=payer, trace=new_id("TRN"))) == "processed"
    assert await payments.balance(claim) == (D("0.00"), D("0.00"))
    pb = await payments.get(f"/claims/{claim}/patient-balance")
    assert pb["account_credit"] == "10.00"
    kinds = await payments.pool.fetch(
        "SELECT kind, memo FROM payments.journal_entry WHERE claim_id = $1 ORDER BY entry_id", claim
    )
    assert kinds[-1]["kind"] == "credit_applied" and "credit applied" in kinds[-1]["memo"]
    assert await _ledger_total(payments) == 0
