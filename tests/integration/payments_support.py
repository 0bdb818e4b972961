"""The payments service on the real stack, for its integration tests (no tests in this module).

Only payments runs, in-process (``shared.service.run``) with its own inbound mailbox
and HTTP port; claims are registered by publishing ``claim.submitted`` to Kafka and
remittances arrive as 835 files written into the mailbox. Ids, payer ids, trace and
interchange numbers carry a per-session token, so data left by earlier runs of the
same stack never changes what a test sees.

``ledger_invariant`` (autouse in the test modules) checks the books after each test.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from shared.auth import issue
from shared.events import (
    ClaimLine,
    ClaimSubmitted,
    ClaimSubmittedPayload,
    RemittanceReceived,
    parse_event,
)
from shared.mailbox import write_atomically
from shared.settings import AuthSettings
from shared.topics import REMITTANCE_RECEIVED
from shared.x12 import Interchange, amount

RUN = uuid.uuid4().hex[:6].upper()
_seq = itertools.count(1)
D = Decimal
TODAY = date.today()


def new_id(prefix: str) -> str:
    """A claim id, payer id or trace number no earlier run used (fits CLP01's 38 characters)."""
    return f"{prefix}{RUN}{next(_seq):04d}"


# --------------------------------------------------------------------------- 835 writer


@dataclass
class Svc:
    code: str
    charge: Decimal
    paid: Decimal
    cas: list[tuple[str, str, Decimal]] = field(default_factory=list)  # (group, CARC, amount)
    service_date: date = TODAY - timedelta(days=30)
    modifiers: tuple[str, ...] = ()


@dataclass
class Clp:
    claim_id: str
    charge: Decimal
    paid: Decimal
    status: str = "1"
    pr: Decimal | None = None
    cas: list[tuple[str, str, Decimal]] = field(default_factory=list)
    lines: list[Svc] = field(default_factory=list)
    pccn: str | None = None


def era_835(
    claims: list[Clp],
    *,
    payer_id: str,
    trace: str,
    paid_on: date = TODAY,
    plb: list[tuple[str, str, Decimal]] = (),
    bpr: Decimal | None = None,
    payer_name: str = "RCM TEST PLAN",
) -> str:
    """One 835 interchange; BPR02 = sum(CLP04) - sum(PLB) unless ``bpr`` forces another amount."""
    total = (
        bpr
        if bpr is not None
        else sum((c.paid for c in claims), D(0)) - sum((p[2] for p in plb), D(0))
    )
    ix = Interchange(
        sender_id=payer_id[:15],
        receiver_id="RCMCLINIC",
        control_number=random.randint(1, 999_999_999),
        group_control_number=1,
        functional_id="HP",
        version="005010X221A1",
        transaction_type="835",
        created_at=datetime.now(UTC),
        usage="T",
    )
    tx = ix.new_transaction("0001")
    tx.segments[0] = ["ST", "835", "0001"]
    tx.add(
        "BPR",
        "I",
        amount(abs(total)),
        "D" if total < 0 else "C",
        "CHK",
        *[""] * 11,
        paid_on.strftime("%Y%m%d"),
    )
    tx.add("TRN", "1", trace, "1999999999")
    tx.add("N1", "PR", payer_name)
    tx.add("N3", "1 MAIN STREET")
    tx.add("N4", "SPRINGFIELD", "IL", "62701")
    tx.add("REF", "2U", payer_id)
    tx.add("N1", "PE", "RCM URGENT CARE", "XX", "1234567893")
    if claims:
        tx.add("LX", "1")
    for c in claims:
        tx.add(
            "CLP",
            c.claim_id,
            c.status,
            amount(c.charge),
            amount(c.paid),
            "" if c.pr is None else amount(c.pr),
            "12",
            c.pccn or f"ICN{c.claim_id}",
        )
        for group, reason, amt in c.cas:
            tx.add("CAS", group, reason, amount(amt))
        tx.add("NM1", "QC", "1", "TESTPATIENT", "PAT")
        for sl in c.lines:
            tx.add(
                "SVC", ":".join(("HC", sl.code, *sl.modifiers)), amount(sl.charge), amount(sl.paid)
            )
            tx.add("DTM", "472", sl.service_date.strftime("%Y%m%d"))
            for group, reason, amt in sl.cas:
                tx.add("CAS", group, reason, amount(amt))
    if plb:
        tx.add(
            "PLB",
            "1234567893",
            f"{paid_on.year}1231",
            *[v for reason, ref, amt in plb for v in (f"{reason}:{ref}", amount(amt))],
        )
    return ix.render()


def submitted(
    claim_id: str,
    charge: Decimal,
    *,
    payer_id: str,
    site_id: str = "SITE-PAY",
    lines: list[Svc] | None = None,
) -> ClaimSubmitted:
    """A claim.submitted for ``claim_id`` (one line of 99213 unless ``lines`` are given)."""
    lines = lines or [Svc("99213", charge, D(0))]
    return ClaimSubmitted(
        site_id=site_id,
        encounter_id=f"ENC-{claim_id}",
        payload=ClaimSubmittedPayload(
            claim_id=claim_id,
            payer_id=payer_id,
            payer_name="RCM TEST PLAN",
            total_charge=charge,
            service_date=lines[0].service_date,
            submitted_at=datetime.now(UTC),
            interchange_control_number="000000001",
            file_name=f"{claim_id}.837",
            lines=[
                ClaimLine(
                    line_number=n,
                    code=sl.code,
                    modifiers=list(sl.modifiers),
                    units=D(1),
                    charge=sl.charge,
                    service_date=sl.service_date,
                )
                for n, sl in enumerate(lines, start=1)
            ],
        ),
    )


# --------------------------------------------------------------------------- the running service


class Payments:
    """Handles on the in-process payments service: Kafka in, mailbox in, Postgres and HTTP to look."""

    def __init__(
        self, url: str, inbound: Path, pool: asyncpg.Pool, producer, events: dict[str, list]
    ):
        self.url = url
        self.inbound = inbound
        self.pool = pool
        self.producer = producer
        self.events = events  # remittance_id -> payloads seen on rcm.remittance.received.v1

    async def submit(self, *events) -> None:
        """Publish claim.submitted (or any) events and wait until Kafka has them."""
        for e in events:
            await self.producer.send_and_wait(e.topic, e.to_json(), key=e.key())

    async def register(self, *claims: ClaimSubmitted) -> None:
        """Publish claim.submitted events and wait until payments has posted their charges."""
        await self.submit(*claims)
        ids = [c.payload.claim_id for c in claims]
        await self.wait_until(
            "SELECT count(*) FROM payments.claim WHERE claim_id = ANY($1)",
            ids,
            predicate=lambda n: n == len(ids),
        )

    async def drop(self, text: str, name: str | None = None) -> str:
        """Write a file into the inbound mailbox (atomically) and wait until it is processed or failed."""
        name = name or f"{new_id('ERA')}.835"
        write_atomically(self.inbound, name, text)
        return await self.wait_file(name)

    async def wait_file(self, name: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for where in ("processed", "failed"):
                if (self.inbound / where / name).exists():
                    return where
            await asyncio.sleep(0.05)
        raise AssertionError(f"{name} was not taken from the mailbox within {timeout}s")

    async def wait_until(self, query: str, *args, predicate=bool, timeout: float = 30):
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = await self.pool.fetchval(query, *args)
            if predicate(value):
                return value
            await asyncio.sleep(0.1)
        raise AssertionError(f"timed out waiting on {query!r}; last value {value!r}")

    async def wait_events(self, remittance_ids: list[str], timeout: float = 30) -> dict:
        """The remittance.received payloads of ``remittance_ids`` (fails if one is missing)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not all(r in self.events for r in remittance_ids):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        missing = [r for r in remittance_ids if r not in self.events]
        assert not missing, f"no remittance.received for {missing}"
        return {r: self.events[r] for r in remittance_ids}

    async def get(self, path: str, **params):
        """GET as a biller of every site (the development key signs the token)."""
        token = issue(AuthSettings().token_secret, "payments-tests", "biller", ["*"])
        async with httpx.AsyncClient(
            base_url=self.url, timeout=30, headers={"authorization": f"Bearer {token}"}
        ) as client:
            r = await client.get(path, params={k: v for k, v in params.items() if v is not None})
        r.raise_for_status()
        return r.json()

    async def balance(self, claim_id: str) -> tuple[Decimal, Decimal]:
        """(payer_balance, patient_balance) from GET /claims/{id}/balance."""
        b = await self.get(f"/claims/{claim_id}/balance")
        return D(b["payer_balance"]), D(b["patient_balance"])

    async def payments_of(self, claim_id: str) -> list[asyncpg.Record]:
        return await self.pool.fetch(
            "SELECT remittance_id, state, status_code, paid, reason FROM payments.claim_payment WHERE claim_id = $1"
            " OR patient_control_number = $1 ORDER BY created_at, position",
            claim_id,
        )


async def _capture(consumer: AIOKafkaConsumer, events: dict[str, list]) -> None:
    while True:
        batches = await consumer.getmany(timeout_ms=200)
        for msgs in batches.values():
            for m in msgs:
                event = parse_event(m.value)
                if isinstance(event, RemittanceReceived):
                    events.setdefault(event.payload.remittance_id, []).append(event.payload)


@pytest.fixture(scope="session")
async def payments(run_dir, stack_endpoints):
    """The payments service running in this process against the session's stack."""
    from rcm.localstack.procs import free_port
    from services.payments.app import spec
    from services.payments.settings import PaymentsSettings
    from shared.kafka import ensure_topics, start_producer
    from shared.service import run
    from shared.settings import ConnectionSettings, HttpSettings, MailboxSettings, RuntimeSettings

    inbound = run_dir / "payments-inbound" / RUN
    port = free_port()
    settings = PaymentsSettings(
        runtime=RuntimeSettings(run_dir=run_dir, env="test"),
        connections=ConnectionSettings(
            kafka_bootstrap_servers=stack_endpoints["kafka"],
            database_url=stack_endpoints["postgres"],
        ),
        mailbox=MailboxSettings(
            inbound=inbound, outbound=run_dir / "payments-outbound", poll_seconds=0.1
        ),
        http=HttpSettings(port=port),
    )
    await ensure_topics(stack_endpoints["kafka"])
    # Capture remittance.received from the end of the topic, before anything is posted.
    consumer = AIOKafkaConsumer(
        bootstrap_servers=stack_endpoints["kafka"], group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    admin = AIOKafkaAdminClient(bootstrap_servers=stack_endpoints["kafka"])
    await admin.start()
    try:
        (topic,) = await admin.describe_topics([REMITTANCE_RECEIVED])
    finally:
        await admin.close()
    tps = [TopicPartition(REMITTANCE_RECEIVED, p["partition"]) for p in topic["partitions"]]
    consumer.assign(tps)
    await consumer.seek_to_end(*tps)
    for tp in tps:
        await consumer.position(tp)
    events: dict[str, list] = {}
    capture = asyncio.create_task(_capture(consumer, events))
    ready = asyncio.Event()
    service = asyncio.create_task(run(spec(), settings, ready))
    waiter = asyncio.create_task(ready.wait())
    await asyncio.wait({service, waiter}, timeout=90, return_when=asyncio.FIRST_COMPLETED)
    if service.done():
        service.result()  # raises what stopped the service
    assert ready.is_set(), "payments did not start within 90 s"
    pool = await asyncpg.create_pool(stack_endpoints["postgres"], min_size=1, max_size=4)
    producer = await start_producer(stack_endpoints["kafka"])
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(timeout=5) as client:
        for _ in range(100):
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url + "/health")).status_code == 200:
                    break
            await asyncio.sleep(0.1)
    try:
        yield Payments(url, inbound, pool, producer, events)
    finally:
        await producer.stop()
        await pool.close()
        for task in (service, capture):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        await consumer.stop()


@pytest.fixture
async def ledger_invariant(payments):
    """After each test: every entry sums to zero, so does the whole ledger and every claim's lines,
    and each claim's posted cash equals what its posted claim payments paid."""
    yield
    conn = payments.pool
    unbalanced = await conn.fetch(
        "SELECT entry_id, sum(amount) AS s FROM payments.journal_line GROUP BY entry_id"
        " HAVING sum(amount) <> 0"
    )
    assert unbalanced == []
    assert await conn.fetchval("SELECT coalesce(sum(amount), 0) FROM payments.journal_line") == 0
    # billed = paid + adjustments + patient responsibility + open balance, claim by claim.
    claims = await conn.fetch(
        "SELECT claim_id, sum(amount) AS s FROM payments.journal_line WHERE claim_id IS NOT NULL"
        " GROUP BY claim_id HAVING sum(amount) <> 0"
    )
    assert claims == []
    cash_vs_remits = await conn.fetch(
        "WITH cash AS (SELECT claim_id, sum(amount) AS cash FROM payments.journal_line"
        "   WHERE account = 'cash_clearing' AND claim_id IS NOT NULL GROUP BY 1),"
        " paid AS (SELECT claim_id, sum(paid) AS paid FROM payments.claim_payment WHERE state = 'posted' GROUP BY 1)"
        " SELECT claim_id, cash, paid FROM cash FULL JOIN paid USING (claim_id)"
        " WHERE coalesce(cash, 0) <> coalesce(paid, 0)"
    )
    assert cash_vs_remits == []
