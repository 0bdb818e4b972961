"""Billing against the real Postgres: a claim held for missing billing data is released by a
newer document version of its encounter; an older one is ignored; a sent claim is never
rebuilt (rolled back: the running pipeline never sees these claims)."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import pytest

from services.billing.context import BillingContext
from services.billing.domain.payer_rules import load_sample_payer_rules
from services.billing.handlers import make_handler
from shared import icd10cm
from shared.events import ClaimHeld, ClaimSubmitted, CodedProcedure, Organization, parse_event
from shared.messaging import Emitter
from tests.integration.billing_support import billing_rolled_back
from tests.integration.pipeline_support import RECENT
from tests.integration.test_billing_submission import _coded
from tests.unit.billing.billing_support import SITES, coverage, make_coded

pytestmark = pytest.mark.integration
OFFICE = [
    CodedProcedure(code="99213", diagnosis_pointers=[1, 2]),
    CodedProcedure(code="29540", diagnosis_pointers=[1]),
]


def _events(emitter: Emitter, kind):
    return [e for e in (parse_event(row[3]) for row in emitter.rows) if isinstance(e, kind)]


async def test_a_newer_version_releases_a_held_claim_an_older_is_ignored(
    stack_endpoints, tmp_path
) -> None:
    icd10cm.load()
    ctx = BillingContext(outbound_dir=tmp_path, payer_rules=load_sample_payer_rules(), ncci=None)
    handle = make_handler(SimpleNamespace(context=ctx))
    enc = f"MI-{uuid.uuid4().hex[:8].upper()}"

    def version(n: int, **kw):
        return make_coded(
            encounter_id=enc, service_date=RECENT, procedures=OFFICE, document_version=n, **kw
        )

    bare = Organization(name="North Clinic")  # no NPI, EIN or address from the EHR
    v1 = version(
        # Intake leaves the payer id empty when neither the EHR nor the registry gives one.
        1,
        billing_provider=bare,
        coverages=[coverage(payer_id="", payer_name="Aetna")],
    )
    v2 = version(2, billing_provider=SITES["north-clinic"], coverages=[])  # still no coverage
    v3 = version(3, coverages=[coverage(payer_id="AETNA1", payer_name="Aetna")])
    v4 = version(4, coverages=[coverage(payer_id="BCBS01", payer_name="Blue Cross")])
    async with billing_rolled_back(stack_endpoints["postgres"]) as conn:
        steps = []
        for coded in (v1, v2, v1, v3, v4):
            emitter = Emitter("billing")
            await handle(conn, [_coded(coded)], emitter)
            status = await conn.fetchval(
                "SELECT status FROM billing.claim WHERE encounter_id = $1", enc
            )
            open_items = await conn.fetchval(
                "SELECT count(*) FROM billing.work_item w JOIN billing.claim c USING (claim_id)"
                " WHERE c.encounter_id = $1 AND w.status = 'open'",
                enc,
            )
            steps.append((status, open_items, emitter))
        noted = await conn.fetchval(
            "SELECT count(*) FROM billing.claim_history h JOIN billing.claim c USING (claim_id)"
            " WHERE c.encounter_id = $1 AND h.detail ? 'documentation_after_submission'",
            enc,
        )
    [held1] = _events(steps[0][2], ClaimHeld)
    assert {r.field for r in held1.payload.reasons} == {
        "billing_provider.npi",
        "billing_provider.tax_id",
        "billing_provider.address",
        "payer.payer_id",
    }
    [held2] = _events(steps[1][2], ClaimHeld)  # held again: only the coverage is missing now
    assert [r.field for r in held2.payload.reasons] == ["payer"]
    assert steps[1][:2] == ("held", 1)
    assert steps[2][2].rows == [] and steps[2][:2] == ("held", 1)  # v1 again: ignored
    [sent] = _events(steps[3][2], ClaimSubmitted)
    assert steps[3][:2] == ("submitted", 0) and sent.payload.payer_id == "AETNA1"
    # newer documentation of a sent claim: never re-sent as an original, noted in its history
    assert steps[4][2].rows == [] and steps[4][0] == "submitted" and noted == 1
