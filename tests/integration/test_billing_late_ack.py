"""An acknowledgement read after the payer's 835 (issue 19's claim timeline), on the real
Postgres: billing writes an 837, the claim is already paid when the 277CA accepting it is
read (the clearinghouse delivered both, and payments posted the 835 first), so the claim
keeps its status and emits nothing, but its history still shows the acceptance."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from rcm.simulation.payer.domain.acknowledge import acknowledge
from rcm.simulation.payer.domain.read_837 import read_837
from rcm.simulation.payer.domain.write_acks import build_277ca
from services.billing.acks_inbound import apply_ack
from services.billing.context import BillingContext
from services.billing.domain.payer_rules import load_sample_payer_rules
from services.billing.handlers import make_handler
from shared import icd10cm
from shared.events import CodedProcedure, EncounterCoded
from shared.messaging import Emitter, Inbound
from shared.topics import ENCOUNTER_CODED
from tests.integration.billing_support import billing_rolled_back
from tests.integration.pipeline_support import RECENT
from tests.unit.billing.billing_support import coverage, make_coded

pytestmark = pytest.mark.integration


async def _ack_after(stack_endpoints, tmp_path, status_first: str) -> tuple[dict, list, list]:
    icd10cm.load()
    ctx = BillingContext(outbound_dir=tmp_path, payer_rules=load_sample_payer_rules(), ncci=None)
    handle = make_handler(SimpleNamespace(context=ctx))
    run = uuid.uuid4().hex[:8].upper()
    payload = make_coded(
        encounter_id=f"LATE-{run}",
        site_id="north-clinic",
        service_date=RECENT,
        procedures=[CodedProcedure(code="99213", diagnosis_pointers=[1])],
        coverages=[coverage(payer_id="AETNA1", payer_name="Aetna", member_id=f"M{run}")],
    )
    event = EncounterCoded(site_id="north-clinic", encounter_id=f"LATE-{run}", payload=payload)
    async with billing_rolled_back(stack_endpoints["postgres"]) as conn:
        await handle(conn, [Inbound(event, ENCOUNTER_CODED, 0, 0)], Emitter("billing"))
        claim = await conn.fetchrow(
            "SELECT claim_id, file_name FROM billing.claim WHERE encounter_id = $1",
            f"LATE-{run}",
        )
        content = await conn.fetchval(
            "SELECT content FROM billing.outbound_file WHERE file_name = $1",
            claim["file_name"],
        )
        await conn.execute(  # the state a posted remittance leaves (billing's handler)
            "UPDATE billing.claim SET status = $2 WHERE claim_id = $1",
            claim["claim_id"],
            status_first,
        )
        sub = read_837(content)
        ack = build_277ca(
            sub,
            {c.claim_id: acknowledge(c) for c in sub.claims},
            interchange_control_number=7,
            group_control_number=7,
            created_at=datetime.now(UTC),
        )
        emitter = Emitter("billing")
        await apply_ack(conn, ack, "277CA_late.x12", emitter)
        row = dict(
            await conn.fetchrow(
                "SELECT status FROM billing.claim WHERE claim_id = $1", claim["claim_id"]
            )
        )
        history = await conn.fetch(
            "SELECT status, detail FROM billing.claim_history WHERE claim_id = $1"
            " ORDER BY history_id",
            claim["claim_id"],
        )
    return row, [(h["status"], json.loads(h["detail"] or "null")) for h in history], emitter.rows


async def test_an_acceptance_read_after_the_remittance_is_history_not_a_status(
    stack_endpoints, tmp_path
):
    claim, history, events = await _ack_after(stack_endpoints, tmp_path, "paid")
    assert claim["status"] == "paid"
    assert history[-1][0] == "accepted"
    assert history[-1][1] == {"source": "277CA", "file_name": "277CA_late.x12", "late": True}
    assert events == []  # nothing downstream moves: the claim was decided already


async def test_an_acceptance_in_time_moves_the_claim(stack_endpoints, tmp_path):
    claim, history, events = await _ack_after(stack_endpoints, tmp_path, "submitted")
    assert claim["status"] == "accepted"
    assert history[-1] == ("accepted", {"source": "277CA", "file_name": "277CA_late.x12"})
    assert len(events) == 1
