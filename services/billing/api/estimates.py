"""Patient estimates (issue 21 item 2).

POST /estimates: services (CPT/HCPCS with units) at a site, priced from its chargemaster,
with the coverage's benefits or self-pay -> the estimate; a self-pay one carries its Good
Faith Estimate document (plain text).
GET /encounters/{encounter_id}/estimate: the estimate billing made when it built the
encounter's claim, and beside it, once payments' remittance.received came, the patient
responsibility the payers stated (which replaces the estimate). Audited: a self-pay one
carries the patient's name and birth date in its Good Faith Estimate.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.billing import estimates as store
from services.billing import repository as repo
from services.billing.api.deps import State
from services.billing.domain.estimate import (
    Benefits,
    EstimateLine,
    GfePatient,
    GfeProvider,
    estimate,
    good_faith_estimate,
)
from shared import audit, clock
from shared.auth import Principal
from shared.events import EncounterCodedPayload, Organization
from shared.service import requires

router = APIRouter()

# Estimates for patients: billing staff and their leads; auditors read the stored ones.
EstimateWriter = Annotated[Principal, requires("biller", "supervisor")]
EstimateReader = Annotated[Principal, requires("biller", "supervisor", "auditor")]

_CODE = r"^(?:\d{5}|\d{4}[FTU]|[A-V]\d{4})$"
Money = Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServiceIn(_Strict):
    code: Annotated[str, Field(pattern=_CODE)]
    units: Annotated[Decimal, Field(gt=0, le=999, max_digits=7, decimal_places=3)] = Decimal(1)
    modifiers: Annotated[
        list[Annotated[str, Field(pattern=r"^[A-Z0-9]{2}$")]], Field(max_length=4)
    ] = []


class CoverageIn(_Strict):
    """The coverage's in-network individual benefits (as a 271 states them)."""

    copay: Money | None = None
    coinsurance_percent: (
        Annotated[Decimal, Field(ge=0, le=100, max_digits=5, decimal_places=2)] | None
    ) = None
    deductible_remaining: Money | None = None
    out_of_pocket_remaining: Money | None = None


class ProviderIn(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=120)]
    npi: Annotated[str, Field(pattern=r"^\d{10}$")] | None = None
    tax_id: Annotated[str, Field(pattern=r"^\d{2}-?\d{7}$")] | None = None
    location: Annotated[str, Field(max_length=200)] | None = None


class PatientIn(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=120)] | None = None
    birth_date: date | None = None


class EstimateIn(_Strict):
    site_id: Annotated[str, Field(min_length=1, max_length=32)]
    services: Annotated[list[ServiceIn], Field(min_length=1, max_length=50)]
    coverage: CoverageIn | None = None
    self_pay: bool = False
    service_date: date | None = None
    diagnoses: Annotated[
        list[Annotated[str, Field(pattern=r"^[A-Z][0-9A-Z]{2,6}$")]], Field(max_length=12)
    ] = []
    provider: ProviderIn | None = None  # for the Good Faith Estimate (default: the site)
    patient: PatientIn | None = None  # for the Good Faith Estimate (PHI: never logged)


def _parse(body: Any) -> EstimateIn:
    """422 naming each bad field (never its value: the body may hold a patient's name)."""
    try:
        req = EstimateIn.model_validate(body)
    except ValidationError as e:
        problems = [
            {"field": ".".join(str(x) for x in err["loc"]) or "body", "problem": err["msg"]}
            for err in e.errors(include_input=False, include_url=False)
        ]
        raise HTTPException(422, problems) from None
    if req.self_pay == (req.coverage is not None):
        raise HTTPException(
            422,
            [{"field": "coverage", "problem": "give the coverage's benefits, or self_pay: true"}],
        )
    return req


@router.post("/estimates")
async def create_estimate(p: EstimateWriter, api: State, body: Annotated[Any, Body()] = None):
    """An estimate for services at a site. 403 for another site's; 422 naming bad fields.

    Nothing is stored: it is a quote, made again on request."""
    req = _parse(body)
    if not p.can_access(req.site_id):
        raise HTTPException(403, f"site {req.site_id} is not one of yours")
    async with api.pool.acquire() as conn:
        chargemaster = await api.context.chargemaster(conn, req.site_id)
    lines = []
    for s in req.services:
        item = chargemaster.lookup(s.code, s.modifiers)
        lines.append(
            EstimateLine(
                s.code,
                s.units,
                item.price if item else None,
                item.description if item else None,
                tuple(s.modifiers),
            )
        )
    benefits = None if req.self_pay else Benefits(**req.coverage.model_dump())
    est = estimate(lines, benefits)
    out = {"site_id": req.site_id, **store.estimate_json(est)}
    if req.self_pay:
        provider = req.provider or ProviderIn(name=f"Site {req.site_id}")
        patient = req.patient or PatientIn()
        out["good_faith_estimate"] = good_faith_estimate(
            est,
            GfeProvider(provider.name, provider.npi, provider.tax_id, provider.location),
            patient=GfePatient(patient.name, patient.birth_date),
            service_date=req.service_date,
            diagnoses=tuple(req.diagnoses),
            issued_on=clock.today(),
        )
    return out


@router.get("/encounters/{encounter_id}/estimate")
async def get_estimate(encounter_id: str, request: Request, p: EstimateReader, api: State):
    """The stored estimate and, once an 835 came, the patient responsibility it stated.

    404 for an encounter billing has no estimate of, 403 for another site's."""
    async with api.pool.acquire() as conn, conn.transaction():
        row = await store.encounter_estimate(conn, encounter_id)
        if row is None:
            raise HTTPException(404, f"no estimate for encounter {encounter_id}")
        if not p.can_access(row["site_id"]):
            raise HTTPException(403, f"encounter {encounter_id} belongs to another site")
        actual = await store.actual_responsibility(conn, encounter_id)
        await audit.record(
            conn,
            repo.SCHEMA,
            request,
            p,
            "read",
            "estimate",
            [encounter_id],
            account_key=audit.account_key(row["site_id"], _patient_id(row["coded"]), encounter_id),
            site_id=row["site_id"],
        )
    detail = json.loads(row["detail"])
    out = {
        "encounter_id": encounter_id,
        "claim_id": row["claim_id"],
        "site_id": row["site_id"],
        "estimated_at": row["updated_at"].isoformat(),
        "estimate": {k: v for k, v in detail.items() if k not in ("service_date", "diagnoses")},
        "actual": actual,
        # the payer's word replaces the estimate once it came
        "patient_responsibility": (actual or {}).get("patient_responsibility")
        or detail["patient_responsibility"],
        "source": "remittance" if actual else "estimate",
    }
    if row["basis"] == "self_pay":
        out["good_faith_estimate"] = _stored_gfe(row, detail)
    return out


def _patient_id(coded) -> str | None:
    c = json.loads(coded) if isinstance(coded, str) else coded
    return ((c.get("encounter") or {}).get("patient") or {}).get("patient_id")


def _stored_gfe(row, detail: dict) -> str:
    """The Good Faith Estimate of a stored self-pay estimate, with the encounter's patient
    and billing provider (read from the claim's coded encounter)."""
    coded = EncounterCodedPayload.model_validate_json(row["coded"])
    enc = coded.encounter
    name = " ".join(x for x in (enc.patient.first_name, enc.patient.last_name) if x) or None
    lines = [
        EstimateLine(
            ln["code"],
            Decimal(ln["units"]),
            None if ln["unit_price"] is None else Decimal(ln["unit_price"]),
            ln["description"],
            tuple(ln["modifiers"]),
        )
        for ln in detail["lines"]
    ]
    return good_faith_estimate(
        estimate(lines, None),
        _provider(enc.billing_provider),
        patient=GfePatient(name, enc.patient.birth_date),
        service_date=date.fromisoformat(detail["service_date"]),
        diagnoses=tuple(detail.get("diagnoses") or ()),
        issued_on=row["created_at"].date(),
    )


def _provider(org: Organization) -> GfeProvider:
    a = org.address
    location = f"{a.line1}, {a.city}, {a.state} {a.postal_code}" if a else None
    return GfeProvider(org.name or "the billing provider", org.npi, org.tax_id, location)
