"""Billing against the real Postgres: which claims share an 837 file; what remittances do to claims."""

from __future__ import annotations

import asyncio
import calendar
import uuid
from datetime import date, timedelta
from decimal import Decimal
from types import SimpleNamespace

import asyncpg
import pytest

from services.billing.context import BillingContext
from services.billing.domain.payer_rules import load_sample_payer_rules
from services.billing.handlers import make_handler
from services.payments.domain.outcome import remittance_outcome
from shared import db, icd10cm
from shared.events import (
    Adjustment,
    ClaimHeld,
    ClaimSubmitted,
    CodedProcedure,
    EncounterCoded,
    RemittanceReceived,
    RemittanceReceivedPayload,
    parse_event,
)
from shared.messaging import Emitter, Inbound
from shared.topics import ENCOUNTER_CODED, REMITTANCE_RECEIVED
from shared.x12 import split_segments
from tests.integration.billing_support import BILLING, billing_rolled_back
from tests.integration.pipeline_support import RECENT
from tests.unit.billing.billing_support import coverage, make_coded, make_institutional
from tests.x12_support import pyx12_validate

pytestmark = pytest.mark.integration


def _coded(payload) -> Inbound:
    event = EncounterCoded(
        site_id=payload.encounter.site_id,
        encounter_id=payload.encounter.encounter_id,
        payload=payload,
    )
    return Inbound(event, ENCOUNTER_CODED, 0, 0)


async def test_one_837_per_claim_type_carries_every_payer_of_the_batch(
    stack_endpoints, tmp_path
) -> None:
    icd10cm.load()
    ctx = BillingContext(outbound_dir=tmp_path, payer_rules=load_sample_payer_rules(), ncci=None)
    handle = make_handler(SimpleNamespace(context=ctx))
    run = uuid.uuid4().hex[:8].upper()
    payers = [("AETNA1", "Aetna"), ("BCBS01", "Blue Cross Blue Shield"), ("AETNA1", "Aetna")]
    # No imaging line: the sample payer rules want a prior authorization for it (a hold).
    office = [
        CodedProcedure(code="99213", diagnosis_pointers=[1, 2]),
        CodedProcedure(code="29540", diagnosis_pointers=[1]),
    ]
    professional = [
        make_coded(
            encounter_id=f"SUB-{run}-{i}",
            service_date=RECENT,
            procedures=office,
            coverages=[coverage(payer_id=pid, payer_name=name, member_id=f"M{i}{run}")],
        )
        for i, (pid, name) in enumerate(payers)
    ]
    institutional = make_institutional(
        encounter_id=f"SUB-{run}-I",
        service_date=RECENT,
        procedures=[CodedProcedure(code="99284", diagnosis_pointers=[1])],
    )
    # rolled back: the running pipeline's file writer never sees these files
    async with billing_rolled_back(stack_endpoints["postgres"]) as conn:
        emitter = Emitter("billing")
        await handle(conn, [_coded(p) for p in [*professional, institutional]], emitter)
        claims = await conn.fetch(
            "SELECT encounter_id, payer_id, status, file_name FROM billing.claim WHERE encounter_id LIKE $1"
            " ORDER BY encounter_id",
            f"SUB-{run}-%",
        )
        files = {
            r["file_name"]: r["content"]
            for r in await conn.fetch(
                "SELECT file_name, content FROM billing.outbound_file WHERE file_name = ANY($1)",
                list({c["file_name"] for c in claims}),
            )
        }
        recorded = {
            r["file_name"]: r["payer_id"]
            for r in await conn.fetch(
                "SELECT file_name, payer_id FROM billing.submission_file WHERE file_name = ANY($1)",
                list(files),
            )
        }

    assert [c["status"] for c in claims] == ["submitted"] * 4, [dict(c) for c in claims]
    by_type = {c["encounter_id"][-1]: c["file_name"] for c in claims}
    prof_files = {c["file_name"] for c in claims if not c["encounter_id"].endswith("-I")}
    assert (
        len(prof_files) == 1 and len(files) == 2
    )  # three professional claims, two payers: one 837P
    (prof_file,) = prof_files
    assert prof_file.startswith("837P_") and by_type["I"].startswith("837I_")
    assert recorded[prof_file] is None  # several payers
    assert recorded[by_type["I"]] is not None  # one payer: recorded, and named in the file name
    text = files[prof_file]
    payer_ids = [s[9] for s in split_segments(text)[0] if s[0] == "NM1" and s[1] == "PR"]
    assert sorted(payer_ids) == ["AETNA1", "AETNA1", "BCBS01"]
    ok, errors = pyx12_validate(text)
    assert ok, errors
    submitted = [
        e for e in (parse_event(row[3]) for row in emitter.rows) if isinstance(e, ClaimSubmitted)
    ]
    assert len(submitted) == 4 and {e.payload.file_name for e in submitted} == set(files)
    # each carries the filing deadline from billing's payer rules (the one source; followup
    # reads it): Aster Health and Blue Lakes 180 days by contract, the sample commercial plan 90
    assert sorted((e.payload.payer_id, e.payload.filing_deadline) for e in submitted) == [
        ("AETNA1", RECENT + timedelta(days=180)),
        ("AETNA1", RECENT + timedelta(days=180)),
        ("BCBS01", RECENT + timedelta(days=180)),
        ("SAMPLE-COMMERCIAL", RECENT + timedelta(days=90)),
    ]


async def test_a_held_claim_carries_its_filing_deadline(stack_endpoints, tmp_path) -> None:
    """claim.held carries billing's filing deadline too: followup's correction item is due by it."""
    icd10cm.load()
    ctx = BillingContext(outbound_dir=tmp_path, payer_rules=load_sample_payer_rules(), ncci=None)
    handle = make_handler(SimpleNamespace(context=ctx))
    run = uuid.uuid4().hex[:8].upper()
    medicare = coverage(
        payer_id="MCR01", payer_name="Medicare", filing_indicator="MB", member_id=None
    )
    coded = make_coded(encounter_id=f"HELD-{run}", service_date=RECENT, coverages=[medicare])
    # rolled back: the running pipeline never sees this claim
    async with billing_rolled_back(stack_endpoints["postgres"]) as conn:
        emitter = Emitter("billing")
        await handle(conn, [_coded(coded)], emitter)
        status = await conn.fetchval(
            "SELECT status FROM billing.claim WHERE encounter_id = $1", f"HELD-{run}"
        )
    [held] = [e for e in (parse_event(row[3]) for row in emitter.rows) if isinstance(e, ClaimHeld)]
    assert status == "held" and "MEMBER_ID_MISSING" in {r.code for r in held.payload.reasons}
    # Medicare: 12 months from the date of service (42 CFR 424.44), the same day a year on
    # (February 29 has none: the 28th)
    year = RECENT.year + 1
    last_day = calendar.monthrange(year, RECENT.month)[1]
    assert held.payload.filing_deadline == date(year, RECENT.month, min(RECENT.day, last_day))


def _remittance(
    claim_id: str, n: int, *, status: str, paid: str, pccn: str | None, reversal: bool = False
) -> Inbound:
    adjustments = [] if status == "1" else [Adjustment(group="CO", reason="50", amount="100.00")]
    payload = RemittanceReceivedPayload(
        remittance_id=f"R{n}-{claim_id}",
        claim_id=claim_id,
        patient_control_number=claim_id,
        payer_id="AETNA1",
        status_code=status,
        charge="100.00",
        paid=paid,
        patient_responsibility="0.00",
        payer_claim_control_number=pccn,
        adjustments=adjustments,
        is_reversal=reversal,
        outcome=remittance_outcome(status, Decimal(paid), Decimal(0), adjustments, reversal),
    )
    return Inbound(
        RemittanceReceived(site_id="s1", encounter_id=f"E-{claim_id}", payload=payload),
        REMITTANCE_RECEIVED,
        0,
        n,
    )


async def test_remittances_of_one_batch_move_each_claim_to_its_last_state(
    stack_endpoints, tmp_path
) -> None:
    icd10cm.load()
    ctx = BillingContext(outbound_dir=tmp_path, payer_rules=load_sample_payer_rules(), ncci=None)
    handle = make_handler(SimpleNamespace(context=ctx))
    run = uuid.uuid4().hex[:8].upper()
    office = [CodedProcedure(code="99213", diagnosis_pointers=[1])]
    coded = [
        make_coded(
            encounter_id=f"REM-{run}-{i}",
            service_date=RECENT,
            procedures=office,
            coverages=[coverage(payer_id="AETNA1", payer_name="Aetna", member_id=f"M{i}{run}")],
        )
        for i in range(2)
    ]
    # rolled back: the running pipeline never sees these claims
    async with billing_rolled_back(stack_endpoints["postgres"]) as conn:
        await handle(conn, [_coded(p) for p in coded], Emitter("billing"))
        ids = [
            r["claim_id"]
            for r in await conn.fetch(
                "SELECT claim_id FROM billing.claim WHERE encounter_id LIKE $1 ORDER BY encounter_id",
                f"REM-{run}-%",
            )
        ]
        a, b = ids
        await handle(
            conn,
            [
                _remittance(a, 1, status="1", paid="80.00", pccn="PAYER-1"),  # paid ...
                _remittance(
                    a, 2, status="22", paid="-80.00", pccn=None, reversal=True
                ),  # ... reversed, no number
                _remittance(b, 3, status="4", paid="0.00", pccn="PAYER-3"),  # denied
                _remittance(
                    f"C{run}UNKNOWN", 4, status="1", paid="10.00", pccn="PAYER-4"
                ),  # not billing's claim
            ],
            Emitter("billing"),
        )
        claims = {
            r["claim_id"]: r
            for r in await conn.fetch(
                "SELECT claim_id, status, payer_claim_control_number FROM billing.claim WHERE claim_id = ANY($1)",
                [*ids, f"C{run}UNKNOWN"],
            )
        }
        history = await conn.fetch(
            "SELECT claim_id, status, detail->>'remittance_id' AS rid FROM billing.claim_history"
            " WHERE claim_id = ANY($1) AND detail ? 'remittance_id' ORDER BY history_id",
            ids,
        )

    assert set(claims) == {a, b}  # the unknown claim's remittance created nothing
    assert (
        claims[a]["status"] == "accepted" and claims[a]["payer_claim_control_number"] == "PAYER-1"
    )
    assert claims[b]["status"] == "denied" and claims[b]["payer_claim_control_number"] == "PAYER-3"
    assert [(h["claim_id"], h["status"], h["rid"]) for h in history] == [
        (a, "paid", f"R1-{a}"),
        (a, "accepted", f"R2-{a}"),
        (b, "denied", f"R3-{b}"),
    ]


async def test_an_ack_and_a_remittance_moving_the_same_claims_at_once_neither_deadlock_nor_lose_the_payment(
    stack_endpoints,
) -> None:
    """The 277CA and the 835 of one 837 arrive together: billing's ack mailbox and its remittance
    consumer move the same claims in concurrent transactions."""
    from services.billing import repository as repo
    from services.billing.acks_inbound import _emit

    run = uuid.uuid4().hex[:8].upper()
    a, b = f"C{run}ACK0A", f"C{run}ACK0B"
    dsn = stack_endpoints["postgres"]
    setup = await asyncpg.connect(dsn)
    acks, remits = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
    try:
        await db.migrate(setup, "billing", BILLING)
        await setup.execute(
            "INSERT INTO billing.claim (claim_id, encounter_id, site_id, payer_id, claim_type, frequency_code, status,"
            " total_charge, service_date, coded) SELECT c, 'E-' || c, 'qa-locks', 'AETNA1', 'professional', '1',"
            " 'submitted', 100, $2, '{}' FROM unnest($1::text[]) AS c",
            [a, b],
            RECENT,
        )
        accepted = SimpleNamespace(payer_claim_control_number="PAYER-77", status_category="A2")
        # The ack mailbox holds both claims; remittances for them (listed B first) must wait, not deadlock.
        ack_tx = acks.transaction()
        await ack_tx.start()
        await _emit(
            acks, {a: accepted, b: accepted}, {}, "277CA", "277CA_test.x12", Emitter("billing")
        )
        remit_tx = remits.transaction()
        await remit_tx.start()
        paying = asyncio.create_task(
            repo.apply_remittances(remits, [(b, "paid", {}, None), (a, "denied", {}, None)])
        )
        await asyncio.sleep(0.3)
        assert not paying.done()  # waiting for the ack's locks
        await ack_tx.commit()
        assert await asyncio.wait_for(paying, 10) == {a, b}
        # A late ack for a claim whose payment is in flight: it waits, then sees the payment: the
        # status stays, the history records the acknowledgement (late) for the timeline.
        ack_tx = acks.transaction()
        await ack_tx.start()
        late = asyncio.create_task(
            _emit(acks, {b: accepted}, {}, "277CA", "277CA_late.x12", Emitter("billing"))
        )
        await asyncio.sleep(0.3)
        assert not late.done()
        await remit_tx.commit()
        await asyncio.wait_for(late, 10)
        await ack_tx.commit()
        final = {
            r["claim_id"]: (r["status"], r["payer_claim_control_number"])
            for r in await setup.fetch(
                "SELECT claim_id, status, payer_claim_control_number FROM billing.claim WHERE claim_id = ANY($1)",
                [a, b],
            )
        }
        history = await setup.fetch(
            "SELECT claim_id, status FROM billing.claim_history WHERE claim_id = ANY($1)"
            " ORDER BY history_id",
            [a, b],
        )
    finally:
        for conn in (acks, remits):  # first: a failed assertion may leave their transactions open
            conn.terminate()
        await setup.execute("DELETE FROM billing.claim_history WHERE claim_id = ANY($1)", [a, b])
        await setup.execute("DELETE FROM billing.claim WHERE claim_id = ANY($1)", [a, b])
        await setup.close()
    assert final == {a: ("denied", "PAYER-77"), b: ("paid", "PAYER-77")}
    assert [(h["claim_id"], h["status"]) for h in history] == [
        (a, "accepted"),
        (b, "accepted"),
        (b, "paid"),
        (a, "denied"),
        (b, "accepted"),
    ]


async def test_acks_of_several_files_and_remittances_for_their_claims_do_not_deadlock(
    stack_endpoints, tmp_path
) -> None:
    """Billing takes acknowledgement files one per transaction: two files locking claims B then A in
    one transaction, against remittances locking A then B, deadlocked (Postgres aborted one)."""
    from datetime import UTC, datetime

    from services.billing import repository as repo
    from services.billing.acks_inbound import _emit
    from shared.mailbox import InboundMailbox
    from shared.x12 import Interchange

    run = uuid.uuid4().hex[:8].upper()
    a, b = f"C{run}DLK0A", f"C{run}DLK0B"
    accepted = SimpleNamespace(payer_claim_control_number=None, status_category="A2")
    first_locked, go_on = asyncio.Event(), asyncio.Event()

    def ack_file(claim_id: str) -> str:
        ix = Interchange(
            sender_id="CH",
            receiver_id="RCM",
            control_number=int(uuid.uuid4().int % 999_999_999) + 1,
            group_control_number=1,
            functional_id="HN",
            version="005010X214",
            transaction_type="277",
            created_at=datetime.now(UTC),
        )
        ix.new_transaction().add("REF", "QA", claim_id)
        return ix.render()

    async def apply(
        conn, text: str, file_name: str, emitter
    ) -> None:  # acks the claim the file names
        claim_id = text.split("REF*QA*")[1].split("~")[0]
        await _emit(conn, {claim_id: accepted}, {}, "277CA", file_name, emitter)
        if not first_locked.is_set():
            first_locked.set()
            await asyncio.wait_for(
                go_on.wait(), 10
            )  # the remittances lock A and wait for B meanwhile

    pool = await db.create_pool(stack_endpoints["postgres"], min_size=2, max_size=3)
    inbox = tmp_path / "inbound"
    try:
        async with pool.acquire() as conn:
            await db.migrate(conn, "billing", BILLING)
            await conn.execute(
                "INSERT INTO billing.claim (claim_id, encounter_id, site_id, payer_id, claim_type, frequency_code, status,"
                " total_charge, service_date, coded) SELECT c, 'E-' || c, 'qa-locks', 'AETNA1', 'professional', '1',"
                " 'submitted', 100, $2, '{}' FROM unnest($1::text[]) AS c",
                [a, b],
                RECENT,
            )
        box = InboundMailbox(inbox, frozenset({"277CA"}), "billing", apply, files_per_transaction=1)
        (inbox / "1.x12").write_text(ack_file(b))
        (inbox / "2.x12").write_text(ack_file(a))
        polling = asyncio.create_task(box.poll_once(pool))
        await asyncio.wait_for(first_locked.wait(), 10)

        async def remit() -> None:
            async with pool.acquire() as conn, conn.transaction():
                await repo.apply_remittances(conn, [(a, "paid", {}, None), (b, "paid", {}, None)])

        paying = asyncio.create_task(remit())
        await asyncio.sleep(0.3)
        go_on.set()
        assert await asyncio.wait_for(polling, 15) == 2
        await asyncio.wait_for(paying, 15)  # a deadlock would raise here or in the poll
        async with pool.acquire() as conn:
            final = dict(
                await conn.fetch(
                    "SELECT claim_id, status FROM billing.claim WHERE claim_id = ANY($1)", [a, b]
                )
            )
            files = await conn.fetch(
                "SELECT file_name, status FROM billing.mailbox_file WHERE file_name = ANY($1)"
                " ORDER BY 1",
                ["1.x12", "2.x12"],
            )
    finally:
        async with pool.acquire() as conn:
            await conn.execute("DELETE FROM billing.claim_history WHERE claim_id = ANY($1)", [a, b])
            await conn.execute("DELETE FROM billing.claim WHERE claim_id = ANY($1)", [a, b])
            await conn.execute(
                "DELETE FROM billing.outbox WHERE convert_from(body, 'UTF8') LIKE $1", f"%{run}%"
            )
            await conn.execute(
                "DELETE FROM billing.mailbox_file WHERE file_name = ANY($1)", ["1.x12", "2.x12"]
            )
        await pool.close()
    assert final == {a: "paid", b: "paid"}  # A's ack came after its payment: it changed nothing
    assert [tuple(f) for f in files] == [("1.x12", "processed"), ("2.x12", "processed")]
