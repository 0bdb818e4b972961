"""Followup with RCM_FOLLOWUP_PAYMENTS_URL set: write-offs are checked against payments' ledger, which posts them."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal

import httpx
import pytest

from shared.auth import issue
from shared.settings import AuthSettings
from tests.integration.pipeline_support import fetchval, wait_for
from tests.integration.test_followup_typical_journey import (
    items_of,
    lease,
    new_site,
    remitted,
    running_followup,
    submitted,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def followup(settings, stack_endpoints):
    async with running_followup(settings, stack_endpoints, with_payments=True) as f:
        yield f


async def payments_balance(url: str, claim_id: str) -> dict | None:
    token = issue(AuthSettings().token_secret, "ledger-tests", "biller", ["*"])
    async with httpx.AsyncClient(
        base_url=url, timeout=10, headers={"authorization": f"Bearer {token}"}
    ) as client:
        r = await client.get(f"/claims/{claim_id}/balance")
    return r.json() if r.status_code == 200 else None


async def test_write_off_uses_payments_balance_and_payments_posts_it(followup):
    site = new_site("ledger")
    cid = f"C{uuid.uuid4().hex[:12].upper()}"
    await followup.publish(
        submitted(site, cid, charge="130.00", dos=date.today() - timedelta(days=14))
    )
    await wait_for(followup.dsn, "SELECT count(*) FROM payments.claim WHERE claim_id = $1", cid)
    assert (await payments_balance(followup.payments_url, cid))["payer_balance"] == "130.00"
    # Only followup sees this remittance (it did not come through payments' 835 mailbox), so its
    # projection says nothing is open while payments' ledger still holds the 130.00 charge.
    await followup.publish(
        remitted(site, cid, charge="130.00", paid="30.00", adjustments=[("CO", "50", "100.00")])
    )
    [item] = await items_of(followup, cid)
    assert item["category"] == "medical necessity" and item["amount"] == Decimal("100.00")
    assert (
        await fetchval(
            followup.dsn, "SELECT payer_balance FROM followup.claim WHERE claim_id = $1", cid
        )
        == 0
    )
    async with followup.client(sites=[site]) as client:
        leased = await lease(client)
        body = {
            "lease_token": leased["lease_token"],
            "action": "write_off",
            "reason": "medical necessity not met",
        }
        r = await client.post(
            f"/work/{item['work_item_id']}/actions", json={**body, "amount": "130.01"}
        )
        assert r.status_code == 422 and "open balance 130.00" in r.json()["detail"]
        r = await client.post(
            f"/work/{item['work_item_id']}/actions", json={**body, "amount": "100.00"}
        )
        assert r.status_code == 200, r.text
    status = await wait_for(
        followup.dsn,
        "SELECT status FROM payments.writeoff WHERE request_id = $1",
        r.json()["request_id"],
    )
    assert status == "posted"
    assert (await payments_balance(followup.payments_url, cid))["payer_balance"] == "30.00"
