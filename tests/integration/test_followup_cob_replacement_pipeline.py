"""On the whole pipeline (intake to followup, the payer simulator, real Kafka and PostgreSQL):
a primary corrected after the secondary paid re-bills the secondary as a replacement (7), and
followup's balances of every claim of the encounter are then payments' ledger balances, claim
by claim. Followup used to charge the secondary's replacement its full charge, where payments
moves only the secondary payer's open balance to it (``registration_entries``)."""

from __future__ import annotations

import json

import pytest

from tests.integration.cob_support import (
    MEDICARE,
    SUPPLEMENT,
    medicare_encounters,
    replace_paid_secondary,
    send_and_code,
)
from tests.integration.pipeline_support import fetchval, wait_for

pytestmark = pytest.mark.integration

# Per claim of the encounter: "payer/patient" balance in followup's projection and in
# payments' ledger (payer_receivable, patient_receivable).
BOTH = (
    "SELECT jsonb_build_object("
    " 'followup', (SELECT jsonb_object_agg(claim_id, payer_balance || '/' || patient_balance)"
    "  FROM followup.claim WHERE encounter_id = $1 AND submitted_at IS NOT NULL),"
    " 'payments', (SELECT jsonb_object_agg(c.claim_id, ("
    "  SELECT coalesce(sum(amount) FILTER (WHERE account = 'payer_receivable'), 0)::numeric(12,2)"
    "  || '/' ||"
    "  coalesce(sum(amount) FILTER (WHERE account = 'patient_receivable'), 0)::numeric(12,2)"
    "  FROM payments.journal_line l WHERE l.claim_id = c.claim_id))"
    "  FROM payments.claim c WHERE c.encounter_id = $1))::text"
)


async def test_followup_balances_are_payments_after_the_secondary_is_replaced(pipeline):
    dsn = pipeline.dsn
    (sample,) = medicare_encounters(
        21901,
        [MEDICARE, SUPPLEMENT],
        "cobrepl",
        want=lambda f: not f["ack_rejected"] and not f["denied"],
    )
    await send_and_code(pipeline, [sample])
    encounter = sample.encounter.encounter_id
    primary, secondary, replacement = await replace_paid_secondary(pipeline, sample)

    def same(v) -> bool:
        both = json.loads(v) if v else {}
        f, p = both.get("followup") or {}, both.get("payments") or {}
        return replacement in f and replacement in p and f == p

    got = json.loads(await wait_for(dsn, BOTH, encounter, predicate=same, timeout=180))
    assert got["followup"] == got["payments"]
    assert {primary, secondary, replacement} <= set(got["followup"])
    charge = await fetchval(
        dsn, "SELECT total_charge FROM billing.claim WHERE claim_id = $1", replacement
    )
    # the replacement is not charged: its payer balance is at most what the plan still owed
    assert got["followup"][replacement].split("/")[0] != f"{charge:.2f}"
