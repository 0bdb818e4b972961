"""Chasing claims the payer has not answered, and reading the answers (276 out, 277 in).

``run_no_response`` (the hourly loop and ``POST /jobs/no-response``): claims with no
277CA after the payer's N days or no 835 after M days become work items and lines
of one 276 inquiry queued for the outbound mailbox; open work items get their
priority and escalation recomputed as deadlines near. ``apply_277`` takes 277
responses from the inbound mailbox into each claim's status history.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, date, datetime
from pathlib import Path

import asyncpg

from services.followup import repository as repo
from services.followup.context import FollowupContext
from services.followup.domain.deadlines import PayerPolicies, days_left, escalation
from services.followup.domain.noresponse import ClaimTrack, find_no_response
from services.followup.domain.priority import priority
from services.followup.domain.x12_276 import build_276
from services.followup.domain.x12_277 import parse_277, status_outcome
from services.followup.parties import inquiry_for
from services.followup.settings import FollowupSettings
from shared.lifecycle import wait_stopped
from shared.logs import log
from shared.mailbox import add_outbound
from shared.messaging import Emitter

_log = logging.getLogger("rcm.followup.noresponse")
LABELS = {
    "no_277ca": "No claim acknowledgment (277CA) after {days} days",
    "no_835": "No remittance (835) after {days} days",
}
NEEDS_CORRECTION = frozenset({"rejected", "not found"})


async def reprioritize(
    conn: asyncpg.Connection, as_of: date, sites: list[str] | None = None
) -> int:
    """Recompute priority and escalation of open items (of ``sites``; all when None) from days to
    their deadline; return how many changed."""
    changed = []
    for r in await repo.open_items_with_deadlines(conn, sites):
        left = days_left(r["deadline_date"], as_of)
        p, esc = priority(r["amount"], left), escalation(left)
        if (p, esc) != (r["priority"], r["escalation"]):
            changed.append(repo.Reprioritized(r["work_item_id"], p, esc))
    await repo.set_priorities(conn, changed)
    return len(changed)


def _track(r) -> ClaimTrack:
    return ClaimTrack(
        claim_id=r["claim_id"],
        payer_id=r["payer_id"] or "",
        service_date=r["service_date"] or r["submitted_at"].date(),
        submitted_on=r["submitted_at"].date(),
        total_charge=r["total_charge"],
        filing_indicator=r["filing_indicator"],
        acknowledged_on=r["acknowledged_at"].date() if r["acknowledged_at"] else None,
        last_inquiry_on=r["last_inquiry_date"],
        filing_deadline=r["filing_deadline"],
    )


async def run_no_response(
    pool: asyncpg.Pool,
    as_of: date,
    *,
    outbound_dir: Path,
    policies: PayerPolicies | None = None,
    sender_id: str = "RCM",
    receiver_id: str = "CLEARINGHOUSE",
    sites: list[str] | None = None,
) -> dict:
    """One pass of the job over the claims of ``sites`` (all when None), in one transaction (one
    runner at a time across instances).

    Returns counts and the 276 file name (None when no claim could be inquired about).
    """
    async with pool.acquire() as conn, conn.transaction():
        await repo.lock_no_response_run(conn)
        rows = {r["claim_id"]: r for r in await repo.unanswered_claims(conn, sites)}
        found = find_no_response([_track(r) for r in rows.values()], as_of, policies)
        work, inquiries, missing = [], [], 0
        for n in found:
            r = rows[n.claim_id]
            work.append(
                repo.WorkItemRow(
                    source_key=f"noresponse:{n.claim_id}:{n.reason}",
                    claim_id=n.claim_id,
                    encounter_id=r["encounter_id"],
                    site_id=r["site_id"],
                    payer_id=n.payer_id,
                    category="no response",
                    action="check claim status",
                    label=LABELS[n.reason].format(days=n.days_waiting),
                    group_code=None,
                    carc=None,
                    rarc="[]",
                    amount=r["total_charge"],
                    deadline_date=n.filing_deadline,
                    priority=n.priority,
                    escalation=n.escalation,
                )
            )
            inquiry = inquiry_for(r)
            if inquiry is None:
                # No subscriber/provider data from encounter.coded: the work item still opens.
                missing += 1
            else:
                inquiries.append(inquiry)
        opened = await repo.open_work_items(conn, work)
        file_name = None
        if inquiries:
            icn, gcn = await repo.next_control_numbers(conn)
            text = build_276(
                inquiries, icn, gcn, datetime.now(UTC), sender_id=sender_id, receiver_id=receiver_id
            )
            file_name = f"276_{icn:09d}.x12"
            await add_outbound(conn, repo.SCHEMA, outbound_dir, file_name, text)
            ids = [i.claim_id for i in inquiries]
            await repo.mark_inquired(conn, ids, as_of)
            await repo.record_status(
                conn,
                [
                    repo.StatusRow(c, "276", None, None, "inquiry sent", as_of, None, file_name)
                    for c in ids
                ],
            )
        changed = await reprioritize(conn, as_of, sites)
    log(
        _log,
        logging.INFO,
        "no-response pass",
        count=len(found),
        file_name=file_name,
        status=f"opened={opened}",
    )
    return {
        "as_of": as_of.isoformat(),
        "claims": len(found),
        "work_items_opened": opened,
        "inquiries": len(inquiries),
        "without_party_data": missing,
        "file_name": file_name,
        "reprioritized": changed,
    }


async def no_response_pass(
    pool: asyncpg.Pool,
    settings: FollowupSettings,
    ctx: FollowupContext,
    as_of: date,
    sites: list[str] | None = None,
) -> dict:
    """``run_no_response`` as the service is configured, over ``sites`` (all when None); wakes
    the 276 file writer when it queued one."""
    result = await run_no_response(
        pool,
        as_of,
        outbound_dir=settings.outbound_dir,
        policies=ctx.policies,
        sender_id=settings.followup.sender_id,
        receiver_id=settings.followup.receiver_id,
        sites=sites,
    )
    if result["file_name"]:
        ctx.files_written.set()
    return result


async def apply_277(conn: asyncpg.Connection, text: str, file_name: str, emitter: Emitter) -> None:
    """Record each claim status of a 277 in the claim's history.

    Rejected / not-found statuses open a correction work item; statuses for a claim
    followup does not know open an ``unclassified`` item. Raises ``X12Error`` for a
    file that is not a readable 277 (the mailbox moves it to failed/).
    """
    statuses = parse_277(text)
    claims = await repo.claim_sites(conn, [s.claim_id for s in statuses])
    history, work, seen = [], [], []
    for s in statuses:
        outcome = status_outcome(s.status_category)
        history.append(
            repo.StatusRow(
                claim_id=s.claim_id,
                source="277",
                status_category=s.status_category,
                status_code=s.status_code,
                outcome=outcome,
                effective_date=s.effective_date,
                payer_claim_control_number=s.payer_claim_control_number,
                file_name=file_name,
            )
        )
        c = claims.get(s.claim_id)
        key = f"277:{s.claim_id}:{s.status_category}:{s.status_code}:{s.effective_date}"
        if c is None:
            work.append(
                repo.WorkItemRow(
                    source_key=key,
                    claim_id=s.claim_id,
                    encounter_id="",
                    site_id="unknown",
                    payer_id=None,
                    category="unclassified",
                    action="review",
                    label=f"277 status {s.status_category}:{s.status_code} for an unknown claim",
                    group_code=None,
                    carc=None,
                    rarc="[]",
                    amount=s.total_charge or 0,
                    deadline_date=None,
                    priority=0,
                )
            )
            continue
        if outcome in NEEDS_CORRECTION:
            work.append(
                repo.WorkItemRow(
                    source_key=key,
                    claim_id=s.claim_id,
                    encounter_id=c["encounter_id"],
                    site_id=c["site_id"],
                    payer_id=c["payer_id"],
                    category="missing/invalid information",
                    action="correct and resubmit",
                    label=f"Payer status {s.status_category}:{s.status_code} ({outcome})",
                    group_code=None,
                    carc=None,
                    rarc="[]",
                    amount=c["total_charge"],
                    deadline_date=None,
                    priority=priority(c["total_charge"], None),
                )
            )
        elif outcome not in ("error", "unknown"):
            seen.append(s.claim_id)  # the payer has the claim
    await repo.record_status(conn, history)
    await repo.set_acknowledged(conn, seen)
    await repo.set_status_categories(
        conn, [(s.claim_id, s.status_category) for s in statuses if s.claim_id in claims]
    )
    await repo.open_work_items(conn, work)
    log(_log, logging.INFO, "277 applied", file_name=file_name, count=len(statuses))


async def every(stop: asyncio.Event, interval: float, run) -> None:
    """Run ``run()`` now and every ``interval`` seconds until ``stop``."""
    while not stop.is_set():
        try:
            await run()
        except asyncio.CancelledError:
            raise
        except Exception as e:  # database away, bad data: report and try again next interval
            log(
                _log,
                logging.WARNING,
                "periodic job failed",
                error_type=type(e).__name__,
                component=getattr(run, "__name__", "job"),
            )
        await wait_stopped(stop, interval)
