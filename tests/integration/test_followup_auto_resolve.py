"""Followup closes a work item when the condition that opened it goes away, on the real stack,
even while a biller holds it: the held claim goes out and the biller's item is resolved with the
reason and its lease ends."""

from __future__ import annotations

import json
import uuid
from datetime import date, timedelta
from decimal import Decimal

import pytest

from shared.events import ClaimHeld, ClaimHeldPayload, Reason
from tests.integration.pipeline_support import fetch, wait_for
from tests.integration.test_followup_typical_journey import (
    BILLING_RULES,
    items_of,
    lease,
    new_site,
    running_followup,
    submitted,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def followup(settings, stack_endpoints):
    async with running_followup(settings, stack_endpoints) as f:
        yield f


def held(site: str, claim_id: str, dos: date) -> ClaimHeld:
    """claim.held as billing publishes it for a billing provider without an NPI."""
    return ClaimHeld(
        site_id=site,
        encounter_id=f"E-{claim_id}",
        payload=ClaimHeldPayload(
            claim_id=claim_id,
            payer_id="AETNA1",
            total_charge=Decimal("180.00"),
            service_date=dos,
            reasons=[
                Reason(
                    code="BILLING_NPI_MISSING",
                    message="billing provider NPI is missing",
                    field="billing_provider.npi",
                )
            ],
            filing_deadline=BILLING_RULES.filing_deadline("AETNA1", "CI", dos),
        ),
    )


async def test_a_leased_item_is_resolved_when_its_claim_goes_out_and_the_lease_ends(followup):
    site = new_site("autoresolve")
    claim_id = f"C{uuid.uuid4().hex[:12].upper()}"
    dos = date.today() - timedelta(days=3)
    await followup.publish(held(site, claim_id, dos))
    [item] = await items_of(followup, claim_id)
    assert item["source_key"] == f"held:{claim_id}" and item["status"] == "open"

    async with followup.client(user="biller-auto", sites=[site]) as client:
        taken = await lease(client, site=site)
        assert taken["work_item_id"] == item["work_item_id"]
        token = taken["lease_token"]

        # the claim goes out (the biller supplied the NPI in billing) while the biller holds it
        await followup.publish(submitted(site, claim_id, charge="180.00", dos=dos))
        await wait_for(
            followup.dsn,
            "SELECT status FROM followup.work_item WHERE work_item_id = $1",
            item["work_item_id"],
            predicate=lambda s: s == "resolved",
            timeout=30,
        )
        [row] = await fetch(
            followup.dsn,
            "SELECT resolution, resolved_by, lease_token, lease_expires_at"
            " FROM followup.work_item WHERE work_item_id = $1",
            item["work_item_id"],
        )
        assert row["resolution"] == "claim released and submitted"
        assert row["resolved_by"] == "system"
        assert row["lease_token"] is None and row["lease_expires_at"] is None
        [audited] = await fetch(
            followup.dsn,
            "SELECT user_id, detail FROM followup.work_audit"
            " WHERE work_item_id = $1 AND action = 'auto_resolve'",
            item["work_item_id"],
        )
        assert audited["user_id"] == "system"
        assert json.loads(audited["detail"]) == {
            "resolution": "claim released and submitted",
            "lease_ended": "biller-auto",
        }

        # the biller's lease is over: an action with it is refused, not applied
        r = await client.post(
            f"/work/{item['work_item_id']}/actions",
            json={"lease_token": token, "action": "resolve", "reason": "done by hand"},
        )
        assert r.status_code == 409, r.text
        # and nothing is left in the biller's queue for that site
        assert (await client.post("/work/next", params={"site": site})).status_code == 204
