"""Coordination of benefits: after a payer's remittance posts, bill the next coverage on file.

Runs in the remittance batch's transaction. For a claim's payer decision (not a reversal)
when the encounter has another coverage after that payer in COB order:

* the payer forwarded the claim (crossover: CLP02 19/20, remark MA18 or N89): record it and
  wait for the next payer's 835 (``crossover_wait``); ``check_crossovers`` opens a biller work
  item 'crossover_overdue' when it does not come in time;
* otherwise build the next payer's claim from every prior payer's stored adjudication
  (``cob.build_cob_claim``) and submit it like any new claim (scrub, 837, claim.submitted), or
  hold it with the reasons (claim.held) when the adjudications do not balance.

Idempotent: each payer's adjudication is stored once per encounter, and the next claim's id is
derived from the primary claim, so a redelivered remittance builds nothing twice.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import asyncpg

from services.billing import repository as repo
from services.billing.context import BillingContext
from services.billing.domain.claim import build_claim
from services.billing.domain.cob import CobRefused, build_cob_claim
from services.billing.domain.cob_remit import (
    ORDER,
    adjudication_record,
    cob_claim_id,
    is_crossover,
    next_coverage,
    prior_adjudication,
)
from services.billing.submission import Routed, hold, scrub_and_route
from shared.events import EncounterCodedPayload, Reason, RemittanceReceivedPayload
from shared.messaging import Emitter, Inbound

_log = logging.getLogger("rcm.billing")


async def after_remittances(
    conn: asyncpg.Connection, items: list[Inbound], emitter: Emitter, ctx: BillingContext
) -> None:
    """Bill (or await) the next payer of each remitted claim that has one."""
    for item in items:
        p: RemittanceReceivedPayload = item.event.payload
        if p.is_reversal or p.outcome == "reversed":
            continue  # a reversal is not an adjudication to bill the next payer from
        await _after_one(conn, item, p, emitter, ctx)


async def _after_one(
    conn: asyncpg.Connection,
    item: Inbound,
    p: RemittanceReceivedPayload,
    emitter: Emitter,
    ctx: BillingContext,
) -> None:
    row = (await repo.get_claims(conn, [p.claim_id])).get(p.claim_id)
    if row is None or row["frequency_code"] != "1":
        return  # not billing's claim, or a replacement/void (its original carries the COB)
    coded = EncounterCodedPayload.model_validate_json(row["coded"])
    coverages = coded.encounter.coverages
    primary_id = row["primary_claim_id"] or row["claim_id"]
    sequence = row["cob_sequence"]
    crossed = False
    if p.payer_id != row["payer_id"]:
        # A later coverage's payer answering on this claim's id: the claim crossed over to it.
        # An id none of the later coverages has is the billed payer naming itself otherwise
        # (an 835's REF*2U need not be the 837's payer id): its decision, as followup reads it.
        later = [
            c
            for c in coverages
            if c.payer_id == p.payer_id and ORDER.index(c.sequence) > ORDER.index(sequence)
        ]
        if later:
            sequence, crossed = later[0].sequence, True
    stored = await repo.record_adjudication(
        conn,
        primary_id,
        sequence,
        p.remittance_id,
        p.payer_id,
        adjudication_record(p, datetime.now(UTC).date()),
    )
    if not stored:
        return  # this payer's decision was acted on before (a redelivery)
    if crossed:
        await repo.crossover_received(conn, primary_id, sequence)
        await repo.add_history(
            conn,
            [
                repo.StatusChange(
                    primary_id,
                    "crossover_received",
                    {"cob_sequence": sequence, "payer": p.payer_id, "outcome": p.outcome},
                )
            ],
        )
    nxt = next_coverage(coverages, sequence)
    if nxt is None:
        return  # the last payer adjudicated: what remains is the patient's
    if is_crossover(p):
        due = datetime.now(UTC) + timedelta(days=ctx.crossover_wait_days)
        await repo.wait_for_crossover(
            conn, primary_id, nxt.sequence, row["site_id"], nxt.payer_id, due
        )
        await repo.add_history(
            conn,
            [
                repo.StatusChange(
                    p.claim_id,
                    "crossover",
                    {"next_payer": nxt.payer_id, "awaited_until": due.isoformat()},
                )
            ],
        )
        return
    await _bill_next(conn, item, coded, primary_id, nxt.sequence, emitter, ctx)


async def _bill_next(
    conn: asyncpg.Connection,
    item: Inbound | None,
    coded: EncounterCodedPayload,
    primary_id: str,
    target: str,
    emitter: Emitter,
    ctx: BillingContext,
    hold_for: list[Reason] | None = None,
) -> None:
    """Build the ``target`` payer's claim from the stored adjudications and send it, or hold it
    with the reasons (``hold_for``: held whatever else is found)."""
    primary = build_claim(
        coded,
        claim_id=primary_id,
        chargemaster=await ctx.chargemaster(conn, coded.encounter.site_id),
    )
    stored = await repo.adjudications(conn, primary_id)
    prior = [prior_adjudication(stored[s]) for s in ORDER[: ORDER.index(target)] if s in stored]
    claim_id = cob_claim_id(primary_id, target)
    findings: list[Reason] = list(hold_for or ())
    try:
        claim = replace(build_cob_claim(primary, prior), claim_id=claim_id)
    except CobRefused as refused:
        # Held, billed to the target coverage as it stands, with the reasons.
        by_seq = {c.sequence: c for c in (primary.payer, *primary.other_coverages) if c}
        claim = replace(
            primary,
            claim_id=claim_id,
            payer=by_seq.get(target, primary.payer),
            other_coverages=tuple(c for s, c in by_seq.items() if s != target),
        )
        findings += [Reason(code="COB", message=r[:300]) for r in refused.reasons]
    new = await repo.insert_claims(
        conn,
        [
            repo.ClaimRow(
                claim_id=claim.claim_id,
                encounter_id=claim.encounter_id,
                site_id=claim.site_id,
                payer_id=claim.payer.payer_id if claim.payer else None,
                claim_type=claim.claim_type,
                frequency_code="1",
                original_claim_id=None,
                payer_claim_control_number=None,
                total_charge=claim.total_charge,
                service_date=claim.service_date,
                coded=coded.model_dump_json(),
                traceparent=item.traceparent if item else None,
                cob_sequence=target,
                primary_claim_id=primary_id,
            )
        ],
    )
    if claim.claim_id not in new:
        return  # built before
    # On the primary claim's timeline: which claim now bills the next payer, and whether it
    # went out or was held.
    await repo.add_history(
        conn,
        [
            repo.StatusChange(
                primary_id,
                f"{target}_held" if findings else f"{target}_billed",
                {
                    "claim": claim.claim_id,
                    "payer": claim.payer.payer_id if claim.payer else None,
                    "reasons": [f.message for f in findings],
                },
            )
        ],
    )
    if findings:
        await hold(conn, [Routed(claim, item, findings)], emitter, ctx)
    else:
        await scrub_and_route(conn, [(claim, item)], emitter, ctx)


async def check_crossovers(
    conn: asyncpg.Connection, now: datetime, ctx: BillingContext | None = None
) -> int:
    """For each crossover whose next payer's 835 did not come by its due time: a
    'crossover_overdue' work item and a line on the primary claim's timeline; with ``ctx``
    (the running service), also that payer's claim, built from the stored adjudications and
    held (claim.held: the billers' work list) for a biller to release, billing the payer
    directly, or to resolve when the 835 comes after all. Returns how many; each wait is
    reported once."""
    emitter = Emitter(repo.SCHEMA)
    async with conn.transaction():
        overdue = await repo.overdue_crossovers(conn, now)
        reasons = {
            (r["primary_claim_id"], r["cob_sequence"]): Reason(
                code="CROSSOVER_835_OVERDUE",
                message=f"no 835 from the {r['cob_sequence']} payer {r['payer_id']} since the"
                f" claim crossed over (due {r['due_at'].date().isoformat()})",
            )
            for r in overdue
        }
        await repo.open_work_items(
            conn,
            [
                repo.WorkItemRow(
                    r["primary_claim_id"],
                    r["site_id"],
                    "crossover_overdue",
                    json.dumps([reasons[r["primary_claim_id"], r["cob_sequence"]].model_dump()]),
                )
                for r in overdue
            ],
        )
        await repo.add_history(
            conn,
            [
                repo.StatusChange(
                    r["primary_claim_id"],
                    "crossover_overdue",
                    {"cob_sequence": r["cob_sequence"], "payer": r["payer_id"]},
                )
                for r in overdue
            ],
        )
        if ctx is not None and overdue:
            primaries = await repo.get_claims(
                conn, sorted({r["primary_claim_id"] for r in overdue})
            )
            for r in overdue:
                coded = EncounterCodedPayload.model_validate_json(
                    primaries[r["primary_claim_id"]]["coded"]
                )
                await _bill_next(
                    conn,
                    None,
                    coded,
                    r["primary_claim_id"],
                    r["cob_sequence"],
                    emitter,
                    ctx,
                    hold_for=[reasons[r["primary_claim_id"], r["cob_sequence"]]],
                )
            await emitter.flush(conn)
    if overdue:
        _log.info("crossover 835 overdue", extra={"count": len(overdue)})
    return len(overdue)
