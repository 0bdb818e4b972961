"""`rcm demo`: the whole pipeline on the local stack, end to end, with a report.

Starts the stack (unless KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL point elsewhere),
every service as its own process plus payer_sim, loads the demo sites and payers
into intake's registries, posts sample FHIR encounters from three sites to the
intake API (intake checks each coverage's eligibility with a 270 first), runs a
simulated remote coder pool against the work-queue API, waits until every encounter
reaches a terminal outcome and the secondary and tertiary payers have answered, runs
the statements, has some patients pay them (a refund and a payment plan among them)
and prints the report. Exit status 1 if any encounter is unaccounted for.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import date, timedelta
from decimal import ROUND_UP, Decimal

import asyncpg
import httpx

from rcm import localstack as stack
from rcm import queries
from rcm.cli import report
from rcm.cli.progress import progress
from rcm.localstack.supervisor import Supervisor
from shared.auth import issue
from shared.kafka import ensure_topics
from shared.settings import ServiceSettings

SERVICE_ORDER = ("intake", "coding", "billing", "payer_sim", "payments", "followup")

# The demo checks eligibility at intake (a 270 per coverage, the encounter held until the 271s
# answer); a payer that was down (AAA 42) is asked again after a few seconds, not a minute.
DEMO_ENV = {
    "RCM_INTAKE_ELIGIBILITY_MODE": "intake",
    "RCM_INTAKE_ELIGIBILITY_RETRY_SECONDS": "2",
    "RCM_INTAKE_ELIGIBILITY_WAIT_SECONDS": "20",
}
CENT = Decimal("0.01")


def base_env(settings: ServiceSettings, endpoints: dict) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": endpoints["kafka"],
        "DATABASE_URL": endpoints["postgres"],
        "RCM_RUN_DIR": str(settings.run_path),
        "RCM_MAILBOX_OUTBOUND": str(settings.outbound_dir),
        "RCM_MAILBOX_INBOUND": str(settings.inbound_dir),
        "RCM_TOKEN_SECRET": settings.auth.token_secret,
        "PYTHONUNBUFFERED": "1",
    }


def start_services(
    settings: ServiceSettings,
    endpoints: dict,
    *,
    instances: int = 1,
    extra_env: dict[str, str] | None = None,
    workbench: bool = False,
) -> Supervisor:
    sup = Supervisor(settings.run_path, {**base_env(settings, endpoints), **(extra_env or {})})
    for name in SERVICE_ORDER:
        for i in range(instances):
            sup.add(name, instance=i, http=name != "payer_sim" and i == 0)
    if workbench:  # the screens, calling the other services' APIs with the user's token
        urls = {
            f"RCM_WORKBENCH_{n.upper()}_URL": f"http://127.0.0.1:{sup.by_name(n)[0].http_port}"
            for n in ("intake", "coding", "billing", "payments", "followup")
        }
        wb = sup.add(
            "workbench", http=True, extra_env={**urls, "RCM_WORKBENCH_COOKIE_SECURE": "false"}
        )
        wb.env["RCM_WORKBENCH_PUBLIC_URL"] = f"http://127.0.0.1:{wb.http_port}"
    sup.start_all()
    return sup


async def wait_http(url: str, sup: Supervisor, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=5) as client:
        while time.monotonic() < deadline:
            dead = sup.dead()
            if dead:
                tail = dead[0].log_path.read_text(errors="replace")[-1500:]
                raise RuntimeError(f"service {dead[0].label} exited during start-up:\n{tail}")
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.3)
    raise RuntimeError(f"{url} not healthy after {timeout:.0f}s")


async def coder_pool(
    base_url: str,
    secret: str,
    expected: dict[str, dict],
    stop: asyncio.Event,
    sites: list[str],
    per_site: int = 1,
    wait: float = 1.0,
) -> dict[str, int]:
    """Simulated remote coders, ``per_site`` per site: lease, review (the labelled answer plays the coder), complete.

    A coder with nothing to do long-polls ``/work/next`` for ``wait`` seconds rather than asking again and again.
    """
    done: dict[str, int] = {}

    async def coder(site: str, n: int) -> None:
        token = issue(secret, f"coder-{site}-{n}" if n else f"coder-{site}", "coder", [site])
        headers = {"authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(
            base_url=base_url, headers=headers, timeout=30 + wait
        ) as client:
            while not stop.is_set():
                try:
                    worked = await work_one(client, site)
                except (httpx.HTTPError, KeyError, ValueError):
                    worked = None  # the coding service is restarting or its database is away
                # After a long poll that found nothing, ask again at once; after a failure, shortly.
                if not (worked or (worked is False and wait)):
                    await asyncio.sleep(0.3)

    async def work_one(client: httpx.AsyncClient, site: str) -> bool | None:
        """True: an item was completed; False: none was waiting; None: a request failed."""
        r = await client.post("/work/next", params={"wait": wait} if wait else None)
        if r.status_code == 204:
            return False
        if r.status_code != 200:
            return None
        item = r.json()
        body = review(item, expected.get(item["encounter_id"]))
        r = await client.post(f"/work/{item['work_item_id']}/complete", json=body)
        if r.status_code == 422:  # the coder overrides what the edits flag, with a reason
            edits = r.json()["detail"]["edits"]
            body["overrides"] = [
                {"code": e["code"], "reason": "reviewed against documentation"} for e in edits
            ]
            r = await client.post(f"/work/{item['work_item_id']}/complete", json=body)
        if r.status_code != 200:
            return None
        done[site] = done.get(site, 0) + 1
        return True

    await asyncio.gather(*(coder(s, n) for s in sites for n in range(per_site)))
    return done


def review(item: dict, truth: dict | None) -> dict:
    """What the coder submits: the documented answer when known, else the engine's suggestions."""
    sugg = item["suggestions"]
    if truth and truth.get("diagnoses"):
        dx = list(truth["diagnoses"])
        procs = [{"code": c, "diagnosis_pointers": [1]} for c in truth.get("procedures", [])]
        if truth.get("em_code"):
            procs.insert(
                0,
                {
                    "code": truth["em_code"],
                    "diagnosis_pointers": list(range(1, min(len(dx), 4) + 1)),
                },
            )
    else:
        dx = [d["code"] for d in sugg["diagnoses"]] or ["R69"]
        procs = [
            {
                "code": p["code"],
                "modifiers": p.get("modifiers", []),
                "units": str(p.get("units", 1)),
                "diagnosis_pointers": p.get("diagnosis_pointers") or [1],
            }
            for p in sugg["procedures"]
        ]
        if not procs:
            procs = [{"code": "99213", "diagnosis_pointers": [1]}]
    return {"lease_token": item["lease_token"], "diagnoses": dx, "procedures": procs}


async def run_statements(sup: Supervisor, secret: str) -> None:
    """Patient statements for balances left after insurance (the job a scheduler would run)."""
    followup = sup.by_name("followup")[0]
    token = issue(secret, "demo-scheduler", "service", ["*"])
    async with httpx.AsyncClient(timeout=120) as client:
        r = await client.post(
            f"http://127.0.0.1:{followup.http_port}/statements/run",
            headers={"authorization": f"Bearer {token}"},
        )
        r.raise_for_status()


async def wait_later_payers(dsn: str, ids: list[str], timeout: float = 120) -> None:
    """After the encounters settled with their first payer: wait (bounded) until every
    secondary or tertiary claim they need is built and answered, so statements bill what the
    last payer left (a crossover whose 835 never comes waits for its own timer, not for this)."""
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            cob = await queries.cob_counts(conn, ids)
            if not (cob["in_flight"] or cob["unrecorded"] or cob["unbilled"]):
                return
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


async def pay_statements(payments_url: str, dsn: str, ids: list[str], secret: str) -> dict:
    """What the demo's patients do with their statements, through payments' API: the patient
    portal (an integration identity) takes card payments, every other patient paying in full
    and the next half; the first who pays in full pays 10.00 too much, which a biller refunds
    (requested, a supervisor approves, issued); the patient with the largest balance left
    unpaid gets a three-instalment monthly plan. Deterministic for the same statements."""
    conn = await asyncpg.connect(dsn)
    try:
        owing = [
            (r["encounter_id"], json.loads(r["balances"], parse_float=Decimal))
            for r in await queries.statement_accounts(conn, ids)
        ]
    finally:
        await conn.close()
    owing = [(account, b) for account, b in owing if b]
    done = {"payments": 0, "refunds": 0, "plans": 0}

    def headers(user: str, role: str, key: str) -> dict[str, str]:
        token = issue(secret, user, role, ["*"])
        return {"authorization": f"Bearer {token}", "Idempotency-Key": key}

    async with httpx.AsyncClient(base_url=payments_url, timeout=30) as client:

        async def post(path: str, body: dict | None, user: str, role: str, key: str) -> dict:
            r = await client.post(path, json=body, headers=headers(user, role, key))
            if r.status_code not in (200, 201):
                raise RuntimeError(f"payments refused {path}: HTTP {r.status_code} {r.text[:300]}")
            return r.json()

        refunded = False
        for n, (account, balances) in enumerate(owing):
            share = (Decimal(1), Decimal("0.5"), None, None)[n % 4]
            if share is None:
                continue
            allocations = [
                {"claim_id": claim, "amount": str((b * share).quantize(CENT))}
                for claim, b in sorted(balances.items())
                if (b * share).quantize(CENT) > 0
            ]
            amount = sum((Decimal(a["amount"]) for a in allocations), Decimal(0))
            over = Decimal("10.00") if share == 1 and not refunded else Decimal(0)
            if amount + over <= 0:
                continue
            await post(
                "/patient-payments",
                {
                    "account": account,
                    "amount": str(amount + over),
                    "method": "card",
                    "processor_reference": f"demo-portal-{account}",
                    "allocations": allocations,
                },
                "demo-patient-portal",
                "integration",
                f"demo-payment-{account}",
            )
            done["payments"] += 1
            if over:  # the credit left goes back to the patient
                refund = await post(
                    "/refunds",
                    {
                        "account": account,
                        "amount": str(over),
                        "method": "card",
                        "reference": f"demo-refund-{account}",
                        "reason": "paid more than the statement asked",
                    },
                    "demo-biller",
                    "biller",
                    f"demo-refund-{account}",
                )
                path = f"/refunds/{refund['refund_id']}"
                await post(f"{path}/approve", None, "demo-supervisor", "supervisor", "approve")
                await post(f"{path}/issue", None, "demo-biller", "biller", "issue")
                refunded = True
                done["refunds"] += 1
        unpaid = [(sum(b.values()), account) for n, (account, b) in enumerate(owing) if n % 4 > 1]
        if unpaid:
            balance, account = max(unpaid)
            await post(
                "/payment-plans",
                {
                    "account": account,
                    "instalment_amount": str((balance / 3).quantize(CENT, ROUND_UP)),
                    "period": "monthly",
                },
                "demo-biller",
                "biller",
                f"demo-plan-{account}",
            )
            done["plans"] += 1
    return done


async def post_encounters(intake_url: str, bundles: list[dict], secret: str) -> list[str]:
    """POST each bundle to the intake service as the sites' EHR feed (an integration identity);
    the ids of the encounters it accepted."""
    ids = []
    token = issue(secret, "demo-ehr-feed", "integration", ["*"])
    async with httpx.AsyncClient(
        base_url=intake_url, timeout=30, headers={"authorization": f"Bearer {token}"}
    ) as client:
        for b in bundles:
            r = await client.post("/encounters", json=b)
            if r.status_code >= 400:
                raise RuntimeError(
                    f"intake refused a sample encounter: HTTP {r.status_code} {r.text[:300]}"
                )
            answer = r.json()
            ids += [o["encounter_id"] for o in answer.get("encounters", [answer])]
    return ids


async def load_sample_registries(dsn: str) -> None:
    """The demo sites, their providers and the demo payers into intake's registries."""
    from rcm.cli.intake_cmds import load_registry_records, sample_registry_files
    from services.intake.domain.registry import (
        parse_payers_csv,
        parse_providers_csv,
        parse_sites_csv,
    )

    files = sample_registry_files()
    await load_registry_records(
        dsn,
        sites=parse_sites_csv(files["sites"].read_text()),
        providers=parse_providers_csv(files["providers"].read_text()),
        payers=parse_payers_csv(files["payers"].read_text()),
    )


async def wait_settled(
    dsn: str, ids: list[str], timeout: float, sup: Supervisor, quiet: bool = False
) -> set[str]:
    """Poll followup's outcomes until every encounter has one; return those still missing."""
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + timeout
        missing = set(ids)
        while missing and time.monotonic() < deadline:
            rows = await conn.fetch(
                "SELECT encounter_id FROM followup.encounter_outcome WHERE encounter_id = ANY($1)",
                list(missing),
            )
            missing -= {r["encounter_id"] for r in rows}
            if not quiet:
                progress(len(ids) - len(missing), len(ids))
            for (
                sp
            ) in sup.dead():  # a demo service that died is restarted, as a process manager would
                sp.start()
            if missing:
                await asyncio.sleep(0.5)
        if not quiet and sys.stderr.isatty():
            print(file=sys.stderr)
        return missing
    finally:
        await conn.close()


async def run_demo(
    settings: ServiceSettings,
    *,
    n: int = 60,
    seed: int = 7,
    keep: bool = False,
    as_json: bool = False,
    timeout: float = 300,
) -> int:
    from rcm.simulation.samples import generate_samples, with_third_payer
    from services.intake.mapping import parse

    print("rcm demo: starting the local stack (Kafka + PostgreSQL)...", file=sys.stderr)
    endpoints = await asyncio.to_thread(stack.up, settings)
    started_stack = not (
        settings.connections.kafka_bootstrap_servers and settings.connections.database_url
    )
    await ensure_topics(endpoints["kafka"], partitions=settings.consumer.partitions)
    sup = start_services(settings, endpoints, workbench=True, extra_env=DEMO_ENV)
    stop = asyncio.Event()
    base_url = intake_url = ""
    workbench_url = f"http://127.0.0.1:{sup.by_name('workbench')[0].http_port}"
    try:
        base_url = f"http://127.0.0.1:{sup.by_name('coding')[0].http_port}"
        intake_url = f"http://127.0.0.1:{sup.by_name('intake')[0].http_port}"
        print(
            f"rcm demo: services starting (logs in {settings.run_path / 'logs'})...",
            file=sys.stderr,
        )
        await wait_http(base_url + "/health", sup)
        await wait_http(intake_url + "/health", sup)
        await load_sample_registries(endpoints["postgres"])
        # Recent dates of service: sample encounters must be inside every payer's filing window.
        samples = generate_samples(n, seed, start_date=date.today() - timedelta(days=35))
        samples = with_third_payer(samples, seed)  # a tertiary payer for some Medigap patients
        expected = {}
        for s in samples:
            for m in parse(s.bundle).encounters:
                expected[m.encounter.encounter_id] = s.expected
        sites = sorted({s.encounter.site_id for s in samples})
        started = time.monotonic()
        ids = await post_encounters(
            intake_url, [s.bundle for s in samples], settings.auth.token_secret
        )
        print(
            f"rcm demo: posted {len(ids)} FHIR encounters from {len(sites)} sites; a coder pool works the review "
            "queues...",
            file=sys.stderr,
        )
        pool_task = asyncio.create_task(
            coder_pool(base_url, settings.auth.token_secret, expected, stop, sites)
        )
        missing = await wait_settled(endpoints["postgres"], ids, timeout, sup)
        stop.set()
        await asyncio.wait_for(pool_task, 30)
        elapsed = time.monotonic() - started
        await wait_later_payers(endpoints["postgres"], ids)
        await run_statements(sup, settings.auth.token_secret)
        payments_url = f"http://127.0.0.1:{sup.by_name('payments')[0].http_port}"
        await wait_http(payments_url + "/health", sup)
        paid = await pay_statements(
            payments_url, endpoints["postgres"], ids, settings.auth.token_secret
        )
        print(
            f"rcm demo: patients paid {paid['payments']} statement(s) through payments' API, "
            f"{paid['refunds']} overpayment refunded, {paid['plans']} payment plan set up",
            file=sys.stderr,
        )
        data = await report.collect(endpoints["postgres"], ids)
        data["elapsed_seconds"] = round(elapsed, 1)
        data["unaccounted"] = sorted(missing)
        print(
            report.render(data), file=sys.stderr if as_json else sys.stdout
        )  # --json: stdout is JSON alone
        if as_json:
            print(json.dumps(data, indent=2, default=str))
        if missing:
            print(
                f"rcm demo: FAILED: {len(missing)} encounter(s) did not reach a terminal state within "
                f"{timeout:.0f}s: {', '.join(sorted(missing)[:10])}",
                file=sys.stderr,
            )
            return 1
        return 0
    finally:
        stop.set()
        if not keep:
            sup.stop_all()
            if started_stack:
                await asyncio.to_thread(stack.down, settings)
        else:
            from services.workbench.domain.demo_users import DEMO_USERS

            print(
                f"rcm demo: left running (intake API {intake_url}, coding API {base_url}); stop with "
                "`rcm stack down` and kill the services",
                file=sys.stderr,
            )
            print(
                f"rcm demo: workbench {workbench_url}; sign in as "
                + ", ".join(f"{u.username} ({u.role})" for u in DEMO_USERS),
                file=sys.stderr,
            )
