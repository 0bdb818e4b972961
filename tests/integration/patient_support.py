"""What the patient-side tests (statements, A/R aging) set up alike: a claim on which the payer's
835 leaves part of the charge to the patient, and calls to payments' API as a biller."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import httpx

from shared.auth import issue
from shared.mailbox import write_atomically
from shared.settings import AuthSettings
from tests.integration.payments_support import Clp, era_835
from tests.integration.pipeline_support import wait_for
from tests.integration.test_followup_typical_journey import new_site, submitted


@dataclass(frozen=True)
class PatientClaim:
    site: str
    mrn: str
    claim_id: str
    encounter_id: str


async def patient_owes(
    followup, label: str, *, days_ago: int, charge: str = "150.00", paid: str = "60.00"
) -> PatientClaim:
    """A claim of ``charge`` submitted ``days_ago`` days ago at a new site, and the payer's
    835 (through payments' mailbox) paying ``paid``, the rest the patient's (PR-1), once
    followup shows that balance."""
    site, mrn = new_site(label), f"M{uuid.uuid4().hex[:6]}"
    cid = f"C{uuid.uuid4().hex[:12].upper()}"
    payer = f"PT{uuid.uuid4().hex[:6].upper()}"
    dos = date.today() - timedelta(days=days_ago)
    await followup.publish(submitted(site, cid, charge=charge, dos=dos, mrn=mrn, payer_id=payer))
    await wait_for(followup.dsn, "SELECT count(*) FROM payments.claim WHERE claim_id = $1", cid)
    share = Decimal(charge) - Decimal(paid)
    clp = Clp(cid, Decimal(charge), Decimal(paid), pr=share, cas=[("PR", "1", share)])
    era = era_835([clp], payer_id=payer, trace=f"T{uuid.uuid4().hex[:10]}")
    write_atomically(followup.settings.inbound_dir, f"ERA{uuid.uuid4().hex[:8]}.835", era)
    await wait_for(
        followup.dsn,
        "SELECT patient_balance FROM followup.claim WHERE claim_id = $1",
        cid,
        predicate=lambda v: v == share,
    )
    return PatientClaim(site, mrn, cid, f"E-{cid}")


async def payments_call(followup, method: str, path: str, site: str, role="biller", **kw):
    """One request to payments' API as ``role`` of ``site`` (a fresh Idempotency-Key)."""
    token = issue(AuthSettings().token_secret, f"stmt-{role}", role, [site])
    headers = {"authorization": f"Bearer {token}", "idempotency-key": uuid.uuid4().hex}
    async with httpx.AsyncClient(base_url=followup.payments_url, timeout=30) as client:
        return await client.request(method, path, headers=headers, **kw)
