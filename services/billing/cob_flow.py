"""Coordination of benefits: after a payer's remittance posts, bill the next coverage on file.

Runs in the remittance batch's transaction. For a claim's payer decision (not a reversal)
when the encounter has another coverage after that payer in COB order:

* the payer forwarded the claim (crossover: CLP02 19/20, remark MA18 or N89): record it and
  wait for the next payer's 835 (``crossover_wait``); ``check_crossovers`` opens a biller work
  item 'crossover_overdue' when it does not come in time;
* the payer denied the claim for a reason the provider must fix first, or because another
  coverage pays first (``cob.denial_hold``): the next payer's claim is built and held with that
  reason, for the biller to correct the prior claim;
* otherwise build the next payer's claim from every prior payer's stored adjudication
  (``cob.build_cob_claim``) and submit it like any new claim (scrub, 837, claim.submitted), or
  hold it with the reasons (claim.held) when the adjudications do not balance.

A prior payer that decides again (the 835 of a corrected, frequency 7, claim; or a new decision
after it reversed the first) replaces the stored decision, and the next payer's claim follows:
rebuilt and sent when it was only held, replaced (frequency 7, REF*F8 = that payer's claim
number) when that payer already decided it, held when it has not yet. A prior payer's reversal
(CLP02 22, a void's answer too) after the next payer's claim went out opens a work item on it.

Idempotent: each payer's adjudication is stored once per encounter (a new decision replaces
it once), and the next claim's id is derived from the primary claim, so a redelivered
remittance builds nothing twice.
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
from services.billing.domain.cob import CobRefused, build_cob_claim, denial_hold
from services.billing.domain.cob_remit import (
    ORDER,
    adjudication_record,
    cob_claim_id,
    is_crossover,
    next_coverage,
    prior_adjudication,
)
from services.billing.submission import Routed, claim_row, hold, scrub_and_route
from shared import clock
from shared.claim_ids import claim_id_for
from shared.events import EncounterCodedPayload, Reason, RemittanceReceivedPayload
from shared.messaging import Emitter, Inbound

_log = logging.getLogger("rcm.billing")
# A next payer's claim that payer has decided: a new prior decision replaces it (frequency 7).
DECIDED = frozenset({"paid", "partially_paid", "denied"})
MAX_CHAIN = 50  # corrections of corrections: far more than any claim has
NOT_DECIDED = "COB_NEXT_PAYER_NOT_DECIDED"


async def after_remittances(
    conn: asyncpg.Connection, items: list[Inbound], emitter: Emitter, ctx: BillingContext
) -> None:
    """Bill (or await) the next payer of each remitted claim that has one."""
    for item in items:
        p: RemittanceReceivedPayload = item.event.payload
        if p.is_reversal or p.outcome == "reversed":
            # not an adjudication to bill the next payer from, but one that no longer stands
            await _after_reversal(conn, p)
            continue
        await _after_one(conn, item, p, emitter, ctx)


async def _root(conn: asyncpg.Connection, row: asyncpg.Record | None) -> asyncpg.Record | None:
    """The original (frequency 1) claim a replacement or void descends from (``row`` itself
    when it is one); None for a claim billing never made."""
    for _ in range(MAX_CHAIN):
        if row is None or row["frequency_code"] == "1" or not row["original_claim_id"]:
            break
        row = (await repo.get_claims(conn, [row["original_claim_id"]])).get(
            row["original_claim_id"]
        )
    return row if row is not None and row["frequency_code"] == "1" else None


async def _chain(conn: asyncpg.Connection, original_id: str) -> list[asyncpg.Record]:
    """An original claim and its replacements, oldest first (empty when never built)."""
    return await conn.fetch(
        f"WITH RECURSIVE c AS (SELECT *, 0 AS depth FROM {repo.SCHEMA}.claim WHERE claim_id = $1"
        f" UNION ALL SELECT n.*, c.depth + 1 FROM {repo.SCHEMA}.claim n JOIN c"
        " ON n.original_claim_id = c.claim_id WHERE n.frequency_code = '7' AND c.depth < $2)"
        " SELECT * FROM c ORDER BY depth, created_at",
        original_id,
        MAX_CHAIN,
    )


async def _replace_adjudication(
    conn: asyncpg.Connection,
    primary_id: str,
    sequence: str,
    p: RemittanceReceivedPayload,
    record: dict,
    corrected: bool,
) -> bool:
    """Store ``p`` as the payer's decision in place of the one stored, when it is a new
    decision: the 835 of a corrected claim (``corrected``), or any after the stored one was
    reversed. False for a redelivery, or for a second 835 on the same claim otherwise (the
    first one stands)."""
    got = await conn.fetchval(
        f"UPDATE {repo.SCHEMA}.prior_adjudication SET remittance_id = $3, payer_id = $4,"
        " adjudication = $5::jsonb, recorded_at = now() WHERE primary_claim_id = $1"
        " AND cob_sequence = $2 AND remittance_id <> $3 AND ($6 OR adjudication ? 'reversed_by')"
        " RETURNING 1",
        primary_id,
        sequence,
        p.remittance_id,
        p.payer_id,
        json.dumps(record),
        corrected,
    )
    return got is not None


async def _after_reversal(conn: asyncpg.Connection, p: RemittanceReceivedPayload) -> None:
    """A payer took its decision back (CLP02 22: a reversal, or the answer to a void). Its
    stored decision is marked reversed (the next one replaces it); when the next payer's claim
    was already sent on it, a 'prior_payer_reversed' work item on that claim for a biller."""
    root = await _root(conn, (await repo.get_claims(conn, [p.claim_id])).get(p.claim_id))
    if root is None:
        return
    sequence = root["cob_sequence"]
    primary_id = root["primary_claim_id"] or root["claim_id"]
    marked = await conn.fetchval(
        f"UPDATE {repo.SCHEMA}.prior_adjudication SET adjudication = adjudication"
        " || jsonb_build_object('reversed_by', $3::text) WHERE primary_claim_id = $1"
        " AND cob_sequence = $2 AND adjudication->>'reversed_by' IS DISTINCT FROM $3 RETURNING 1",
        primary_id,
        sequence,
        p.remittance_id,
    )
    if not marked:
        return  # nothing stored to reverse, or this reversal was handled before
    coded = EncounterCodedPayload.model_validate_json(root["coded"])
    nxt = next_coverage(coded.encounter.coverages, sequence)
    if nxt is None:
        return
    sent = [
        c
        for c in await _chain(conn, cob_claim_id(primary_id, nxt.sequence))
        if c["file_name"] is not None
    ]
    if not sent:
        return  # never billed (held, crossed over or not built): nothing out there to fix
    on = sent[-1]
    reason = Reason(
        code="COB_PRIOR_PAYER_REVERSED",
        message=f"the {sequence} payer reversed its decision (CLP02 22, remittance"
        f" {p.remittance_id}) after claim {on['claim_id']} was billed to the {nxt.sequence}"
        f" payer {nxt.payer_id} on it: correct or void that claim when the {sequence} payer"
        " decides again",
    )
    await repo.open_work_items(
        conn,
        [
            repo.WorkItemRow(
                on["claim_id"],
                on["site_id"],
                "prior_payer_reversed",
                json.dumps([reason.model_dump()]),
            )
        ],
    )
    detail = {"claim": on["claim_id"], "reversed_claim": p.claim_id, "payer": p.payer_id}
    await repo.add_history(
        conn,
        [
            repo.StatusChange(on["claim_id"], "prior_payer_reversed", detail),
            repo.StatusChange(primary_id, f"{sequence}_reversed", detail),
        ],
    )


async def _after_one(
    conn: asyncpg.Connection,
    item: Inbound,
    p: RemittanceReceivedPayload,
    emitter: Emitter,
    ctx: BillingContext,
) -> None:
    row = (await repo.get_claims(conn, [p.claim_id])).get(p.claim_id)
    if row is None or row["frequency_code"] == "8":
        return  # not billing's claim, or a void (answered by a reversal)
    root = await _root(conn, row)
    if root is None:
        return
    # A replacement's content (corrected codes) is what its payer decided on.
    coded = EncounterCodedPayload.model_validate_json(row["coded"])
    coverages = coded.encounter.coverages
    primary_id = root["primary_claim_id"] or root["claim_id"]
    sequence = root["cob_sequence"]
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
    record = adjudication_record(p, clock.today())
    stored = await repo.record_adjudication(
        conn, primary_id, sequence, p.remittance_id, p.payer_id, record
    )
    again = not stored and await _replace_adjudication(
        conn, primary_id, sequence, p, record, corrected=row["frequency_code"] == "7"
    )
    if not stored and not again:
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
    gate = _denial_gate(p, record, sequence)
    if again:  # on the timeline of an encounter with a next payer only: it matters there
        await repo.add_history(
            conn,
            [
                repo.StatusChange(
                    primary_id,
                    f"{sequence}_readjudicated",
                    {"claim": p.claim_id, "payer": p.payer_id, "outcome": p.outcome},
                )
            ],
        )
        earlier = await _chain(conn, cob_claim_id(primary_id, nxt.sequence))
        if earlier:
            await _follow(conn, item, coded, primary_id, nxt.sequence, earlier, gate, emitter, ctx)
            return
        if await conn.fetchval(
            f"SELECT 1 FROM {repo.SCHEMA}.crossover_wait WHERE primary_claim_id = $1"
            " AND cob_sequence = $2",
            primary_id,
            nxt.sequence,
        ):
            return  # the payer forwarded the claim: it forwards its new decision too (COBA)
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
    await _bill_next(conn, item, coded, primary_id, nxt.sequence, emitter, ctx, hold_for=gate)


def _denial_gate(p: RemittanceReceivedPayload, record: dict, sequence: str) -> list[Reason]:
    """The reason a denied prior claim may not go on to the next payer (none when it may, or
    when payments did not decide it a denial)."""
    if p.outcome != "denied":
        return []
    found = denial_hold(prior_adjudication(record), f"{sequence} payer")
    return [Reason(code=found.code, message=found.message)] if found else []


async def _follow(
    conn: asyncpg.Connection,
    item: Inbound,
    coded: EncounterCodedPayload,
    primary_id: str,
    target: str,
    earlier: list[asyncpg.Record],
    gate: list[Reason],
    emitter: Emitter,
    ctx: BillingContext,
) -> None:
    """The prior payer decided again: the ``target`` payer's claim follows its new decision.
    Never sent (held): rebuilt, and sent or held again (a held replacement stays one). Decided
    by that payer: replaced (frequency 7 with its claim number). Sent but not decided yet: a
    replacement is built and held (REF*F8 needs that payer's claim number, which only its 835
    gives); the next decision rebuilds it."""
    latest = earlier[-1]
    unsent = latest["status"] == "held" and latest["file_name"] is None
    replaces = latest
    if unsent:
        by_id = {c["claim_id"]: c for c in earlier}
        replaces = (
            by_id.get(latest["original_claim_id"]) if latest["frequency_code"] == "7" else None
        )
    waiting = []
    if replaces is not None and not (
        replaces["status"] in DECIDED and replaces["payer_claim_control_number"]
    ):
        waiting = [
            Reason(
                code=NOT_DECIDED,
                message=f"claim {replaces['claim_id']} to the {target} payer has no decision yet"
                f" (status {replaces['status']}): replace it once its 835 gives the payer's"
                " claim number, or ask the payer to disregard it",
            )
        ]
    await _bill_next(
        conn,
        item,
        coded,
        primary_id,
        target,
        emitter,
        ctx,
        hold_for=[*gate, *waiting],
        rebuild=latest if unsent else None,
        replaces=replaces,
    )


async def _bill_next(
    conn: asyncpg.Connection,
    item: Inbound | None,
    coded: EncounterCodedPayload,
    primary_id: str,
    target: str,
    emitter: Emitter,
    ctx: BillingContext,
    hold_for: list[Reason] | None = None,
    *,
    rebuild: asyncpg.Record | None = None,
    replaces: asyncpg.Record | None = None,
    frequency: str = "7",
    why: dict | None = None,
) -> None:
    """Build the ``target`` payer's claim from the stored adjudications and send it, or hold it
    with the reasons (``hold_for``: held whatever else is found). ``rebuild``: that payer's
    held, never sent claim, rebuilt in place; ``replaces``: that payer's claim the new one
    replaces (``frequency`` 7) or voids (8), REF*F8 its payer claim control number; ``why``:
    the replaced claim's status detail (the prior payers decided again, unless a biller's
    correction says otherwise)."""
    primary = build_claim(
        coded,
        claim_id=primary_id,
        chargemaster=await ctx.chargemaster(conn, coded.encounter.site_id),
    )
    stored = await repo.adjudications(conn, primary_id)
    prior = [prior_adjudication(stored[s]) for s in ORDER[: ORDER.index(target)] if s in stored]
    if rebuild is not None:
        claim_id = rebuild["claim_id"]
    elif replaces is not None:
        n = await repo.corrections_of(conn, replaces["claim_id"])
        claim_id = claim_id_for(coded.encounter.encounter_id, frequency, replaces["claim_id"], n)
    else:
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
    if replaces is not None:
        claim = replace(
            claim,
            frequency_code=frequency,
            original_claim_id=replaces["claim_id"],
            payer_claim_control_number=replaces["payer_claim_control_number"],
        )
    row = claim_row(claim, coded, item.traceparent if item else None)._replace(
        cob_sequence=target, primary_claim_id=primary_id
    )
    if rebuild is not None:
        # The hold it had was on the prior decision: this one decides anew.
        await repo.rebuild_claim(conn, row)
        await repo.resolve_work_items(conn, [claim.claim_id])
        # A held replacement gets the claim number its original's 835 has brought since.
        await conn.execute(
            f"UPDATE {repo.SCHEMA}.claim SET payer_claim_control_number = $2 WHERE claim_id = $1",
            claim.claim_id,
            claim.payer_claim_control_number,
        )
    elif claim.claim_id not in await repo.insert_claims(conn, [row]):
        return  # built before
    if replaces is not None and not findings:  # held, the replaced claim still stands
        await repo.set_status(
            conn,
            [
                repo.StatusChange(
                    replaces["claim_id"],
                    "corrected" if frequency == "7" else "voided",
                    {
                        "reason": "the prior payers decided again",
                        **(why or {}),
                        "replacement": claim.claim_id,
                    },
                )
            ],
        )
        # What was open on it (a prior payer's reversal, say) is answered by the replacement.
        await repo.resolve_work_items(conn, [replaces["claim_id"]])
    # On the primary claim's timeline: which claim now bills the next payer, and whether it
    # went out or was held.
    await repo.add_history(
        conn,
        [
            repo.StatusChange(
                primary_id,
                f"{target}_held"
                if findings
                else f"{target}_replaced"
                if replaces is not None
                else f"{target}_billed",
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


async def correct_next_payer_claim(
    conn: asyncpg.Connection,
    item: Inbound,
    original: asyncpg.Record,
    coded: EncounterCodedPayload,
    frequency: str,
    why: dict,
    emitter: Emitter,
    ctx: BillingContext,
) -> None:
    """A biller's correction (7) or void (8) of a secondary or tertiary claim: billed again to
    that claim's own payer, built from the prior payers' stored decisions (2320/2330B) as the
    claim it replaces was, never to the primary payer."""
    await _bill_next(
        conn,
        item,
        coded,
        original["primary_claim_id"],
        original["cob_sequence"],
        emitter,
        ctx,
        replaces=original,
        frequency=frequency,
        why=why,
    )


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
