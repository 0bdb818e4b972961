"""SQL for the intake schema. Small functions taking a connection; ``$n`` parameters."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from services.intake.domain.registry import Payer, Provider, Site
from shared.db import columns_of, insert_rows, last_per_key
from shared.events import Address

S = "intake"


# --------------------------------------------------------------------------- encounter documents


@dataclass(frozen=True, slots=True)
class Received:
    """One mapped encounter to record: its id, site, content hash and its event's id."""

    encounter_id: str
    site_id: str
    content_hash: str
    event_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class Recorded:
    """What recording did: ``version`` is the new version, or None when nothing new was stored
    (``current_site`` then tells a duplicate, same site, from a conflict, another site's id)."""

    version: int | None
    current_version: int | None
    current_site: str | None


async def record_versions(
    conn: asyncpg.Connection, items: Sequence[Received]
) -> dict[str, Recorded]:
    """Record each encounter's content: a new encounter is version 1, different content for a
    known one is the next version, the same content again (or another site's encounter id)
    changes nothing. ``items`` must not repeat an encounter id. Returns a result per id.
    """
    if not items:
        return {}
    rows = await conn.fetch(
        f"INSERT INTO {S}.encounter AS e (encounter_id, site_id, version, content_hash)"
        " SELECT i, s, 1, h FROM unnest($1::text[], $2::text[], $3::text[]) AS t(i, s, h)"
        " ON CONFLICT (encounter_id) DO UPDATE"
        "   SET version = e.version + 1, content_hash = EXCLUDED.content_hash, updated_at = now()"
        "   WHERE e.content_hash <> EXCLUDED.content_hash AND e.site_id = EXCLUDED.site_id"
        " RETURNING e.encounter_id, e.version",
        [i.encounter_id for i in items],
        [i.site_id for i in items],
        [i.content_hash for i in items],
    )
    out = {r["encounter_id"]: Recorded(r["version"], r["version"], None) for r in rows}
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
