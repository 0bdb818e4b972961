"""SQL for the billing schema."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import NamedTuple

import asyncpg

SCHEMA = "billing"


class ClaimRow(NamedTuple):
    """A new claim, in the column order of ``insert_claims`` (its status starts 'created')."""

    claim_id: str
    encounter_id: str
    site_id: str
    payer_id: str | None
    claim_type: str
    frequency_code: str
    original_claim_id: str | None
    payer_claim_control_number: str | None
    total_charge: Decimal
    service_date: date
    coded: str  # the encounter.coded payload (JSON) the claim was built from
    traceparent: str | None
    cob_sequence: str = "primary"  # the coverage billed: primary, secondary or tertiary
    primary_claim_id: str | None = None  # on a secondary/tertiary claim: the primary's claim


class StatusChange(NamedTuple):
    """A claim moving to ``status``, with the detail its history row keeps."""

    claim_id: str
    status: str
    detail: dict | None


class RemittanceChange(NamedTuple):
    """A claim's status after a remittance, and the payer claim control number it brought."""

    claim_id: str
    status: str
    detail: dict
    payer_claim_control_number: str | None


class WorkItemRow(NamedTuple):
    claim_id: str
    site_id: str
    kind: str  # scrub_hold | rejection | crossover_overdue
    reasons: str  # JSON list of reasons


class SubmittedClaim(NamedTuple):
    """Where a claim went: its interchange, file and 837 transaction set (ST02)."""

    claim_id: str
    interchange_control_number: str
    file_name: str
    st_control_number: str


async def insert_claims(conn: asyncpg.Connection, rows: list[ClaimRow]) -> set[str]:
    """Insert new claims as 'created'; return the ids inserted (an encounter bills once)."""
    if not rows:
        return set()
    got = await conn.fetch(
        f"INSERT INTO {SCHEMA}.claim (claim_id, encounter_id, site_id, payer_id, claim_type, frequency_code,"
        " original_claim_id, payer_claim_control_number, status, total_charge, service_date, coded, traceparent,"
        " cob_sequence, primary_claim_id)"
        " SELECT c, e, s, p, t, f, o, pcn, 'created', amt, d, j, tp, q, pc FROM unnest($1::text[], $2::text[],"
        " $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::numeric[], $10::date[],"
        " $11::jsonb[], $12::text[], $13::text[], $14::text[])"
        " AS u(c, e, s, p, t, f, o, pcn, amt, d, j, tp, q, pc) ON CONFLICT DO NOTHING RETURNING claim_id",
        *map(list, zip(*rows, strict=True)),
    )
    return {r["claim_id"] for r in got}


async def set_status(conn: asyncpg.Connection, changes: list[StatusChange]) -> None:
    """Move claims to a new status, each with a history row."""
    if not changes:
        return
    ids = [c.claim_id for c in changes]
    statuses = [c.status for c in changes]
    await conn.execute(
        f"UPDATE {SCHEMA}.claim c SET status = u.s, updated_at = now() FROM unnest($1::text[], $2::text[]) AS u(i, s)"
        " WHERE c.claim_id = u.i",
        ids,
        statuses,
    )
    await add_history(conn, changes)


async def add_history(conn: asyncpg.Connection, changes: list[StatusChange]) -> None:
    """A claim_history row per change."""
    if changes:
        await conn.execute(
            f"INSERT INTO {SCHEMA}.claim_history (claim_id, status, detail)"
            " SELECT * FROM unnest($1::text[], $2::text[], $3::jsonb[])",
            [c.claim_id for c in changes],
            [c.status for c in changes],
            [json.dumps(c.detail) if c.detail is not None else None for c in changes],
        )


async def mark_submitted(conn: asyncpg.Connection, rows: list[SubmittedClaim]) -> None:
    """Record the interchange, file and transaction set each claim went out in."""
    await conn.execute(
        f"UPDATE {SCHEMA}.claim c SET interchange_control_number = u.icn, file_name = u.f, st_control_number = u.st"
        " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS u(i, icn, f, st) WHERE c.claim_id = u.i",
        *map(list, zip(*rows, strict=True)),
    )


async def next_control_numbers(conn: asyncpg.Connection) -> tuple[int, int]:
    row = await conn.fetchrow(
        f"SELECT nextval('{SCHEMA}.interchange_control_number') AS icn, nextval('{SCHEMA}.group_control_number') AS gcn"
    )
    return row["icn"], row["gcn"]


async def record_file(
    conn,
    *,
    file_name: str,
    icn: int,
    gcn: int,
    claim_type: str,
    payer_id: str | None,
    transactions: dict,
    spans: dict,
) -> None:
    await conn.execute(
        f"INSERT INTO {SCHEMA}.submission_file (file_name, interchange_control_number, group_control_number,"
        " claim_type, payer_id, claim_count, transactions, spans) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        file_name,
        str(icn),
        str(gcn),
        claim_type,
        payer_id,
        sum(len(v) for v in transactions.values()),
        json.dumps(transactions),
        json.dumps(spans),
    )


async def file_by_group(conn: asyncpg.Connection, group_control_number: str):
    return await conn.fetchrow(
        f"SELECT * FROM {SCHEMA}.submission_file WHERE group_control_number = $1",
        group_control_number.lstrip("0") or "0",
    )


async def open_work_items(conn: asyncpg.Connection, rows: list[WorkItemRow]) -> None:
    """A biller work item per held or rejected claim."""
    if rows:
        await conn.executemany(
            f"INSERT INTO {SCHEMA}.work_item (claim_id, site_id, kind, reasons) VALUES ($1, $2, $3, $4)",
            rows,
        )


async def get_claims(conn: asyncpg.Connection, claim_ids: list[str]) -> dict[str, asyncpg.Record]:
    rows = await conn.fetch(
        f"SELECT * FROM {SCHEMA}.claim WHERE claim_id = ANY($1::text[])", claim_ids
    )
    return {r["claim_id"]: r for r in rows}


async def claim_with_history(conn: asyncpg.Connection, claim_id: str):
    claim = await conn.fetchrow(f"SELECT * FROM {SCHEMA}.claim WHERE claim_id = $1", claim_id)
    if claim is None:
        return None, []
    history = await conn.fetch(
        f"SELECT status, detail, at FROM {SCHEMA}.claim_history WHERE claim_id = $1 ORDER BY history_id",
        claim_id,
    )
    return claim, history


async def corrections_of(conn: asyncpg.Connection, claim_id: str) -> int:
    return await conn.fetchval(
        f"SELECT count(*) FROM {SCHEMA}.claim WHERE original_claim_id = $1", claim_id
    )


async def chargemaster_csv(conn: asyncpg.Connection, site_id: str) -> str | None:
    return await conn.fetchval(f"SELECT csv FROM {SCHEMA}.chargemaster WHERE site_id = $1", site_id)


async def save_chargemaster(conn: asyncpg.Connection, site_id: str, csv_text: str) -> None:
    await conn.execute(
        f"INSERT INTO {SCHEMA}.chargemaster (site_id, csv) VALUES ($1, $2)"
        " ON CONFLICT (site_id) DO UPDATE SET csv = EXCLUDED.csv, loaded_at = now()",
        site_id,
        csv_text,
    )


async def lock_claims(conn: asyncpg.Connection, claim_ids: list[str]) -> dict[str, asyncpg.Record]:
    """Lock claims for update and read them as committed now (status, routing, trace).

    Every transaction that moves several existing claims locks them here first, in claim id
    order: the remittance consumer and the acknowledgement mailbox move the same claims at
    the same time, and locking in different orders deadlocked them. Read under the lock, a
    status is not overwritten by a transaction that read it before another one changed it.
    The lock is the one an UPDATE takes (it lets foreign-key checks on the claim through).
    """
    if not claim_ids:
        return {}
    rows = await conn.fetch(
        f"SELECT claim_id, site_id, encounter_id, status, traceparent FROM {SCHEMA}.claim"
        " WHERE claim_id = ANY($1::text[]) ORDER BY claim_id FOR NO KEY UPDATE",
        sorted(set(claim_ids)),
    )
    return {r["claim_id"]: r for r in rows}


async def apply_remittances(conn: asyncpg.Connection, changes: list[RemittanceChange]) -> set[str]:
    """Move claims on after their remittances.

    In event order: a claim's last status stands, as does its last payer claim control number
    (a reversal and its correction can arrive in one batch); each change gets a history row.
    Remittances of claims billing never made are skipped. Returns the claims moved.
    """
    if not changes:
        return set()
    status: dict[str, str] = {}
    number: dict[str, str | None] = {}
    for claim_id, st, _, pccn in changes:
        status[claim_id] = st
        number[claim_id] = pccn or number.get(claim_id)
    known = set(await lock_claims(conn, list(status)))
    ids = [i for i in status if i in known]
    await conn.execute(
        f"UPDATE {SCHEMA}.claim c SET status = u.s, payer_claim_control_number = coalesce(u.n, c.payer_claim_control_number),"
        " updated_at = now() FROM unnest($1::text[], $2::text[], $3::text[]) AS u(i, s, n) WHERE c.claim_id = u.i",
        ids,
        [status[i] for i in ids],
        [number[i] for i in ids],
    )
    await add_history(
        conn, [StatusChange(cid, st, detail) for cid, st, detail, _ in changes if cid in known]
    )
    return known


async def set_payer_claim_numbers(conn: asyncpg.Connection, rows: list[tuple[str, str]]) -> None:
    if rows:
        latest = dict(rows)  # a claim twice in one batch (reversal + correction): the last one wins
        ids, numbers = list(latest), list(latest.values())
        await conn.execute(  # one statement per batch (executemany is a round of work per row)
            f"UPDATE {SCHEMA}.claim c SET payer_claim_control_number = u.n"
            " FROM unnest($1::text[], $2::text[]) AS u(i, n) WHERE c.claim_id = u.i",
            ids,
            numbers,
        )


async def rebuild_claim(conn: asyncpg.Connection, row: ClaimRow) -> None:
    """Replace a not-yet-sent claim's content with one rebuilt from newer data (its site too:
    an encounter intake placed on its real site after holding it on the unassigned one; its
    work items follow)."""
    await conn.execute(
        f"UPDATE {SCHEMA}.claim SET payer_id = $2, claim_type = $3, total_charge = $4,"
        " service_date = $5, coded = $6::jsonb, site_id = $7, updated_at = now()"
        " WHERE claim_id = $1",
        row.claim_id,
        row.payer_id,
        row.claim_type,
        row.total_charge,
        row.service_date,
        row.coded,
        row.site_id,
    )
    await conn.execute(
        f"UPDATE {SCHEMA}.work_item SET site_id = $2 WHERE claim_id = $1 AND site_id <> $2",
        row.claim_id,
        row.site_id,
    )


async def resolve_work_items(conn: asyncpg.Connection, claim_ids: list[str]) -> None:
    """Resolve the open work items of claims whose hold was lifted (new data arrived)."""
    if claim_ids:
        await conn.execute(
            f"UPDATE {SCHEMA}.work_item SET status = 'resolved', resolved_at = now()"
            " WHERE claim_id = ANY($1::text[]) AND status = 'open'",
            claim_ids,
        )


async def lock_claim(conn: asyncpg.Connection, claim_id: str) -> asyncpg.Record | None:
    """One claim, locked for update (see ``lock_claims``), with the coded encounter."""
    return await conn.fetchrow(
        f"SELECT * FROM {SCHEMA}.claim WHERE claim_id = $1 FOR NO KEY UPDATE", claim_id
    )


class Original(NamedTuple):
    """An encounter's original claim: where it stands and the document version it was built from."""

    claim_id: str
    status: str
    document_version: int
    site_id: str


async def originals(conn: asyncpg.Connection, claim_ids: list[str]) -> dict[str, Original]:
    """The original claims among ``claim_ids`` (versions before versioning count as 1)."""
    rows = await conn.fetch(
        f"SELECT claim_id, status, coalesce((coded->'encounter'->>'document_version')::int, 1) AS v,"
        f" site_id FROM {SCHEMA}.claim WHERE claim_id = ANY($1::text[]) AND frequency_code = '1'",
        claim_ids,
    )
    return {r["claim_id"]: Original(r["claim_id"], r["status"], r["v"], r["site_id"]) for r in rows}


# --------------------------------------------------------------------------- coordination of benefits


async def record_adjudication(
    conn: asyncpg.Connection,
    primary_claim_id: str,
    cob_sequence: str,
    remittance_id: str,
    payer_id: str,
    adjudication: dict,
) -> bool:
    """Store one payer's adjudication of an encounter's claims; False when that payer's was
    stored before (a redelivered remittance, or a second 835 for the same payer: the first
    one stands)."""
    got = await conn.fetchval(
        f"INSERT INTO {SCHEMA}.prior_adjudication (primary_claim_id, cob_sequence, remittance_id,"
        " payer_id, adjudication) VALUES ($1, $2, $3, $4, $5::jsonb) ON CONFLICT DO NOTHING"
        " RETURNING 1",
        primary_claim_id,
        cob_sequence,
        remittance_id,
        payer_id,
        json.dumps(adjudication),
    )
    return got is not None


async def adjudications(conn: asyncpg.Connection, primary_claim_id: str) -> dict[str, dict]:
    """The stored adjudications of an encounter's claims, by COB sequence."""
    rows = await conn.fetch(
        f"SELECT cob_sequence, adjudication FROM {SCHEMA}.prior_adjudication"
        " WHERE primary_claim_id = $1",
        primary_claim_id,
    )
    return {r["cob_sequence"]: json.loads(r["adjudication"]) for r in rows}


async def wait_for_crossover(
    conn: asyncpg.Connection,
    primary_claim_id: str,
    cob_sequence: str,
    site_id: str,
    payer_id: str,
    due_at,
) -> bool:
    got = await conn.fetchval(
        f"INSERT INTO {SCHEMA}.crossover_wait (primary_claim_id, cob_sequence, site_id, payer_id,"
        " due_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING 1",
        primary_claim_id,
        cob_sequence,
        site_id,
        payer_id,
        due_at,
    )
    return got is not None


async def crossover_received(
    conn: asyncpg.Connection, primary_claim_id: str, cob_sequence: str
) -> None:
    await conn.execute(
        f"UPDATE {SCHEMA}.crossover_wait SET status = 'received'"
        " WHERE primary_claim_id = $1 AND cob_sequence = $2 AND status <> 'received'",
        primary_claim_id,
        cob_sequence,
    )


async def overdue_crossovers(conn: asyncpg.Connection, now) -> list[asyncpg.Record]:
    """Mark the crossovers whose 835 did not come by their due time overdue; return them."""
    return await conn.fetch(
        f"UPDATE {SCHEMA}.crossover_wait w SET status = 'overdue' FROM (SELECT primary_claim_id,"
        f" cob_sequence FROM {SCHEMA}.crossover_wait WHERE status = 'waiting' AND due_at <= $1"
        " ORDER BY primary_claim_id FOR UPDATE SKIP LOCKED) d"
        " WHERE w.primary_claim_id = d.primary_claim_id AND w.cob_sequence = d.cob_sequence"
        " RETURNING w.primary_claim_id, w.cob_sequence, w.site_id, w.payer_id, w.due_at",
        now,
    )
