"""Held claims released when their data arrives.

Two ways: the EHR re-sends the encounter (intake numbers the new content
``document_version`` 2, 3...; coding re-emits ``encounter.coded`` carrying it), or a biller
fills the missing fields (``PATCH /claims/{id}/billing-data``). Either rebuilds the claim
from the new data, re-scrubs it and holds it again (what is still missing) or sends it.

Only a claim not yet sent (created, held) is rebuilt. An older or equal version is ignored
(a redelivery). A claim held on the unassigned site (intake could not tell the encounter's
site) moves to the site the newer version names; a newer version naming another real site is
refused (``ValueError``: dead-lettered; coding never emits one). A claim already submitted
is never sent again as an original: the newer documentation is recorded in its history, and
followup opens the biller's "corrected documentation after submission" work item (it sees
the same encounter.coded).
"""

from __future__ import annotations

from typing import NamedTuple

import asyncpg

from services.billing import repository as repo
from services.billing.context import BillingContext
from services.billing.domain.claim import Claim, build_claim
from services.billing.estimates import record_estimates
from services.billing.submission import claim_row, scrub_and_route
from shared.claim_ids import claim_id_for
from shared.events import UNASSIGNED_SITE, EncounterCodedPayload
from shared.messaging import Emitter, Inbound

REBUILDABLE = frozenset({"created", "held"})


class Rebuild(NamedTuple):
    """A not-yet-sent original claim and the newer coded encounter to rebuild it from."""

    claim_id: str
    coded: EncounterCodedPayload
    item: Inbound | None


async def split_coded(
    conn: asyncpg.Connection, items: list[Inbound], emitter: Emitter, ctx: BillingContext
) -> list[Inbound]:
    """Apply the newer versions of encounters that already have a claim; return the rest
    (encounters seen for the first time, billed as new claims)."""
    latest: dict[str, Inbound] = {}
    for item in items:  # an encounter twice in a batch: its newest version
        enc = item.event.payload.encounter
        seen = latest.get(enc.encounter_id)
        if seen is None or enc.document_version > seen.event.payload.encounter.document_version:
            latest[enc.encounter_id] = item
    have = await repo.originals(conn, [claim_id_for(e) for e in latest])
    new, rebuilds, after_submission = [], [], []
    for encounter_id, item in latest.items():
        original = have.get(claim_id_for(encounter_id))
        version = item.event.payload.encounter.document_version
        if original is None:
            new.append(item)
        elif version <= original.document_version:
            continue  # a redelivery, or older documentation than the claim's
        elif original.site_id not in (item.event.payload.encounter.site_id, UNASSIGNED_SITE):
            raise ValueError(f"encounter {encounter_id}: a newer version names another site")
        elif original.status in REBUILDABLE:
            rebuilds.append(Rebuild(original.claim_id, item.event.payload, item))
        else:
            after_submission.append(
                repo.StatusChange(
                    original.claim_id,
                    original.status,
                    {"documentation_after_submission": version},
                )
            )
    await repo.add_history(conn, after_submission)
    await rebuild(conn, rebuilds, emitter, ctx)
    return new


async def rebuild(
    conn: asyncpg.Connection, rebuilds: list[Rebuild], emitter: Emitter, ctx: BillingContext
) -> list[Claim]:
    """Rebuild each claim from its newer data, lift its hold and route it again."""
    claims = []
    for r in rebuilds:
        enc = r.coded.encounter
        claim = build_claim(
            r.coded, claim_id=r.claim_id, chargemaster=await ctx.chargemaster(conn, enc.site_id)
        )
        # The rebuild keeps the claim's identity, corrections and trace: only its content moves.
        await repo.rebuild_claim(conn, claim_row(claim, r.coded, None))
        claims.append(claim)
    await repo.resolve_work_items(conn, [c.claim_id for c in claims])
    await scrub_and_route(
        conn, [(c, r.item) for c, r in zip(claims, rebuilds, strict=True)], emitter, ctx
    )
    await record_estimates(conn, [(c, r.coded) for c, r in zip(claims, rebuilds, strict=True)])
    return claims
