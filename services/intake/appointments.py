"""Eligibility before the visit (docs/eligibility.md, "Scheduled visits"): intake learns of
scheduled visits from FHIR Appointments and asks the payers about their coverages

- in a batch, once the date of service is RCM_INTAKE_ELIGIBILITY_BATCH_DAYS days away or
  fewer (``batch_pass``, run by the eligibility loop of every intake instance);
- at check-in (an Appointment update to arrived or checked-in), unless a fresh answer is
  already there or one is on its way (``accept_appointments``).

Each check is an ordinary eligibility check (``eligibility_flow.send``) keyed by its coverage
(site, MRN, payer, member id, relationship, date of service) and filed under the encounter id
``Appointment/<id>``: its 271, AAA retries and registration work items follow the same rules,
and the encounter documented later finds the answer by its coverage key and reuses it while it
is fresh (no second 270).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import asyncpg

from services.intake import appointments_repository as repo
from services.intake import eligibility_flow as flow
from services.intake import eligibility_repository as checks_repo
from services.intake.domain.appointments import ParsedAppointment
from services.intake.domain.eligibility.flow import (
    SCHEDULED,
    checks_in,
    coverage_key,
    in_batch_window,
    is_fresh,
    needs_asking,
)
from shared.events import Encounter


def filed_under(appointment_id: str) -> str:
    """The encounter id an appointment's checks and work items are filed under (encounter ids
    intake maps from FHIR never hold a slash: it names no encounter)."""
    return f"Appointment/{appointment_id}"


def keys_of(visit: Encounter) -> dict[str, str]:
    return {
        c.sequence: coverage_key(visit.site_id, visit.patient.patient_id, c, visit.service_date)
        for c in visit.coverages
    }


@dataclass
class Stored:
    """What became of one appointment of a request."""

    appointment_id: str
    site_id: str
    status: str  # accepted, conflict
    appointment_status: str
    checks: list[dict] = field(default_factory=list)
    not_sent: list[dict] = field(default_factory=list)
    warnings: list = field(default_factory=list)

    def as_json(self) -> dict:
        out: dict = {"appointment_id": self.appointment_id, "status": self.status}
        if self.status == "conflict":
            out["message"] = "this appointment id belongs to another site's appointment"
            return out
        out["appointment_status"] = self.appointment_status
        out["checks"] = self.checks
        out["not_sent"] = self.not_sent
        out["warnings"] = self.warnings
        return out


class _Asking:
    """The 270s of one transaction: one per coverage key at most."""

    def __init__(self, cfg: flow.Config, now: datetime):
        self.cfg, self.now = cfg, now
        self.asks: list[flow.Ask] = []
        self.keys: set[str] = set()

    async def add(
        self, conn: asyncpg.Connection, appointment_id: str, visit: Encounter, by: str
    ) -> tuple[list[flow.Ask], list[tuple[str, str]]]:
        """Ask about the coverages of ``visit`` that have no fresh answer and none coming."""
        keys = keys_of(visit)
        latest = await checks_repo.latest_by_key(conn, list(keys.values()))
        wanted = set()
        for seq, key in keys.items():
            row = latest.get(key)
            state, at = (row["state"], row["answered_at"]) if row is not None else (None, None)
            if key not in self.keys and needs_asking(state, at, self.now, self.cfg.fresh_for):
                wanted.add(seq)
        if not wanted:
            return [], []
        filed = filed_under(appointment_id)
        asks, bad = flow.asks_for(visit, self.cfg, wanted, by)
        asks = [replace(a, encounter_id=filed) for a in asks]
        # model_copy: the id is a filing key here, not an encounter id the model would accept
        await flow.open_unsendable(conn, visit.model_copy(update={"encounter_id": filed}), bad)
        for a in asks:
            self.keys.add(a.key)
        self.asks.extend(asks)
        return asks, bad

    async def send(self, conn: asyncpg.Connection) -> dict[int, str]:
        """Queue the 270 file; the trace number of each ask (by its identity)."""
        traces = await flow.send(conn, self.cfg, self.asks)
        return {id(a): t for a, t in zip(self.asks, traces, strict=True)}


async def accept_appointments(
    conn: asyncpg.Connection, parsed: Sequence[ParsedAppointment]
) -> list[Stored]:
    """Store each appointment (the caller's transaction) and ask at check-in."""
    cfg = flow.current()
    now = datetime.now(UTC)
    asking = (
        _Asking(cfg, now)
        if cfg is not None and cfg.settings.mode != "off" and cfg.settings.check_in
        else None
    )
    out: list[Stored] = []
    pending: list[tuple[Stored, list[flow.Ask]]] = []
    for a in parsed:
        visit = a.visit
        prev = await repo.current(conn, a.appointment_id)
        if prev is not None and prev["site_id"] != visit.site_id:
            out.append(Stored(a.appointment_id, prev["site_id"], "conflict", a.status))
            continue
        arriving = checks_in(prev["status"] if prev else None, a.status)
        await repo.store(
            conn,
            appointment_id=a.appointment_id,
            site_id=visit.site_id,
            status=a.status,
            service_date=visit.service_date,
            coverage_keys=keys_of(visit),
            visit_json=visit.model_dump_json(),
            checked_in=arriving,
            now=now,
        )
        stored = Stored(
            a.appointment_id,
            visit.site_id,
            "accepted",
            a.status,
            warnings=[w.as_dict() for w in a.warnings],
        )
        out.append(stored)
        if asking is not None and arriving:
            asks, bad = await asking.add(conn, a.appointment_id, visit, "check_in")
            stored.not_sent = [{"coverage": s, "reason": why} for s, why in bad]
            pending.append((stored, asks))
    if asking is not None and asking.asks:
        traces = await asking.send(conn)
        for stored, asks in pending:
            stored.checks = [
                {
                    "trace_number": traces[id(x)],
                    "coverage": x.sequence,
                    "payer_id": x.request.payer_id,
                }
                for x in asks
            ]
    return out


async def batch_pass(pool: asyncpg.Pool, cfg: flow.Config, limit: int = 200) -> int:
    """Ask about the visits whose date has come within the batch window (each once: a check-in
    asks again when its answer is stale). Returns the number of 270 requests queued."""
    days = cfg.settings.batch_days
    if days <= 0:
        return 0
    now = datetime.now(UTC)
    today = now.date()
    async with pool.acquire() as conn, conn.transaction():
        rows = await repo.batch_due(
            conn, sorted(SCHEDULED), today, today + timedelta(days=days), limit
        )
        asking = _Asking(cfg, now)
        looked = []
        for r in rows:
            if not in_batch_window(r["service_date"], today, days):
                continue
            visit = Encounter.model_validate_json(r["visit"])
            await asking.add(conn, r["appointment_id"], visit, "batch")
            looked.append(r["appointment_id"])
        await asking.send(conn)
        await repo.mark_batched(conn, looked, now)
    return len(asking.asks)


async def eligibility_of(conn: asyncpg.Connection, row: asyncpg.Record) -> list[dict]:
    """The newest check of each coverage of a stored appointment, whoever asked (the batch,
    check-in, the documented encounter, a user): what registration staff look at."""
    keys: dict[str, str] = json.loads(row["coverage_keys"])
    checks = {r["coverage_key"]: r for r in await repo.latest_checks(conn, list(keys.values()))}
    visit = Encounter.model_validate_json(row["visit"])
    payers = {c.sequence: c for c in visit.coverages}
    cfg, now = flow.current(), datetime.now(UTC)
    out = []
    for seq, key in keys.items():
        c = checks.get(key)
        cov = payers.get(seq)
        item = {
            "coverage": seq,
            "payer_id": cov.payer_id if cov else None,
            "payer_name": cov.payer_name if cov else None,
        }
        item.update(_check(c) if c is not None else {"state": "not_asked"})
        if cfg is not None:  # reused (by the encounter, a check-in) rather than asked again
            at = c["answered_at"] if c is not None else None
            item["fresh"] = is_fresh(item["state"], at, now, cfg.fresh_for)
        out.append(item)
    return out


def _check(r: asyncpg.Record) -> dict:
    def at(v):
        return v.isoformat() if v is not None else None

    return {
        "trace_number": r["trace_number"],
        "attempt": r["attempt"],
        "requested_by": r["requested_by"].split(":", 1)[0],
        "state": r["state"],
        "outcome": r["outcome"],
        "reason_code": r["reason_code"],
        "reason": r["reason"],
        "eligibility": json.loads(r["summary"]) if r["summary"] else None,
        "sent_at": at(r["created_at"]),
        "answered_at": at(r["answered_at"]),
        "retry_at": at(r["retry_at"]),
    }
