"""Benchmark payment posting through Kafka + Postgres on the local stack.

Starts the payments service as its own process (``rcm serve payments``) against the
local stack (started if needed, or KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL), registers
--claims claims by publishing claim.submitted to Kafka, then drops 835 files of
--per-file claim payments each (two service lines, CO and PR adjustments) into the
payments inbound mailbox at once. Times registration (first publish -> every claim
and charge in Postgres) and posting (files dropped -> every claim payment posted and
every remittance.received published by the outbox relay), checks the ledger, and
prints JSON. Target: posting 10,000 payments in under 10 s.

    .venv/bin/python benchmarks/bench_posting.py [--claims 10000] [--per-file 1000] [--run-dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg  # noqa: E402
from on_stack import add_run_dir, run_on_stack  # noqa: E402

from rcm.cli.demo import base_env, wait_http  # noqa: E402
from rcm.localstack.supervisor import Supervisor  # noqa: E402
from shared.events import ClaimLine, ClaimSubmitted, ClaimSubmittedPayload  # noqa: E402
from shared.kafka import ensure_topics, start_producer  # noqa: E402
from shared.mailbox import write_atomically  # noqa: E402
from shared.settings import ServiceSettings  # noqa: E402
from shared.x12 import Interchange, amount  # noqa: E402

CPTS = ["99213", "99214", "99203", "73610", "29540", "97110", "85025", "80053", "36415", "J1885"]
CENT = Decimal("0.01")
ETOPIC = ClaimSubmitted.topic


def make_claims(n: int, token: str, payer_id: str, seed: int = 11) -> list[dict]:
    """n claims of two lines each, with what the payer will pay and leave to the patient."""
    rnd = random.Random(seed)
    dos = date.today() - timedelta(days=20)
    out = []
    for i in range(n):
        lines = []
        for j in range(2):
            charge = Decimal(rnd.randint(5000, 40000)) / 100
            allowed = (charge * Decimal(rnd.randint(50, 90)) / 100).quantize(CENT)
            pr = (allowed * Decimal(rnd.choice((0, 10, 20))) / 100).quantize(CENT)
            lines.append((CPTS[(i + j) % len(CPTS)], charge, allowed, pr))
        out.append(
            {
                "claim_id": f"B{token}{i:06d}",
                "payer_id": payer_id,
                "dos": dos,
                "lines": lines,
                "charge": sum(x[1] for x in lines),
                "paid": sum(x[2] - x[3] for x in lines),
                "pr": sum(x[3] for x in lines),
            }
        )
    return out


def submitted(c: dict) -> ClaimSubmitted:
    return ClaimSubmitted(
        site_id="SITE-BENCH",
        encounter_id=f"E{c['claim_id']}",
        payload=ClaimSubmittedPayload(
            claim_id=c["claim_id"],
            payer_id=c["payer_id"],
            payer_name="BENCH PLAN",
            total_charge=c["charge"],
            service_date=c["dos"],
            submitted_at=datetime.now(UTC),
            interchange_control_number="000000001",
            file_name="bench.837",
            lines=[
                ClaimLine(
                    line_number=k, code=code, units=Decimal(1), charge=charge, service_date=c["dos"]
                )
                for k, (code, charge, _, _) in enumerate(c["lines"], start=1)
            ],
        ),
    )


def era_835(claims: list[dict], payer_id: str, trace: str, icn: int) -> str:
    ix = Interchange(
        sender_id=payer_id,
        receiver_id="RCMCLINIC",
        control_number=icn,
        group_control_number=1,
        functional_id="HP",
        version="005010X221A1",
        transaction_type="835",
        created_at=datetime.now(UTC),
    )
    tx = ix.new_transaction("0001")
    tx.segments[0] = ["ST", "835", "0001"]
    total = sum((c["paid"] for c in claims), Decimal(0))
    tx.add("BPR", "I", amount(total), "C", "CHK", *[""] * 11, date.today().strftime("%Y%m%d"))
    tx.add("TRN", "1", trace, "1999999999")
    tx.add("N1", "PR", "BENCH PLAN")
    tx.add("REF", "2U", payer_id)
    tx.add("N1", "PE", "RCM URGENT CARE", "XX", "1234567893")
    tx.add("LX", "1")
    for c in claims:
        tx.add(
            "CLP",
            c["claim_id"],
            "1",
            amount(c["charge"]),
            amount(c["paid"]),
            amount(c["pr"]),
            "12",
            f"ICN{c['claim_id']}",
        )
        tx.add("NM1", "QC", "1", "BENCHPATIENT", "PAT")
        for code, charge, allowed, pr in c["lines"]:
            tx.add("SVC", f"HC:{code}", amount(charge), amount(allowed - pr), "", "1")
            tx.add("DTM", "472", c["dos"].strftime("%Y%m%d"))
            tx.add("CAS", "CO", "45", amount(charge - allowed))
            if pr:
                tx.add("CAS", "PR", "1", amount(pr))
    return ix.render()


async def wait_count(
    pool: asyncpg.Pool, query: str, args: tuple, want: int, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    n = None
    while time.monotonic() < deadline:
        n = await pool.fetchval(query, *args)
        if n >= want:
            return
        await asyncio.sleep(0.02)
    raise SystemExit(f"timed out after {timeout}s: {n} of {want} for {query!r}")


async def bench(args, settings: ServiceSettings, endpoints: dict) -> dict:
    token = uuid.uuid4().hex[:6].upper()
    payer_id = f"BENCH{token}"
    inbound = settings.run_path / "bench-posting" / token / "inbound"
    inbound.mkdir(parents=True)
    await ensure_topics(endpoints["kafka"])
    sup = Supervisor(settings.run_path, base_env(settings, endpoints))
    proc = sup.add(
        "payments",
        http=True,
        extra_env={
            "RCM_PAYMENTS_ERA_INBOUND_DIR": str(inbound),
            "RCM_MAILBOX_POLL_SECONDS": "0.05",
            "RCM_LOG_LEVEL": "WARNING",
        },
    )
    sup.start_all()
    pool = await asyncpg.create_pool(endpoints["postgres"], min_size=1, max_size=2)
    producer = await start_producer(endpoints["kafka"])
    try:
        await wait_http(f"http://127.0.0.1:{proc.http_port}/health", sup)
        claims = make_claims(args.claims, token, payer_id)
        events = [submitted(c) for c in claims]
        files = []
        for k in range(0, len(claims), args.per_file):
            chunk = claims[k : k + args.per_file]
            files.append(
                (
                    f"{token}-{k // args.per_file:04d}.835",
                    era_835(chunk, payer_id, f"T{token}{k:06d}", random.randint(1, 999_999_999)),
                )
            )

        # Warm up: the consumer group joins (and a fresh broker creates its offsets topic) first.
        (warm,) = make_claims(1, f"W{token}", payer_id)
        await producer.send_and_wait(ETOPIC, submitted(warm).to_json(), key=b"warm")
        await wait_count(
            pool,
            "SELECT count(*) FROM payments.claim WHERE claim_id = $1",
            (warm["claim_id"],),
            1,
            args.timeout,
        )

        started = time.perf_counter()
        for e in events:
            await producer.send(e.topic, e.to_json(), key=e.key())
        await producer.flush()
        await wait_count(
            pool,
            "SELECT count(*) FROM payments.journal_entry WHERE kind = 'charge' AND source LIKE $1",
            (f"charge:B{token}%",),
            len(claims),
            args.timeout,
        )
        registered = time.perf_counter() - started

        staging = inbound.parent / "staging"
        for name, text in files:
            write_atomically(staging, name, text)
        posting = time.perf_counter()
        for name, _ in files:  # all at once, as a mailbox sync would deliver them
            os.replace(staging / name, inbound / name)
        await wait_count(
            pool,
            "SELECT count(*) FROM payments.claim_payment WHERE payer_id = $1 AND state = 'posted'",
            (payer_id,),
            len(claims),
            args.timeout,
        )
        applied = time.perf_counter() - posting
        await wait_count(
            pool,
            "SELECT CASE WHEN count(*) = 0 THEN 1 ELSE 0 END FROM payments.outbox",
            (),
            1,
            args.timeout,
        )
        published = time.perf_counter() - posting

        cash = await pool.fetchval(
            "SELECT coalesce(sum(l.amount), 0) FROM payments.journal_line l JOIN payments.journal_entry e"
            " USING (entry_id) WHERE e.kind = 'payment' AND e.payer_id = $1 AND l.account = 'cash_clearing'",
            payer_id,
        )
        patient = await pool.fetchval(
            "SELECT coalesce(sum(amount), 0) FROM payments.journal_line WHERE claim_id LIKE $1"
            " AND account = 'patient_receivable'",
            f"B{token}%",
        )
        unbalanced = await pool.fetchval(
            "SELECT count(*) FROM (SELECT 1 FROM payments.journal_line"
            " GROUP BY entry_id HAVING sum(amount) <> 0) x"
        )
        return {
            "claims": len(claims),
            "files": len(files),
            "claims_per_file": args.per_file,
            "register_seconds": round(registered, 3),
            "claims_registered_per_s": round(len(claims) / registered),
            "post_seconds": round(applied, 3),
            "payments_per_s": round(len(claims) / applied),
            "post_and_publish_seconds": round(published, 3),
            "target_seconds": 10,
            "target_met": applied < 10,
            "ledger": {
                "cash_posted": str(cash),
                "cash_expected": str(sum(c["paid"] for c in claims)),
                "patient_receivable": str(patient),
                "patient_expected": str(sum(c["pr"] for c in claims)),
                "unbalanced_entries": unbalanced,
            },
        }
    finally:
        await producer.stop()
        await pool.close()
        sup.stop_all()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--claims", type=int, default=10_000)
    p.add_argument("--per-file", type=int, default=1_000)
    p.add_argument("--timeout", type=float, default=300)
    add_run_dir(p)
    result = run_on_stack(bench, p.parse_args())
    return 0 if result["target_met"] and result["ledger"]["unbalanced_entries"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
