"""SQL for the followup schema."""

from __future__ import annotations

import json

import asyncpg

S = "followup"


async def upsert_submitted(conn: asyncpg.Connection, rows: list[tuple]) -> None:
    """(claim_id, encounter_id, site_id, payer_id, payer_name, frequency, original, charge, dos, submitted_at,
    icn, pccn, guarantor_json, lines_json). A remittance may have created the row first: keep its state."""
    if rows:
        await conn.executemany(
            f"INSERT INTO {S}.claim (claim_id, encounter_id, site_id, payer_id, payer_name, state, frequency_code,"
            " original_claim_id, total_charge, service_date, submitted_at, interchange_control_number,"
            " payer_claim_control_number, guarantor, lines)"
            " VALUES ($1, $2, $3, $4, $5, 'submitted', $6, $7, $8, $9, $10, $11, $12, $13, $14)"
            " ON CONFLICT (claim_id) DO UPDATE SET payer_id = EXCLUDED.payer_id, payer_name = EXCLUDED.payer_name,"
            " frequency_code = EXCLUDED.frequency_code, original_claim_id = EXCLUDED.original_claim_id,"
            " total_charge = EXCLUDED.total_charge, service_date = EXCLUDED.service_date,"
            " submitted_at = EXCLUDED.submitted_at, interchange_control_number = EXCLUDED.interchange_control_number,"
            " guarantor = EXCLUDED.guarantor, lines = EXCLUDED.lines, updated_at = now()",
            rows,
        )


async def ensure_claims(conn: asyncpg.Connection, rows: list[tuple[str, str, str, str]]) -> None:
    """(claim_id, encounter_id, site_id, state): a stub for events that outran claim.submitted."""
    if rows:
        await conn.executemany(
            f"INSERT INTO {S}.claim (claim_id, encounter_id, site_id, state) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (claim_id) DO NOTHING",
            rows,
        )


async def set_state(conn: asyncpg.Connection, rows: list[tuple[str, str]], *, only_from: tuple[str, ...] | None = None) -> None:
    if rows:
        cond = " AND state = ANY($3::text[])" if only_from else ""
        args = [list(only_from)] if only_from else []
        await conn.executemany(
            f"UPDATE {S}.claim SET state = $2, updated_at = now() WHERE claim_id = $1{cond}", [(*r, *args) for r in rows]
        )


async def set_outcomes(conn: asyncpg.Connection, rows: list[tuple[str, str, str, str]]) -> None:
    """(encounter_id, site_id, claim_id, outcome): the latest outcome of each encounter."""
    if rows:
        await conn.executemany(
            f"INSERT INTO {S}.encounter_outcome (encounter_id, site_id, claim_id, outcome) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (encounter_id) DO UPDATE SET claim_id = EXCLUDED.claim_id, outcome = EXCLUDED.outcome,"
            " at = now()",
            rows,
        )


async def record_remittances(conn: asyncpg.Connection, rows: list[tuple]) -> set[str]:
    """(remittance_id, claim_id, status_code, paid, pr, adjustments_json, remarks_json) -> ids that are new."""
    if not rows:
        return set()
    got = await conn.fetch(
        f"INSERT INTO {S}.remittance (remittance_id, claim_id, status_code, paid, patient_responsibility,"
        " adjustments, remarks) SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::numeric[],"
        " $5::numeric[], $6::jsonb[], $7::jsonb[]) ON CONFLICT DO NOTHING RETURNING remittance_id",
        *map(list, zip(*rows, strict=True)),
    )
    return {r["remittance_id"] for r in got}


async def apply_amounts(conn: asyncpg.Connection, rows: list[tuple]) -> None:
    """(claim_id, paid, contractual, other, pr, state, pccn): add a remittance's amounts to the claim."""
    if rows:
        await conn.executemany(
            f"UPDATE {S}.claim SET paid = paid + $2, contractual = contractual + $3,"
            " other_adjustments = other_adjustments + $4, patient_responsibility = patient_responsibility + $5,"
            " state = $6, payer_claim_control_number = coalesce($7, payer_claim_control_number),"
            " remitted_at = now(), updated_at = now() WHERE claim_id = $1",
            rows,
        )


async def open_work_items(conn: asyncpg.Connection, rows: list[tuple]) -> int:
    """(source_key, claim_id, encounter_id, site_id, payer_id, category, action, label, group, carc,
    rarc_json, amount, deadline, priority); an item opens once per source."""
    if not rows:
        return 0
    await conn.executemany(
        f"INSERT INTO {S}.work_item (source_key, claim_id, encounter_id, site_id, payer_id, category, action, label,"
        " group_code, carc, rarc, amount, deadline_date, priority)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) ON CONFLICT (source_key) DO NOTHING",
        rows,
    )
    return len(rows)


async def claim_sites(conn: asyncpg.Connection, claim_ids: list[str]) -> dict[str, asyncpg.Record]:
    rows = await conn.fetch(f"SELECT * FROM {S}.claim WHERE claim_id = ANY($1::text[])", claim_ids)
    return {r["claim_id"]: r for r in rows}


def dumps(v) -> str:
    return json.dumps(v, default=str)
