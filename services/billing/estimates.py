"""Patient estimates kept per encounter, and the patient responsibility the 835s then stated.

``record_estimates`` runs when billing builds an encounter's claim (the coded batch's
transaction): the estimate from the claim's priced lines and the primary coverage's
eligibility benefits (``shared.events.EligibilitySummary``), or self-pay without coverage.
``record_remittances`` keeps each remittance.received's patient responsibility (payments
decides it; billing only shows it beside the estimate). SQL for both tables lives here.
"""

from __future__ import annotations

import json
from decimal import Decimal

import asyncpg

from services.billing.domain.claim import Claim
from services.billing.domain.estimate import Benefits, Estimate, EstimateLine, estimate
from services.billing.repository import SCHEMA
from shared.events import Coverage, EncounterCodedPayload, RemittanceReceivedPayload

_SEQUENCE_RANK = {"primary": 1, "secondary": 2, "tertiary": 3}


def benefits_of(coverage: Coverage | None) -> tuple[Benefits | None, str | None]:
    """(benefits, note): None benefits mean self-pay (no coverage, or the 271 said inactive)."""
    if coverage is None:
        return None, "no insurance on file: self-pay"
    e = coverage.eligibility
    if e is None:
        return Benefits(), "eligibility not checked: no benefits to estimate from"
    if e.status == "inactive":
        return None, "coverage inactive on the date of service: estimated as self-pay"
    return (
        Benefits(
            copay=e.copay,
            coinsurance_percent=e.coinsurance_percent,
            deductible_remaining=e.deductible_remaining,
            out_of_pocket_remaining=e.out_of_pocket_remaining,
        ),
        None if e.status == "active" else "eligibility unverified: benefits may be out of date",
    )


def claim_estimate(claim: Claim, coded: EncounterCodedPayload) -> tuple[Estimate, str | None]:
    """The estimate of an encounter's claim, from its primary coverage's benefits."""
    benefits, note = benefits_of(coded.encounter.primary_coverage)
    lines = [
        EstimateLine(ln.code, ln.units, ln.unit_price, ln.description, ln.modifiers)
        for ln in claim.lines
    ]
    return estimate(lines, benefits), note


def estimate_json(est: Estimate, note: str | None = None) -> dict:
    """An estimate as the API shows it (amounts as decimal strings, None when unknown)."""

    def money(v: Decimal | None) -> str | None:
        return None if v is None else str(v)

    b = est.benefits
    return {
        "basis": est.basis,
        "total_charge": money(est.total_charge),
        "patient_responsibility": money(est.patient_responsibility),
        "payer_responsibility": money(est.payer_responsibility),
        "copay": money(est.copay),
        "deductible": money(est.deductible),
        "coinsurance": money(est.coinsurance),
        "capped_by_out_of_pocket": est.capped_by_out_of_pocket,
        "benefits": None
        if b is None
        else {
            "copay": money(b.copay),
            "coinsurance_percent": money(b.coinsurance_percent),
            "deductible_remaining": money(b.deductible_remaining),
            "out_of_pocket_remaining": money(b.out_of_pocket_remaining),
        },
        "lines": [
            {
                "code": ln.code,
                "modifiers": list(ln.modifiers),
                "units": str(ln.units),
                "unit_price": money(ln.unit_price),
                "charge": money(ln.charge),
                "description": ln.description,
            }
            for ln in est.lines
        ],
        "unpriced": est.unpriced,
        "note": note,
    }


async def record_estimates(
    conn: asyncpg.Connection, built: list[tuple[Claim, EncounterCodedPayload]]
) -> None:
    """Store (or replace, for a newer document version) the estimate of each original claim
    billed to the encounter's primary coverage or self-pay. Codes and amounts only (no PHI)."""
    rows = []
    for claim, coded in built:
        if claim.frequency_code != "1" or (
            claim.payer is not None and claim.payer.sequence != "primary"
        ):
            continue
        est, note = claim_estimate(claim, coded)
        detail = estimate_json(est, note)
        detail["service_date"] = claim.service_date.isoformat()
        detail["diagnoses"] = [d.code for d in claim.diagnoses]
        rows.append(
            (
                claim.encounter_id,
                claim.claim_id,
                claim.site_id,
                est.basis,
                est.total_charge,
                est.patient_responsibility,
                est.payer_responsibility,
                json.dumps(detail),
            )
        )
    if rows:
        await conn.executemany(
            f"INSERT INTO {SCHEMA}.patient_estimate (encounter_id, claim_id, site_id, basis,"
            " total_charge, patient_responsibility, payer_responsibility, detail)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb)"
            " ON CONFLICT (encounter_id) DO UPDATE SET claim_id = excluded.claim_id,"
            " site_id = excluded.site_id, basis = excluded.basis,"
            " total_charge = excluded.total_charge,"
            " patient_responsibility = excluded.patient_responsibility,"
            " payer_responsibility = excluded.payer_responsibility, detail = excluded.detail,"
            " updated_at = now()",
            rows,
        )


async def record_remittances(
    conn: asyncpg.Connection, remits: list[tuple[str, RemittanceReceivedPayload]]
) -> None:
    """Keep each remittance's patient responsibility, by (encounter id, payload); a
    redelivered remittance is kept once."""
    if not remits:
        return
    await conn.executemany(
        f"INSERT INTO {SCHEMA}.remitted_patient_responsibility (remittance_id, claim_id,"
        " encounter_id, payer_id, outcome, patient_responsibility, is_reversal)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (remittance_id) DO NOTHING",
        [
            (
                p.remittance_id,
                p.claim_id,
                encounter_id,
                p.payer_id,
                p.outcome,
                p.patient_responsibility,
                p.is_reversal,
            )
            for encounter_id, p in remits
        ],
    )


async def encounter_estimate(conn: asyncpg.Connection, encounter_id: str):
    """The encounter's stored estimate with its claim's coded encounter, or None."""
    return await conn.fetchrow(
        f"SELECT e.*, c.coded FROM {SCHEMA}.patient_estimate e"
        f" JOIN {SCHEMA}.claim c ON c.claim_id = e.claim_id WHERE e.encounter_id = $1",
        encounter_id,
    )


async def actual_responsibility(conn: asyncpg.Connection, encounter_id: str) -> dict | None:
    """What the payers' 835s said the patient owes, or None before the first one.

    The last payer that adjudicated decides (a primary's patient responsibility is what the
    secondary is billed for): the sum of that claim's remittances, reversals netting out.
    ``final`` is False while a later payer's claim of the encounter has no remittance yet.
    """
    remits = await conn.fetch(
        f"SELECT r.remittance_id, r.claim_id, r.payer_id, r.outcome, r.patient_responsibility,"
        f" r.is_reversal, r.received_at, coalesce(c.cob_sequence, 'primary') AS cob_sequence"
        f" FROM {SCHEMA}.remitted_patient_responsibility r"
        f" LEFT JOIN {SCHEMA}.claim c ON c.claim_id = r.claim_id"
        " WHERE r.encounter_id = $1 ORDER BY r.received_at, r.remittance_id",
        encounter_id,
    )
    if not remits:
        return None
    claims = await conn.fetch(
        f"SELECT cob_sequence FROM {SCHEMA}.claim WHERE encounter_id = $1"
        " AND status NOT IN ('voided', 'corrected')",
        encounter_id,
    )
    last = max(_SEQUENCE_RANK[r["cob_sequence"]] for r in remits)
    deciding = [r for r in remits if _SEQUENCE_RANK[r["cob_sequence"]] == last]
    return {
        "patient_responsibility": str(
            sum((r["patient_responsibility"] for r in deciding), Decimal(0))
        ),
        "decided_by": deciding[-1]["payer_id"],
        "final": not any(_SEQUENCE_RANK[c["cob_sequence"]] > last for c in claims),
        "remittances": [
            {
                "remittance_id": r["remittance_id"],
                "claim_id": r["claim_id"],
                "payer_id": r["payer_id"],
                "cob_sequence": r["cob_sequence"],
                "outcome": r["outcome"],
                "patient_responsibility": str(r["patient_responsibility"]),
                "is_reversal": r["is_reversal"],
                "received_at": r["received_at"].isoformat(),
            }
            for r in remits
        ],
    }
