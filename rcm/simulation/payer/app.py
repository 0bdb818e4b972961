"""payer_sim: a stand-in clearinghouse + payer for demo, tests and benchmarks (never deployed).

Takes 837 files from billing's outbound mailbox (exactly once), answers each
with a 999, a 277CA and an ERA file (an 835 transaction set per payer and payee)
in the inbound mailbox, optionally after a delay. Takes 270 eligibility inquiries from
the same mailbox and answers each with a 271 (``*.271``).
Decisions are deterministic for a seed, so runs are reproducible.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import asyncpg
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from rcm.simulation.payer.domain.acknowledge import acknowledge
from rcm.simulation.payer.domain.adjudicate import AdjudicationRules, adjudicate, crossover
from rcm.simulation.payer.domain.eligibility import DOWN_ONCE, EligibilityRules, decide
from rcm.simulation.payer.domain.fees import FeeSchedule
from rcm.simulation.payer.domain.read_270 import read_270
from rcm.simulation.payer.domain.read_837 import read_837
from rcm.simulation.payer.domain.write_271 import build_271
from rcm.simulation.payer.domain.write_835 import PayeeInfo, PayerInfo, Remittance, build_era_file
from rcm.simulation.payer.domain.write_acks import build_277ca, build_999
from shared import clock
from shared.db import insert_rows
from shared.events import Address
from shared.mailbox import InboundMailbox, add_outbound, classify, file_writer_loop
from shared.messaging import Emitter
from shared.service import Runtime, ServiceSpec
from shared.settings import ServiceSettings
from shared.telemetry import tracer

S = "payer_sim"
PAYER_ADDRESS = Address(line1="PO BOX 1000", city="HARTFORD", state="CT", postal_code="06101")


_ADJUDICATION_COLUMNS = [
    ("claim_id", "text"),
    ("status", "text"),
    ("paid", "numeric"),
    ("file_name", "text"),
]


class PayerSimRules(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RCM_PAYER_SIM_", extra="ignore")

    seed: int = 7
    denial_rate: Decimal = Decimal("0.15")
    ack_reject_rate: Decimal = Decimal("0.02")
    delay_seconds: float = 0.0


class PayerSimSettings(ServiceSettings):
    service_name: str = "payer_sim"
    payer: PayerSimRules = Field(default_factory=PayerSimRules)


def make_apply(rt: Runtime):
    rules = AdjudicationRules(
        seed=rt.settings.payer.seed,
        denial_rate=rt.settings.payer.denial_rate,
        ack_reject_rate=rt.settings.payer.ack_reject_rate,
    )
    fees = FeeSchedule.from_csv()
    eligibility = EligibilityRules(seed=rt.settings.payer.seed)
    inbound = rt.settings.inbound_dir  # where the provider's clearinghouse inbox is

    async def numbers(conn: asyncpg.Connection) -> tuple[int, int]:
        r = await conn.fetchrow(
            f"SELECT nextval('{S}.interchange_control_number') AS i,"
            f" nextval('{S}.group_control_number') AS g"
        )
        return r["i"], r["g"]

    async def answer_270(conn: asyncpg.Connection, text: str, file_name: str) -> None:
        """A 271 for one 270 file, queued as an outbound file."""
        with tracer().start_as_current_span(
            "x12 parse 270", attributes={"rcm.file_name": file_name}
        ):
            inquiries = read_270(text)
        now = datetime.now(UTC)
        earlier = await _earlier_inquiries(conn, inquiries.inquiries)
        decisions = {
            q.trace_number: decide(q, eligibility, now.date(), earlier.get(q.trace_number, 0))
            for q in inquiries.inquiries
        }
        icn, gcn = await numbers(conn)
        text271 = build_271(
            inquiries,
            decisions,
            interchange_control_number=icn,
            group_control_number=gcn,
            created_at=now,
        )
        await add_outbound(conn, S, inbound, f"271_{icn:09d}.271", text271)

    async def apply(conn: asyncpg.Connection, text: str, file_name: str, emitter: Emitter) -> None:
        """Front-door (999, 277CA) and adjudication (835) for one 837 file, or the 271 for a
        270, queued as outbound files."""
        if classify(text).kind == "270":
            await answer_270(conn, text, file_name)
            return
        with tracer().start_as_current_span(
            "x12 parse 837", attributes={"rcm.file_name": file_name}
        ):
            sub = read_837(text)
        now = datetime.now(UTC)
        today = clock.today()  # the payer's timely filing and dates run on the business date
        icn, gcn = await numbers(conn)
        await add_outbound(
            conn,
            S,
            inbound,
            f"999_{sub.interchange_control_number}.x12",
            build_999(
                sub, True, interchange_control_number=icn, group_control_number=gcn, created_at=now
            ),
        )
        decisions = {c.claim_id: acknowledge(c, rules) for c in sub.claims}
        icn, gcn = await numbers(conn)
        await add_outbound(
            conn,
            S,
            inbound,
            f"277CA_{sub.interchange_control_number}.x12",
            build_277ca(
                sub,
                decisions,
                interchange_control_number=icn,
                group_control_number=gcn,
                created_at=now,
                received_date=today,
            ),
        )
        accepted = [c for c in sub.claims if decisions[c.claim_id].accepted]
        fresh = await conn.fetch(
            # An index probe per claim; "NOT IN (SELECT ...)" hashed every adjudication ever made, per file.
            f"SELECT c FROM unnest($1::text[]) AS c WHERE NOT EXISTS (SELECT FROM {S}.adjudication a WHERE a.claim_id = c)",
            [c.claim_id for c in accepted],
        )
        fresh_ids = {r["c"] for r in fresh}
        groups: dict[tuple[str, str], list] = defaultdict(list)
        crossed = []  # the crossover payers' own adjudications, in their own 835 payments
        for c in accepted:
            if c.claim_id in fresh_ids:
                decided = adjudicate(c, rules, fees, today)
                groups[(c.payer_id, c.billing_provider_npi or "")].append(decided)
                forwarded = crossover(decided, rules, fees, today)
                if forwarded is not None:
                    crossed.append(forwarded)
        if not groups:
            return
        recorded = [a for adjs in groups.values() for a in adjs]
        for a in crossed:
            groups[(a.claim.payer_id, a.claim.billing_provider_npi or "")].append(a)
        # One ERA file answers the 837, a payment (835 transaction set) per payer and payee in
        # it, as a clearinghouse delivers them: a file per payment multiplied files, fsyncs and
        # mailbox passes on both sides.
        icn, gcn = await numbers(conn)
        name = f"835_{icn:09d}.x12"
        remittances = []
        for n, ((payer_id, npi), adjs) in enumerate(groups.items(), start=1):
            first = adjs[0].claim
            remittances.append(
                Remittance(
                    adjs,
                    payer=PayerInfo(payer_id, first.payer_name, PAYER_ADDRESS),
                    payee=PayeeInfo(
                        first.billing_provider_name, npi, first.billing_provider_tax_id or ""
                    ),
                    trace_number=f"{payer_id[:6]}{icn:09d}{n:03d}",
                    payment_date=today,
                )
            )
        text835 = build_era_file(
            remittances,
            sender_id=sub.receiver_id or "PAYERSIM",
            receiver_id=sub.sender_id or "SUBMITTER",
            interchange_control_number=icn,
            group_control_number=gcn,
            created_at=now,
        )
        await add_outbound(conn, S, inbound, name, text835)
        await insert_rows(
            conn,
            f"{S}.adjudication",
            _ADJUDICATION_COLUMNS,
            [(a.claim_id, a.status, a.paid, name) for a in recorded],
        )

    wake = asyncio.Event()  # set by the mailbox after the file's transaction commits
    return apply, wake


async def _earlier_inquiries(conn: asyncpg.Connection, inquiries) -> dict[str, int]:
    """For each inquiry about a DOWNONCE member, how often that member was asked about before
    (counted here: only the outage marker needs a memory)."""
    marked = [q for q in inquiries if (q.member_id or "").upper().startswith(DOWN_ONCE)]
    out = {}
    for q in marked:
        key = hashlib.sha256(f"{q.payer_id}|{q.member_id}".encode()).hexdigest()
        out[q.trace_number] = await conn.fetchval(
            f"INSERT INTO {S}.eligibility_member (member_key) VALUES ($1)"
            " ON CONFLICT (member_key) DO UPDATE SET inquiries = eligibility_member.inquiries + 1"
            " RETURNING inquiries - 1",
            key,
        )
    return out


async def mailbox_loop(rt: Runtime) -> None:
    apply, wake = make_apply(rt)
    # Woken after the commit: woken inside the transaction, the writer's query would not see the files yet.
    box = InboundMailbox(
        rt.settings.outbound_dir,
        frozenset({"837", "270"}),
        S,
        apply,
        handles_unknown=True,
        on_commit=wake.set,
        settings=rt.settings.mailbox,
    )
    delay = rt.settings.payer.delay_seconds
    # Without a turnaround delay every file is written when its commit wakes the writer; with
    # one, files come of age on their own, so the writer polls at a fraction of the delay.
    interval = min(max(delay / 4, 0.05), 1.0) if delay else 1.0
    writer = asyncio.create_task(
        file_writer_loop(rt.pool, S, rt.stop, wake, interval=interval, min_age_seconds=delay)
    )
    try:
        await box.run(rt.pool, rt.stop, rt.settings.mailbox.poll_seconds)
    finally:
        writer.cancel()


def spec() -> ServiceSpec:
    return ServiceSpec(
        name="payer_sim",
        schema=S,
        package_dir=Path(__file__).parent,
        settings=PayerSimSettings,
        loops=[mailbox_loop],
    )
