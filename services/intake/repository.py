"""SQL for the intake schema. Small functions taking a connection; ``$n`` parameters."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from services.intake.domain.registry import Payer, Provider, Site
from shared.db import columns_of, insert_rows, last_per_key
from shared.events import UNASSIGNED_SITE, Address

S = "intake"


# --------------------------------------------------------------------------- encounter documents


@dataclass(frozen=True, slots=True)
class Received:
    """One mapped encounter to record: its id, site, content hash and its event's id.
    ``may_place`` lets it move the encounter from the unassigned site to its own."""

    encounter_id: str
    site_id: str
    content_hash: str
    event_id: uuid.UUID
    may_place: bool = True


@dataclass(frozen=True, slots=True)
class Recorded:
    """What recording did: ``version`` is the new version, or None when nothing new was stored
    (``current_site`` then tells a duplicate, same site, from a conflict, another site's id).
    ``placed_from`` is the unassigned site when this version moved the encounter off it."""

    version: int | None
    current_version: int | None
    current_site: str | None
    placed_from: str | None = None


async def record_versions(
    conn: asyncpg.Connection, items: Sequence[Received]
) -> dict[str, Recorded]:
    """Record each encounter's content: a new encounter is version 1, different content for a
    known one is the next version, the same content again (or another site's encounter id)
    changes nothing. An encounter on the unassigned site (intake could not tell its site when
    it first came) takes the site of a newer version that names one (its ``may_place``); one
    real site never gives way to another. ``items`` must not repeat an encounter id. Returns a
    result per id.
    """
    if not items:
        return {}
    rows = await conn.fetch(
        f"WITH t AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bool[])"
        "   AS t(i, s, h, p)),"
        f" before AS (SELECT e.encounter_id, e.site_id FROM {S}.encounter e JOIN t ON t.i ="
        "   e.encounter_id)"
        f" INSERT INTO {S}.encounter AS e (encounter_id, site_id, version, content_hash)"
        " SELECT i, s, 1, h FROM t"
        " ON CONFLICT (encounter_id) DO UPDATE"
        "   SET version = e.version + 1, content_hash = EXCLUDED.content_hash,"
        "   site_id = EXCLUDED.site_id, updated_at = now()"
        "   WHERE e.content_hash <> EXCLUDED.content_hash AND (e.site_id = EXCLUDED.site_id"
        "     OR (e.site_id = $5 AND EXCLUDED.site_id <> $5 AND e.encounter_id = ANY("
        "       SELECT i FROM t WHERE p)))"
        " RETURNING e.encounter_id, e.version,"
        "   (SELECT b.site_id FROM before b WHERE b.encounter_id = e.encounter_id) AS was",
        [i.encounter_id for i in items],
        [i.site_id for i in items],
        [i.content_hash for i in items],
        [i.may_place for i in items],
        UNASSIGNED_SITE,
    )
    sites = {i.encounter_id: i.site_id for i in items}
    out = {
        r["encounter_id"]: Recorded(
            r["version"],
            r["version"],
            None,
            r["was"] if r["was"] is not None and r["was"] != sites[r["encounter_id"]] else None,
        )
        for r in rows
    }
    unchanged = [i.encounter_id for i in items if i.encounter_id not in out]
    if unchanged:  # a new statement: sees rows a concurrent request committed meanwhile
        for r in await conn.fetch(
            f"SELECT encounter_id, site_id, version FROM {S}.encounter"
            " WHERE encounter_id = ANY($1::text[])",
            unchanged,
        ):
            out[r["encounter_id"]] = Recorded(None, r["version"], r["site_id"])
    return out


_DOCUMENT_COLUMNS = [
    ("encounter_id", "text"),
    ("version", "int"),
    ("site_id", "text"),
    ("content_hash", "text"),
    ("event_id", "uuid"),
    ("source", "text"),
    ("document", "jsonb"),
    ("warnings", "jsonb"),
    ("missing", "jsonb"),
]


async def insert_documents(conn: asyncpg.Connection, rows: Sequence[tuple]) -> None:
    """Store new document versions: (encounter_id, version, site_id, content_hash, event_id,
    source, document JSON, warnings JSON, missing JSON)."""
    await insert_rows(conn, f"{S}.encounter_document", _DOCUMENT_COLUMNS, rows)


async def document_versions(conn: asyncpg.Connection, encounter_id: str) -> list[asyncpg.Record]:
    """The versions of one encounter, oldest first, without their documents."""
    return await conn.fetch(
        "SELECT version, site_id, content_hash, event_id, source, received_at,"
        " jsonb_array_length(warnings) AS warnings, missing"
        f" FROM {S}.encounter_document WHERE encounter_id = $1 ORDER BY version",
        encounter_id,
    )


# --------------------------------------------------------------------------- registries


async def registry_generation(conn: asyncpg.Connection) -> int:
    return await conn.fetchval(f"SELECT generation FROM {S}.registry_state WHERE id = 1")


async def _bump_generation(conn: asyncpg.Connection) -> None:
    await conn.execute(f"UPDATE {S}.registry_state SET generation = generation + 1 WHERE id = 1")


_SITE_COLUMNS = [
    ("site_id", "text"),
    ("name", "text"),
    ("npi", "text"),
    ("tax_id", "text"),
    ("taxonomy", "text"),
    ("address_line1", "text"),
    ("address_line2", "text"),
    ("city", "text"),
    ("state", "text"),
    ("postal_code", "text"),
    ("aliases", "text[]"),
]
_PROVIDER_COLUMNS = [
    ("npi", "text"),
    ("first_name", "text"),
    ("last_name", "text"),
    ("taxonomy", "text"),
    ("site_id", "text"),
]
_PAYER_COLUMNS = [
    ("payer_id", "text"),
    ("name", "text"),
    ("filing_indicator", "text"),
    ("self_pay", "bool"),
    ("aliases", "text[]"),
]


def _upsert(table: str, columns: list[tuple[str, str]]) -> str:
    key = columns[0][0]
    sets = ", ".join(f"{c} = EXCLUDED.{c}" for c, _ in columns[1:])
    return f"ON CONFLICT ({key}) DO UPDATE SET {sets}, updated_at = now()"


async def upsert_sites(conn: asyncpg.Connection, sites: Sequence[Site]) -> None:
    """Create or replace sites (a later one of the same id wins)."""
    rows = last_per_key(
        [
            (
                s.site_id,
                s.name,
                s.npi,
                s.tax_id,
                s.taxonomy,
                *(
                    (a.line1, a.line2, a.city, a.state, a.postal_code)
                    if (a := s.address)
                    else (None,) * 5
                ),
                _json_array(s.aliases),
            )
            for s in sites
        ]
    )
    if rows:
        await conn.execute(
            f"INSERT INTO {S}.site (site_id, name, npi, tax_id, taxonomy, address_line1,"
            " address_line2, city, state, postal_code, aliases)"
            " SELECT i, n, npi, t, tx, l1, l2, c, st, z,"
            " ARRAY(SELECT jsonb_array_elements_text(a)) FROM unnest($1::text[],"
            " $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],"
            " $9::text[], $10::text[], $11::jsonb[]) AS x(i, n, npi, t, tx, l1, l2, c, st, z, a) "
            + _upsert("site", _SITE_COLUMNS),
            *columns_of(rows, len(_SITE_COLUMNS)),
        )
        await _bump_generation(conn)


async def upsert_providers(conn: asyncpg.Connection, providers: Sequence[Provider]) -> None:
    """Create or replace providers by NPI (a later row of the same NPI wins)."""
    rows = last_per_key(
        [(p.npi, p.first_name, p.last_name, p.taxonomy, p.site_id) for p in providers]
    )
    if rows:
        await insert_rows(
            conn, f"{S}.provider", _PROVIDER_COLUMNS, rows, _upsert("provider", _PROVIDER_COLUMNS)
        )
        await _bump_generation(conn)


async def replace_site_providers(
    conn: asyncpg.Connection, site_id: str, providers: Sequence[Provider]
) -> None:
    """Make ``providers`` the site's rendering providers: others of the site are removed."""
    await conn.execute(
        f"DELETE FROM {S}.provider WHERE site_id = $1 AND NOT npi = ANY($2::text[])",
        site_id,
        [p.npi for p in providers],
    )
    await upsert_providers(conn, providers)
    await _bump_generation(conn)


async def upsert_payers(conn: asyncpg.Connection, payers: Sequence[Payer]) -> None:
    """Create or replace payers (a later one of the same id wins)."""
    rows = last_per_key(
        [
            (p.payer_id, p.name, p.filing_indicator, p.self_pay, _json_array(p.aliases))
            for p in payers
        ]
    )
    if rows:
        await conn.execute(
            f"INSERT INTO {S}.payer (payer_id, name, filing_indicator, self_pay, aliases)"
            " SELECT i, n, f, sp, ARRAY(SELECT jsonb_array_elements_text(a)) FROM unnest($1::text[],"
            " $2::text[], $3::text[], $4::bool[], $5::jsonb[]) AS x(i, n, f, sp, a) "
            + _upsert("payer", _PAYER_COLUMNS),
            *columns_of(rows, len(_PAYER_COLUMNS)),
        )
        await _bump_generation(conn)


def _json_array(items: Sequence[str]) -> str:
    """A text[] per row travels as JSON (unnest would flatten a two-dimensional array)."""
    return json.dumps(list(items))


async def sites(conn: asyncpg.Connection, site_ids: Sequence[str] | None = None) -> list[Site]:
    """Sites (all, or those of ``site_ids``), by site id."""
    rows = await conn.fetch(
        f"SELECT * FROM {S}.site WHERE $1::text[] IS NULL OR site_id = ANY($1) ORDER BY site_id",
        None if site_ids is None else list(site_ids),
    )
    return [
        Site(
            site_id=r["site_id"],
            name=r["name"],
            npi=r["npi"],
            tax_id=r["tax_id"],
            taxonomy=r["taxonomy"],
            address=Address(
                line1=r["address_line1"],
                line2=r["address_line2"],
                city=r["city"],
                state=r["state"],
                postal_code=r["postal_code"],
            )
            if r["address_line1"] is not None
            else None,
            aliases=tuple(r["aliases"]),
        )
        for r in rows
    ]


async def providers(
    conn: asyncpg.Connection, site_ids: Sequence[str] | None = None
) -> list[Provider]:
    """Providers (all, or those billing under ``site_ids``), by name."""
    rows = await conn.fetch(
        f"SELECT npi, first_name, last_name, taxonomy, site_id FROM {S}.provider"
        " WHERE $1::text[] IS NULL OR site_id = ANY($1) ORDER BY last_name, first_name, npi",
        None if site_ids is None else list(site_ids),
    )
    return [Provider(**dict(r)) for r in rows]


async def payers(conn: asyncpg.Connection, payer_ids: Sequence[str] | None = None) -> list[Payer]:
    """Payers (all, or those of ``payer_ids``), by payer id."""
    rows = await conn.fetch(
        f"SELECT payer_id, name, filing_indicator, self_pay, aliases FROM {S}.payer"
        " WHERE $1::text[] IS NULL OR payer_id = ANY($1) ORDER BY payer_id",
        None if payer_ids is None else list(payer_ids),
    )
    return [Payer(**{**dict(r), "aliases": tuple(r["aliases"])}) for r in rows]


# --------------------------------------------------------------------------- HL7 v2 messages


@dataclass(frozen=True, slots=True)
class Hl7Stored:
    """A message to keep: its idempotency key (sending facility, MSH-10), header facts, the
    visit it belongs to (None for types intake does not use) and its bytes."""

    facility: str
    control_id: str
    message_type: str
    version: str
    source: str
    visit_key: str | None
    text_form: bool
    message: bytes
    digest: str  # of the message's text: tells a re-send from another message reusing its key


async def store_hl7_messages(
    conn: asyncpg.Connection, items: Sequence[Hl7Stored]
) -> set[tuple[str, str]]:
    """Store the messages not stored before (by sending facility and MSH-10); return the keys
    of those stored now. ``items`` must not repeat a key. A concurrent transaction storing the
    same key makes this wait for its commit (then the message is not new)."""
    if not items:
        return set()
    rows = await conn.fetch(
        f"INSERT INTO {S}.hl7_message"
        " (facility, control_id, message_type, version, source, visit_key, status, ack_code,"
        " text_form, message, digest)"
        " SELECT f, c, t, v, s, k, 'received', 'AA', x, m, d FROM unnest($1::text[], $2::text[],"
        " $3::text[], $4::text[], $5::text[], $6::text[], $7::bool[], $8::bytea[], $9::text[])"
        " AS u(f, c, t, v, s, k, x, m, d)"
        " ON CONFLICT (facility, control_id) DO NOTHING RETURNING facility, control_id",
        [i.facility for i in items],
        [i.control_id for i in items],
        [i.message_type for i in items],
        [i.version for i in items],
        [i.source for i in items],
        [i.visit_key for i in items],
        [i.text_form for i in items],
        [i.message for i in items],
        [i.digest for i in items],
    )
    return {(r["facility"], r["control_id"]) for r in rows}


async def hl7_answers(
    conn: asyncpg.Connection, items: Sequence[Hl7Stored]
) -> dict[tuple[str, str], tuple[str, list[dict], bool]]:
    """For messages stored before (by key): the ACK code and application errors they were
    answered with, and whether the stored message is the same as this one."""
    if not items:
        return {}
    rows = await conn.fetch(
        "SELECT m.facility, m.control_id, m.ack_code, m.errors, m.digest = u.d AS same"
        f" FROM {S}.hl7_message m JOIN unnest($1::text[], $2::text[], $3::text[]) AS u(f, c, d)"
        " ON m.facility = u.f AND m.control_id = u.c",
        [i.facility for i in items],
        [i.control_id for i in items],
        [i.digest for i in items],
    )
    return {
        (r["facility"], r["control_id"]): (r["ack_code"], json.loads(r["errors"]), r["same"])
        for r in rows
    }


@dataclass(frozen=True, slots=True)
class VisitLock:
    """A visit row after a batch's messages were counted in: ``count`` messages applied with
    them, ``released`` when an encounter version was emitted before."""

    count: int
    released: bool


async def lock_visits(
    conn: asyncpg.Connection, visits: Sequence[tuple[str, str, int]]
) -> dict[str, VisitLock]:
    """Lock each visit's row (created when new) and add (visit_key, site_id, n) n messages to its
    count, in key order (two instances never wait on each other in a cycle)."""
    if not visits:
        return {}
    ordered = sorted(visits)
    rows = await conn.fetch(
        f"INSERT INTO {S}.hl7_visit AS v (visit_key, site_id, message_count)"
        " SELECT k, s, n FROM unnest($1::text[], $2::text[], $3::int[]) AS u(k, s, n) ORDER BY k"
        " ON CONFLICT (visit_key) DO UPDATE"
        "   SET message_count = v.message_count + EXCLUDED.message_count, updated_at = now()"
        " RETURNING v.visit_key, v.message_count, v.released",
        [v[0] for v in ordered],
        [v[1] for v in ordered],
        [v[2] for v in ordered],
    )
    return {r["visit_key"]: VisitLock(r["message_count"], r["released"]) for r in rows}


@dataclass(frozen=True, slots=True)
class VisitMessage:
    seq: int
    facility: str
    text_form: bool
    message: bytes


async def visit_messages(
    conn: asyncpg.Connection, visit_keys: Sequence[str]
) -> dict[str, list[VisitMessage]]:
    """The applied messages of each visit, in the order they were applied."""
    out: dict[str, list[VisitMessage]] = {k: [] for k in visit_keys}
    if not visit_keys:
        return out
    rows = await conn.fetch(
        f"SELECT visit_key, visit_seq, facility, text_form, message FROM {S}.hl7_message"
        " WHERE visit_key = ANY($1::text[]) AND visit_seq IS NOT NULL"
        " ORDER BY visit_key, visit_seq",
        list(visit_keys),
    )
    for r in rows:
        out[r["visit_key"]].append(
            VisitMessage(r["visit_seq"], r["facility"], r["text_form"], r["message"])
        )
    return out


async def settle_hl7_messages(conn: asyncpg.Connection, rows: Sequence[tuple]) -> None:
    """Record what became of stored messages: (facility, control_id, visit_seq, status,
    ack_code, errors JSON)."""
    if not rows:
        return
    await conn.execute(
        f"UPDATE {S}.hl7_message m SET visit_seq = u.q, status = u.s, ack_code = u.a,"
        " errors = u.e::jsonb"
        " FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::text[], $6::text[])"
        " AS u(f, c, q, s, a, e) WHERE m.facility = u.f AND m.control_id = u.c",
        *columns_of(rows, 6),
    )


async def settle_visits(conn: asyncpg.Connection, rows: Sequence[tuple]) -> None:
    """Record each visit's state after a batch: (visit_key, encounter_id, released, awaiting
    JSON array); ``released`` never goes back to false."""
    if not rows:
        return
    await conn.execute(
        f"UPDATE {S}.hl7_visit v SET encounter_id = coalesce(u.e, v.encounter_id),"
        " released = v.released OR u.r, awaiting = ARRAY(SELECT jsonb_array_elements_text(u.w)),"
        " updated_at = now()"
        " FROM unnest($1::text[], $2::text[], $3::bool[], $4::jsonb[]) AS u(k, e, r, w)"
        " WHERE v.visit_key = u.k",
        *columns_of(rows, 4),
    )


_REJECTION_COLUMNS = [
    ("facility", "text"),
    ("control_id", "text"),
    ("source", "text"),
    ("ack_code", "text"),
    ("errors", "jsonb"),
]


async def insert_rejections(conn: asyncpg.Connection, rows: Sequence[tuple]) -> None:
    """Record refused messages: (facility, control_id, source, ack_code, errors JSON)."""
    await insert_rows(conn, f"{S}.hl7_rejection", _REJECTION_COLUMNS, rows)
