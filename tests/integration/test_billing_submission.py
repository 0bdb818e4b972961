"""Billing's submission step against the real Postgres: which claims share an 837 file."""

from __future__ import annotations

import uuid
from pathlib import Path
from types import SimpleNamespace

import asyncpg
import pytest

from services.billing.context import BillingContext
from services.billing.domain.payer_rules import load_sample_payer_rules
from services.billing.handlers import make_handler
from shared import db, icd10cm
from shared.events import ClaimSubmitted, CodedProcedure, EncounterCoded, parse_event
from shared.messaging import Emitter, Inbound
from shared.topics import ENCOUNTER_CODED
from shared.x12 import split_segments
from tests.integration.helpers import RECENT
from tests.unit.billing.billing_factory import coverage, make_coded, make_institutional
from tests.x12check import pyx12_validate

pytestmark = pytest.mark.integration
BILLING = Path(__file__).resolve().parents[2] / "services" / "billing"


def _coded(payload) -> Inbound:
    event = EncounterCoded(site_id=payload.encounter.site_id, encounter_id=payload.encounter.encounter_id, payload=payload)
    return Inbound(event, ENCOUNTER_CODED, 0, 0)


async def test_one_837_per_claim_type_carries_every_payer_of_the_batch(stack_endpoints, tmp_path) -> None:
    icd10cm.load()
    ctx = BillingContext(outbound_dir=tmp_path, payer_rules=load_sample_payer_rules(), ncci=None)
    handle = make_handler(SimpleNamespace(state={"billing": ctx}))
    run = uuid.uuid4().hex[:8].upper()
    payers = [("AETNA1", "Aetna"), ("BCBS01", "Blue Cross Blue Shield"), ("AETNA1", "Aetna")]
    # No imaging line: the sample payer rules want a prior authorization for it (a hold).
    office = [CodedProcedure(code="99213", diagnosis_pointers=[1, 2]), CodedProcedure(code="29540", diagnosis_pointers=[1])]
    professional = [
        make_coded(encounter_id=f"SUB-{run}-{i}", service_date=RECENT, procedures=office,
                   coverages=[coverage(payer_id=pid, payer_name=name, member_id=f"M{i}{run}")])
        for i, (pid, name) in enumerate(payers)
    ]  # fmt: skip
    institutional = make_institutional(encounter_id=f"SUB-{run}-I", service_date=RECENT,
                                       procedures=[CodedProcedure(code="99284", diagnosis_pointers=[1])])  # fmt: skip
    conn = await asyncpg.connect(stack_endpoints["postgres"])
    try:
        await db.migrate(conn, "billing", BILLING)
        tx = conn.transaction()
        await tx.start()
        try:  # rolled back: the running pipeline's file writer never sees these files
            emitter = Emitter("billing")
            await handle(conn, [_coded(p) for p in [*professional, institutional]], emitter)
            claims = await conn.fetch(
                "SELECT encounter_id, payer_id, status, file_name FROM billing.claim WHERE encounter_id LIKE $1"
                " ORDER BY encounter_id", f"SUB-{run}-%")  # fmt: skip
            files = {r["file_name"]: r["content"] for r in await conn.fetch(
                "SELECT file_name, content FROM billing.outbound_file WHERE file_name = ANY($1)",
                list({c["file_name"] for c in claims}))}  # fmt: skip
            recorded = {r["file_name"]: r["payer_id"] for r in await conn.fetch(
                "SELECT file_name, payer_id FROM billing.submission_file WHERE file_name = ANY($1)", list(files))}  # fmt: skip
        finally:
            await tx.rollback()
    finally:
        await conn.close()

    assert [c["status"] for c in claims] == ["submitted"] * 4, [dict(c) for c in claims]
    by_type = {c["encounter_id"][-1]: c["file_name"] for c in claims}
    prof_files = {c["file_name"] for c in claims if not c["encounter_id"].endswith("-I")}
    assert len(prof_files) == 1 and len(files) == 2  # three professional claims, two payers: one 837P
    (prof_file,) = prof_files
    assert prof_file.startswith("837P_") and by_type["I"].startswith("837I_")
    assert recorded[prof_file] is None  # several payers
    assert recorded[by_type["I"]] is not None  # one payer: recorded, and named in the file name
    text = files[prof_file]
    payer_ids = [s[9] for s in split_segments(text)[0] if s[0] == "NM1" and s[1] == "PR"]
    assert sorted(payer_ids) == ["AETNA1", "AETNA1", "BCBS01"]
    ok, errors = pyx12_validate(text)
    assert ok, errors
    submitted = [e for e in (parse_event(row[3]) for row in emitter.rows) if isinstance(e, ClaimSubmitted)]
    assert len(submitted) == 4 and {e.payload.file_name for e in submitted} == set(files)
