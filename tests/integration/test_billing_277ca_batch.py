"""A 277CA that refuses a whole 837 above its claims, on the real Postgres (issue 21 item 5).

Payers that refuse a batch at the information receiver (HL 21) or billing provider (HL 19)
level list no claims beneath it. The 277CA here is imsweb's real rejected 277CA (BSD 3-clause,
tests/fixtures/x12/billing/imsweb) with its patient loop dropped and its receiver loop's TRN*2
set to the BHT03 of the 837 billing just wrote: every claim of that 837 is rejected, visibly.
"""

from __future__ import annotations

import json
import uuid
from types import SimpleNamespace

import pytest

from services.billing.acks_inbound import apply_ack
from services.billing.context import BillingContext
from services.billing.domain.payer_rules import load_sample_payer_rules
from services.billing.handlers import make_handler
from shared import db, icd10cm
from shared.events import ClaimRejected, CodedProcedure, EncounterCoded, parse_event
from shared.mailbox import InboundMailbox
from shared.messaging import Emitter, Inbound
from shared.topics import ENCOUNTER_CODED
from shared.x12 import split_segments
from tests.integration.billing_support import BILLING, billing_rolled_back
from tests.integration.pipeline_support import RECENT
from tests.unit.billing.acks_277ca_support import REJECTED, rebuilt, without_claims
from tests.unit.billing.billing_support import coverage, make_coded
from tests.unit.shared.x12_variants_support import bare, wrapped

pytestmark = pytest.mark.integration


def _coded(payload) -> Inbound:
    event = EncounterCoded(
        site_id=payload.encounter.site_id,
        encounter_id=payload.encounter.encounter_id,
        payload=payload,
    )
    return Inbound(event, ENCOUNTER_CODED, 0, 0)


def _batch_277ca(level: str, stc: str, bht03: str, provider_npi: str | None = None) -> str:
    def edit(segments):
        segments = without_claims(segments)
        hl21 = next(i for i, s in enumerate(segments) if s[0] == "HL" and s[3] == "21")
        trn = next(i for i in range(hl21, len(segments)) if segments[i][0] == "TRN")
        segments[trn][2] = bht03
        hl = next(i for i, s in enumerate(segments) if s[0] == "HL" and s[3] == level)
        nxt = next(i for i in range(hl + 1, len(segments)) if segments[i][0] in ("HL", "SE"))
        for i in range(nxt - 1, hl, -1):
            if segments[i][0] == "STC":
                del segments[i]
            elif segments[i][0] == "NM1" and provider_npi:
                segments[i][9] = provider_npi
        at = next(i for i in range(hl, nxt) if segments[i][0] == "TRN") + 1
        segments.insert(at, ["STC", stc, "20110311", "U"])
        return segments

    return rebuilt(REJECTED, edit)


async def _bill_and_ack(stack_endpoints, tmp_path, ack_for) -> tuple[dict, list, list, list]:
    """Two sites' office visits in one 837P, then the 277CA ``ack_for(bht03, npis)`` returns;
    everything in one transaction that is rolled back (the running pipeline never sees it)."""
    icd10cm.load()
    ctx = BillingContext(outbound_dir=tmp_path, payer_rules=load_sample_payer_rules(), ncci=None)
    handle = make_handler(SimpleNamespace(context=ctx))
    run = uuid.uuid4().hex[:8].upper()
    office = [CodedProcedure(code="99213", diagnosis_pointers=[1, 2])]
    coded = [
        make_coded(
            encounter_id=f"B277-{run}-{i}",
            site_id=site,
            service_date=RECENT,
            procedures=office,
            coverages=[coverage(payer_id="AETNA1", payer_name="Aetna", member_id=f"M{i}{run}")],
        )
        for i, site in enumerate(["north-clinic", "south-urgent-care", "north-clinic"])
    ]
    async with billing_rolled_back(stack_endpoints["postgres"]) as conn:
        await handle(conn, [_coded(p) for p in coded], Emitter("billing"))
        rows = await conn.fetch(
            "SELECT claim_id, encounter_id, file_name, status FROM billing.claim"
            " WHERE encounter_id LIKE $1 ORDER BY encounter_id",
            f"B277-{run}-%",
        )
        assert {r["status"] for r in rows} == {"submitted"}, [dict(r) for r in rows]
        (file_name,) = {r["file_name"] for r in rows}
        content = await conn.fetchval(
            "SELECT content FROM billing.outbound_file WHERE file_name = $1", file_name
        )
        segments, _ = split_segments(content)
        (bht03,) = [s[3] for s in segments if s[0] == "BHT"]
        npis = {
            site: s[9]
            for site, s in zip(
                ["north-clinic", "south-urgent-care"],
                [s for s in segments if s[:2] == ["NM1", "85"]],
                strict=True,
            )
        }
        emitter = Emitter("billing")
        await apply_ack(conn, ack_for(bht03, npis), "277CA_batch.x12", emitter)
        claims = await conn.fetch(
            "SELECT c.claim_id, c.encounter_id, c.status, c.coded->'encounter'->>'site_id' AS site,"
            " (SELECT detail FROM billing.claim_history h WHERE h.claim_id = c.claim_id"
            "  ORDER BY history_id DESC LIMIT 1) AS detail"
            " FROM billing.claim c WHERE encounter_id LIKE $1 ORDER BY encounter_id",
            f"B277-{run}-%",
        )
        work = await conn.fetch(
            "SELECT claim_id, kind FROM billing.work_item WHERE claim_id = ANY($1)",
            [r["claim_id"] for r in claims],
        )
    events = [parse_event(row[3]) for row in emitter.rows]
    return npis, claims, work, events


async def test_a_receiver_level_rejection_rejects_every_claim_of_the_837(stack_endpoints, tmp_path):
    _, claims, work, events = await _bill_and_ack(
        stack_endpoints, tmp_path, lambda bht03, _: _batch_277ca("21", "A3|24|41", bht03)
    )
    assert [c["status"] for c in claims] == ["rejected"] * 3
    for c in claims:
        detail = json.loads(c["detail"])
        assert detail["source"] == "277CA"
        assert [r["code"] for r in detail["reasons"]] == ["A3:24"]
        assert detail["reasons"][0]["message"].startswith("receiver level: ")
    assert sorted(w["claim_id"] for w in work) == sorted(c["claim_id"] for c in claims)
    assert {w["kind"] for w in work} == {"rejection"}
    rejected = [e for e in events if isinstance(e, ClaimRejected)]
    assert sorted(e.payload.claim_id for e in rejected) == sorted(c["claim_id"] for c in claims)
    assert all(e.payload.source == "277CA" and e.payload.reasons for e in rejected)


async def test_a_provider_level_rejection_rejects_that_providers_claims_only(
    stack_endpoints, tmp_path
):
    _, claims, work, events = await _bill_and_ack(
        stack_endpoints,
        tmp_path,
        lambda bht03, npis: _batch_277ca("19", "A3|562|85", bht03, npis["south-urgent-care"]),
    )
    status = {c["site"] + c["encounter_id"][-2:]: c["status"] for c in claims}
    assert status == {
        "north-clinic-0": "submitted",
        "south-urgent-care-1": "rejected",
        "north-clinic-2": "submitted",
    }
    (south,) = [c for c in claims if c["site"] == "south-urgent-care"]
    assert [w["claim_id"] for w in work] == [south["claim_id"]]
    assert [e.payload.claim_id for e in events if isinstance(e, ClaimRejected)] == [
        south["claim_id"]
    ]


async def test_a_batch_rejection_for_an_837_we_never_sent_changes_nothing(
    stack_endpoints, tmp_path
):
    _, claims, work, events = await _bill_and_ack(
        stack_endpoints, tmp_path, lambda bht03, _: _batch_277ca("21", "A3|24|41", "999999-0001")
    )
    assert [c["status"] for c in claims] == ["submitted"] * 3
    assert work == [] and events == []


@pytest.mark.parametrize("shape", ["wrapped and padded", "bare"])
async def test_a_batch_277ca_as_real_mailboxes_deliver_it(stack_endpoints, tmp_path, shape):
    """Through billing's inbound mailbox: wrapped at 80 columns with a Ctrl-Z after IEA, or a
    bare ST..SE with no ISA/GS; classified, parsed and applied like the clean file."""
    run = uuid.uuid4().hex[:8].upper()
    claims = [f"C{run}MBX{i}" for i in range(2)]
    gcn = str(900_000_000 + uuid.uuid4().int % 99_999_999)
    text = _batch_277ca("21", "A3|24|41", f"{gcn}-0001")
    text = wrapped(text) + "\x1a" if shape != "bare" else bare(text)
    pool = await db.create_pool(stack_endpoints["postgres"], min_size=1, max_size=2)
    inbox = tmp_path / "inbound"
    name = f"277CA_{run}.x12"
    try:
        async with pool.acquire() as conn:
            await db.migrate(conn, "billing", BILLING)
            await conn.execute(
                "INSERT INTO billing.claim (claim_id, encounter_id, site_id, payer_id, claim_type,"
                " frequency_code, status, total_charge, service_date, coded) SELECT c, 'E-' || c,"
                " 'qa-batch', 'AETNA1', 'professional', '1', 'submitted', 100, $2, '{}'"
                " FROM unnest($1::text[]) AS c",
                claims,
                RECENT,
            )
            await conn.execute(
                "INSERT INTO billing.submission_file (file_name, interchange_control_number,"
                " group_control_number, claim_type, payer_id, claim_count, transactions, spans)"
                " VALUES ($1, $2, $3, 'professional', 'AETNA1', 2, $4::jsonb, '{}'::jsonb)",
                f"837P_{run}.x12",
                gcn,
                gcn,
                json.dumps({"0001": claims}),
            )
        box = InboundMailbox(
            inbox, frozenset({"277CA"}), "billing", apply_ack, files_per_transaction=1
        )
        (inbox / name).write_text(text)
        assert await box.poll_once(pool) == 1
        async with pool.acquire() as conn:
            status = dict(
                await conn.fetch(
                    "SELECT claim_id, status FROM billing.claim WHERE claim_id = ANY($1)", claims
                )
            )
            taken = await conn.fetchval(
                "SELECT status FROM billing.mailbox_file WHERE file_name = $1", name
            )
    finally:
        async with pool.acquire() as conn:
            for table in ("work_item", "claim_history", "claim"):
                await conn.execute(f"DELETE FROM billing.{table} WHERE claim_id = ANY($1)", claims)
            await conn.execute(
                "DELETE FROM billing.submission_file WHERE interchange_control_number = $1", gcn
            )
            await conn.execute(
                "DELETE FROM billing.outbox WHERE convert_from(body, 'UTF8') LIKE $1", f"%{run}%"
            )
            await conn.execute("DELETE FROM billing.mailbox_file WHERE file_name = $1", name)
        await pool.close()
    assert taken == "processed"
    assert status == {c: "rejected" for c in claims}
