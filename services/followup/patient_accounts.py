"""Followup's copy of what patient statements need beyond claim balances (issue 21 item 4).

From events followup consumes, in the batch's transaction: the encounter's coverages in COB
order (encounter.coded), the payers that adjudicated it (remittance.received, reversals
aside), and payments' patient account (payments.patient_account: payments received less
refunds, the payment plan; the highest version wins). ``statement_facts`` answers, per
encounter, whether its patient responsibility still waits for a next payer, what the patient
paid, and the plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import asyncpg

from services.followup.repository import SCHEMA
from shared.events import EncounterCoded, PatientAccountUpdated, RemittanceReceived
from shared.messaging import Inbound

ZERO = Decimal("0.00")


async def apply(conn: asyncpg.Connection, by_type: dict[type, list[Inbound]]) -> None:
    """Keep coverages, adjudicating payers and patient accounts from one consumed batch."""
    coded = {
        i.event.encounter_id: i.event.payload.encounter for i in by_type.get(EncounterCoded, [])
    }
    if coded:
        await conn.execute(
            f"DELETE FROM {SCHEMA}.encounter_coverage WHERE encounter_id = ANY($1::text[])",
            list(coded),
        )
        await conn.executemany(
            f"INSERT INTO {SCHEMA}.encounter_coverage (encounter_id, sequence, payer_id)"
            " VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            [(e, c.sequence, c.payer_id) for e, enc in coded.items() for c in enc.coverages],
        )
    remits = [i for i in by_type.get(RemittanceReceived, []) if not i.event.payload.is_reversal]
    if remits:
        await conn.executemany(
            f"INSERT INTO {SCHEMA}.encounter_adjudication (encounter_id, payer_id)"
            " VALUES ($1, $2) ON CONFLICT DO NOTHING",
            sorted(await _adjudicating_payers(conn, remits)),
        )
    for i in by_type.get(PatientAccountUpdated, []):
        p = i.event.payload
        plan = p.plan
        await conn.execute(
            f"INSERT INTO {SCHEMA}.patient_account AS a (encounter_id, site_id, version,"
            " payments_received, credit, plan_id, plan_status, plan_instalment, plan_period,"
            " plan_next_due) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            " ON CONFLICT (encounter_id) DO UPDATE SET version = excluded.version,"
            " payments_received = excluded.payments_received, credit = excluded.credit,"
            " plan_id = excluded.plan_id, plan_status = excluded.plan_status,"
            " plan_instalment = excluded.plan_instalment, plan_period = excluded.plan_period,"
            " plan_next_due = excluded.plan_next_due, updated_at = now()"
            " WHERE a.version < excluded.version",
            i.event.encounter_id,
            i.event.site_id,
            p.version,
            p.payments_received,
            p.credit,
            plan.plan_id if plan else None,
            plan.status if plan else None,
            plan.instalment_amount if plan else None,
            plan.period if plan else None,
            plan.next_due_date if plan else None,
        )


async def _adjudicating_payers(conn: asyncpg.Connection, remits: list[Inbound]) -> set:
    """(encounter, payer) per remittance: the 835's payer; and when that id is none of the
    encounter's coverages (a payer naming itself otherwise in its 835), the payer the claim
    was billed to, whose adjudication it is. A coverage's payer paying on another payer's claim
    (a crossover) is that coverage's adjudication."""
    rows = await conn.fetch(
        "SELECT c.claim_id, c.payer_id, coalesce((SELECT array_agg(v.payer_id) FROM"
        f" {SCHEMA}.encounter_coverage v WHERE v.encounter_id = c.encounter_id), '{{}}') AS covered"
        f" FROM {SCHEMA}.claim c WHERE c.claim_id = ANY($1::text[])",
        [i.event.payload.claim_id for i in remits],
    )
    claims = {r["claim_id"]: r for r in rows}
    out = set()
    for i in remits:
        p, e = i.event.payload, i.event.encounter_id
        out.add((e, p.payer_id))
        c = claims.get(p.claim_id)
        if c is not None and c["payer_id"] and c["covered"] and p.payer_id not in c["covered"]:
            out.add((e, c["payer_id"]))
    return out


@dataclass(frozen=True, slots=True)
class EncounterFacts:
    waiting_next_payer: bool
    payments_received: Decimal = ZERO
    plan_status: str | None = None
    plan_instalment: Decimal | None = None
    plan_period: str | None = None
    plan_next_due: date | None = None


async def statement_facts(
    conn: asyncpg.Connection, encounters: list[str]
) -> dict[str, EncounterFacts]:
    """Per encounter: whether a coverage's payer has not adjudicated yet while another has (its
    patient responsibility waits for that payer), payments received, and the plan."""
    rows = await conn.fetch(
        "SELECT e.encounter_id,"
        f" EXISTS (SELECT 1 FROM {SCHEMA}.encounter_adjudication a"
        "   WHERE a.encounter_id = e.encounter_id)"
        f" AND EXISTS (SELECT 1 FROM {SCHEMA}.encounter_coverage c"
        "   WHERE c.encounter_id = e.encounter_id AND NOT EXISTS (SELECT 1 FROM"
        f"   {SCHEMA}.encounter_adjudication a WHERE a.encounter_id = c.encounter_id"
        "   AND a.payer_id = c.payer_id)) AS waiting,"
        " pa.payments_received, pa.plan_status, pa.plan_instalment, pa.plan_period,"
        " pa.plan_next_due"
        " FROM unnest($1::text[]) AS e(encounter_id)"
        f" LEFT JOIN {SCHEMA}.patient_account pa USING (encounter_id)",
        encounters,
    )
    return {
        r["encounter_id"]: EncounterFacts(
            r["waiting"],
            r["payments_received"] if r["payments_received"] is not None else ZERO,
            r["plan_status"],
            r["plan_instalment"],
            r["plan_period"],
            r["plan_next_due"],
        )
        for r in rows
    }
