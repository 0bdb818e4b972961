"""Every route of every service app, probed as an attacker and as its rightful caller.

The routes come from the apps themselves: each service's app is built from its
``spec().api(rt)`` on a real runtime (Postgres pool, migrations, context) and hardened
as ``rcm serve`` serves it, and ``test_every_route_is_in_the_table`` fails for a route
(or a service) that ``ROUTES`` below does not name, so a new endpoint cannot be
forgotten. For each route: no token, a bad signature, an expired token and a revoked
one get 401; every role the route is not for gets 403; a caller of the right role but
another site gets 403 or an answer without the first site's data; the right caller of
the seeded site gets its 2xx (or the documented 4xx of a body-required route given a
valid minimal body). Only ``/health`` is open; ``/docs`` and ``/openapi.json`` exist in
development only (``test_docs_are_off_in_production``).

Data is seeded through the services' own handlers and repositories (payments' 835
posting, followup's event handler) under per-run site ids, with nothing queued for
Kafka, so the session's other tests never see it.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg
import httpx
import jwt
import pytest
from fastapi.routing import iter_route_contexts

from shared import db
from shared.auth import ROLES, DevSigner, dev_key
from shared.messaging import Emitter, Inbound
from shared.service import Runtime, http_app
from tests.integration.payments_support import Clp, era_835
from tests.integration.payments_support import submitted as payments_submitted
from tests.integration.test_followup_typical_journey import coded, remitted, submitted

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RUN = uuid.uuid4().hex[:8]
SITE_A, SITE_B = f"mxa-{RUN}", f"mxb-{RUN}"  # the seeded site, and another one
JOB_A, JOB_B = f"mja-{RUN}", f"mjb-{RUN}"  # sites of the job-scope test
PAYER = f"MXP{RUN}".upper()
REVOKED_JTI = f"revoked-{RUN}"
OPEN = {"/health"}
DOCS = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
PENDING = "intake/coding auth pending"
# The workbench is a browser front end: a session cookie, not a bearer token, lets a person in,
# and every screen calls the services above with that person's token (so their roles and sites
# are the services' to enforce, as ROUTES checks). Only the sign-in flow and static assets are
# served without a session; everything else, including a route added tomorrow, is checked by
# test_workbench_serves_nothing_but_sign_in_without_a_session.
SESSION_SERVICES = {"workbench"}
WORKBENCH_OPEN = {
    "/signout",
    "/static",
    "/signin",
    "/signin/dev",
    "/signin/oidc",
    "/auth/callback",
    "/signed-out",
}


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Expect:
    """What one route must do.

    ``site``: ``403`` (another site's resource is refused), ``filtered`` (another site's
    caller gets its 2xx without anything of SITE_A), ``all-sites`` (only callers of every
    site; a site-scoped one gets 403), ``scoped`` (a job run over the caller's sites: see
    ``test_jobs_of_a_site_scoped_caller_cover_only_its_sites``), ``none`` (not site data).
    Path values name seeded things (``{claim}``), filled from the seed; ``shows`` names a
    seeded value the right caller's answer must contain.
    """

    roles: frozenset[str]
    site: str
    path: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    body: object = None
    ok: tuple[int, ...] = (200,)
    shows: str | None = None
    other_body: object = None  # what another site's caller sends (default: ``body``)
    pending: bool = False  # a known failure of a service under rewrite: xfail


def roles(*names: str) -> frozenset[str]:
    return frozenset(names)


BILLING_STAFF = roles("biller", "supervisor")
AUDITED = {"query": {"user": f"matrix-biller-{RUN}"}}
CODERS = roles("coder", "supervisor")
CODE_WATCHERS = roles("coder", "supervisor", "ops")  # queue depth, coder figures (a coder: its own)
QUERY_READERS = roles("coder", "supervisor", "integration")  # the EHR integration delivers them
CODING_NOTE_SPAN = "Ankle sprain after a fall"

ROUTES: dict[tuple[str, str, str], Expect] = {
    # billing
    ("billing", "GET", "/claims/{claim_id}"): Expect(
        roles("biller", "supervisor", "auditor"),
        "403",
        path={"claim_id": "billing_claim"},
        shows="billing_claim",
    ),
    ("billing", "PATCH", "/claims/{claim_id}/billing-data"): Expect(
        roles("biller", "supervisor"),
        "403",
        path={"claim_id": "billing_claim"},
        ok=(409, 422),  # the seeded claim is not held; the matrix sends no body
    ),
    ("billing", "GET", "/audit"): Expect(roles("auditor"), "filtered", **AUDITED),
    ("billing", "POST", "/estimates"): Expect(
        BILLING_STAFF,
        "403",
        body={"site_id": SITE_A, "services": [{"code": "99213"}], "self_pay": True},
        shows="site",
    ),
    ("billing", "GET", "/encounters/{encounter_id}/estimate"): Expect(
        roles("biller", "supervisor", "auditor"),
        "403",
        path={"encounter_id": "billing_encounter"},
        shows="billing_encounter",
    ),
    # payments
    ("payments", "GET", "/claims/{claim_id}/balance"): Expect(
        roles("biller", "supervisor", "auditor", "service"),
        "403",
        path={"claim_id": "payments_claim"},
        shows="payments_claim",
    ),
    ("payments", "GET", "/balances"): Expect(
        roles("biller", "supervisor", "auditor", "service"),
        "filtered",
        query={"payer_id": PAYER},
        shows="payments_claim",
    ),
    ("payments", "GET", "/remittances/unmatched"): Expect(
        roles("biller", "supervisor", "auditor"), "filtered", query={"limit": "5000"}
    ),
    ("payments", "GET", "/remittances/held"): Expect(
        roles("biller", "supervisor", "auditor"),
        "filtered",
        query={"limit": "5000"},
        shows="held_claim",
    ),
    ("payments", "GET", "/reconciliation"): Expect(
        roles("biller", "supervisor", "auditor", "ops"), "all-sites", query={"payer_id": PAYER}
    ),
    ("payments", "GET", "/audit"): Expect(roles("auditor"), "filtered", **AUDITED),
    ("payments", "GET", "/claims/{claim_id}/patient-balance"): Expect(
        roles("biller", "supervisor", "auditor", "service"),
        "403",
        path={"claim_id": "payments_claim"},
        shows="payments_claim",
    ),
    ("payments", "GET", "/credits"): Expect(roles("biller", "supervisor", "auditor"), "filtered"),
    ("payments", "GET", "/claims/{claim_id}/remittances"): Expect(
        roles("biller", "supervisor", "auditor"),
        "403",
        path={"claim_id": "payments_claim"},
        shows="payments_claim",
    ),
    # The matrix sends no Idempotency-Key and an account no claim is of: 422 before any lookup.
    ("payments", "POST", "/patient-payments"): Expect(
        roles("biller", "supervisor", "integration"),
        "none",
        body={"account": "ENC-MATRIX-NONE", "amount": "1.00", "method": "cash"},
        ok=(422,),
    ),
    # Refunds and plans (issue 21 item 4): no Idempotency-Key on creation, 422 before any lookup;
    # the seeded refund of site A is issued, so approving it is out of order (409) and issuing
    # it again answers it unchanged (200).
    ("payments", "POST", "/refunds"): Expect(
        BILLING_STAFF,
        "none",
        body={"account": "ENC-MATRIX-NONE", "amount": "1.00", "method": "cash", "reason": "x"},
        ok=(422,),
    ),
    ("payments", "POST", "/refunds/{refund_id}/approve"): Expect(
        roles("supervisor"), "403", path={"refund_id": "payments_refund"}, ok=(409,)
    ),
    ("payments", "POST", "/refunds/{refund_id}/issue"): Expect(
        BILLING_STAFF, "403", path={"refund_id": "payments_refund"}, shows="payments_account"
    ),
    ("payments", "GET", "/refunds"): Expect(
        roles("biller", "supervisor", "auditor"), "filtered", shows="payments_account"
    ),
    ("payments", "POST", "/payment-plans"): Expect(
        BILLING_STAFF,
        "none",
        body={"account": "ENC-MATRIX-NONE", "instalment_amount": "1.00", "period": "weekly"},
        ok=(422,),
    ),
    ("payments", "POST", "/payment-plans/review"): Expect(
        roles("supervisor", "ops", "service"), "scoped"
    ),
    ("payments", "GET", "/patient-accounts/{account}"): Expect(
        roles("biller", "supervisor", "auditor"),
        "403",
        path={"account": "payments_account"},
        shows="payments_account",
    ),
    # followup
    ("followup", "GET", "/work/depth"): Expect(
        roles("biller", "supervisor", "ops"), "filtered", shows="site"
    ),
    ("followup", "POST", "/work/next"): Expect(BILLING_STAFF, "filtered", ok=(200, 204)),
    ("followup", "GET", "/work"): Expect(BILLING_STAFF, "filtered", shows="followup_claim"),
    # the first biller leases the seeded item; the next caller finds it leased to another (409)
    ("followup", "POST", "/work/{work_item_id}/lease"): Expect(
        BILLING_STAFF,
        "403",
        path={"work_item_id": "followup_item"},
        ok=(200, 409),
        shows="followup_claim",
    ),
    ("followup", "GET", "/denials/summary"): Expect(
        roles("biller", "supervisor", "ops"), "filtered"
    ),
    ("followup", "GET", "/work/{work_item_id}"): Expect(
        BILLING_STAFF, "403", path={"work_item_id": "followup_item"}, shows="followup_claim"
    ),
    ("followup", "POST", "/work/{work_item_id}/actions"): Expect(
        BILLING_STAFF,
        "403",
        path={"work_item_id": "followup_item"},
        body={"lease_token": str(uuid.uuid4()), "action": "resolve", "reason": "route matrix"},
        ok=(409,),  # a valid action, but the item is not leased to the caller
    ),
    ("followup", "GET", "/claims/{claim_id}"): Expect(
        roles("biller", "supervisor", "auditor"),
        "403",
        path={"claim_id": "followup_claim"},
        shows="followup_claim",
    ),
    ("followup", "GET", "/ar/aging"): Expect(
        roles("biller", "supervisor", "auditor", "ops"),
        "filtered",
        query={"by": "site"},
        shows="site",
    ),
    ("followup", "POST", "/jobs/no-response"): Expect(
        roles("supervisor", "ops", "service"), "scoped"
    ),
    ("followup", "POST", "/statements/run"): Expect(
        roles("supervisor", "ops", "service"), "filtered"
    ),
    ("followup", "GET", "/audit"): Expect(roles("auditor"), "filtered", **AUDITED),
    # coding
    ("coding", "GET", "/work/depth"): Expect(CODE_WATCHERS, "filtered", shows="site"),
    ("coding", "POST", "/work/next"): Expect(CODERS, "filtered", ok=(200, 204)),
    ("coding", "GET", "/work/{work_item_id}"): Expect(
        CODERS, "403", path={"work_item_id": "coding_item"}, shows="coding_encounter"
    ),
    ("coding", "POST", "/work/{work_item_id}/complete"): Expect(
        CODERS,
        "403",
        path={"work_item_id": "coding_item"},
        body={
            "lease_token": str(uuid.uuid4()),
            "diagnoses": ["S93401A"],
            "procedures": [{"code": "99213"}],
        },
        ok=(409,),  # not leased to the caller
    ),
    ("coding", "POST", "/work/{work_item_id}/renew"): Expect(
        CODERS,
        "403",
        path={"work_item_id": "coding_item"},
        body={"lease_token": str(uuid.uuid4())},
        ok=(409,),  # not leased to the caller
    ),
    ("coding", "POST", "/work/{work_item_id}/validate"): Expect(
        CODERS,
        "403",
        path={"work_item_id": "coding_item"},
        body={"diagnoses": ["S93401A"], "procedures": [{"code": "99213"}]},
    ),
    ("coding", "POST", "/work/{work_item_id}/queries"): Expect(
        CODERS,
        "403",
        path={"work_item_id": "coding_item"},
        body={
            "reason": "laterality",
            "question": "Please clarify the side of the injury documented in the assessment.",
            "indicators": [{"quote": CODING_NOTE_SPAN}],
            "options": ["Right", "Left"],
        },
        ok=(201,),
    ),
    ("coding", "GET", "/queries"): Expect(
        QUERY_READERS, "filtered", query={"limit": "500"}, shows="coding_encounter"
    ),
    ("coding", "GET", "/queries/stats"): Expect(roles("supervisor", "ops"), "filtered"),
    ("coding", "GET", "/queries/{query_id}"): Expect(
        QUERY_READERS, "403", path={"query_id": "coding_query"}, shows="coding_encounter"
    ),
    # the steps of a query, on a cancelled one: the caller is let in, the step refused
    ("coding", "POST", "/queries/{query_id}/send"): Expect(
        CODERS, "403", path={"query_id": "coding_query_cancelled"}, ok=(409,)
    ),
    ("coding", "POST", "/queries/{query_id}/cancel"): Expect(
        CODERS,
        "403",
        path={"query_id": "coding_query_cancelled"},
        body={"reason": "route matrix"},
        ok=(409,),
    ),
    ("coding", "POST", "/queries/{query_id}/close"): Expect(
        CODERS, "403", path={"query_id": "coding_query_cancelled"}, ok=(409,)
    ),
    ("coding", "POST", "/queries/{query_id}/answer"): Expect(
        roles("integration"),
        "403",
        path={"query_id": "coding_query_cancelled"},
        body={"answer": "Left"},
        ok=(409,),
    ),
    ("coding", "GET", "/codes/search"): Expect(CODERS, "none", query={"q": "ankle sprain"}),
    ("coding", "GET", "/coders/stats"): Expect(CODE_WATCHERS, "filtered"),
    ("coding", "GET", "/stats/routes"): Expect(
        roles("supervisor", "ops"), "filtered", shows="site"
    ),
    ("coding", "GET", "/audit"): Expect(roles("auditor"), "filtered", **AUDITED),
    # intake (being rewritten, likewise)
    ("intake", "POST", "/encounters"): Expect(
        roles("integration"),
        "403",
        body={"resourceType": "Bundle", "type": "collection", "entry": []},
        ok=(422,),  # no encounter in it: refused after the caller was let in, nothing stored
        other_body="site_a_bundle",
    ),
    # HL7 v2 text: a body without an MSH segment is refused after the caller was let in. (A
    # message of another site is 403 by intake's own tests: here it could be stored.)
    ("intake", "POST", "/hl7"): Expect(
        roles("integration"), "none", body="PID|1||MATRIX\r", ok=(422,)
    ),
    ("intake", "GET", "/encounters/{encounter_id}/versions"): Expect(
        roles("integration", "biller", "supervisor", "auditor"),
        "403",
        path={"encounter_id": "intake_encounter"},
        shows="intake_encounter",
    ),
    ("intake", "GET", "/sites"): Expect(
        roles("coder", "biller", "supervisor", "integration"), "filtered", shows="site"
    ),
    ("intake", "GET", "/sites/{site_id}"): Expect(
        roles("coder", "biller", "supervisor", "integration"),
        "403",
        path={"site_id": "site"},
        shows="site",
    ),
    ("intake", "PUT", "/sites/{site_id}"): Expect(
        roles("supervisor"), "403", path={"site_id": "site"}, body={"name": "Matrix Site A"}
    ),
    ("intake", "GET", "/payers"): Expect(
        roles("coder", "biller", "supervisor", "integration"), "none"
    ),
    ("intake", "GET", "/payers/{payer_id}"): Expect(
        roles("coder", "biller", "supervisor", "integration"),
        "none",
        path={"payer_id": "payer"},
        ok=(200, 404),
    ),
    ("intake", "PUT", "/payers/{payer_id}"): Expect(
        roles("supervisor"), "none", path={"payer_id": "payer"}, body={"name": "Matrix Payer"}
    ),
    # eligibility (docs/eligibility.md): the seeded document is no encounter, so asking about
    # it is refused after the caller was let in
    ("intake", "POST", "/eligibility/checks"): Expect(
        roles("integration", "biller", "supervisor"),
        "403",
        body={"encounter_id": f"ENC-I{RUN}"},
        ok=(422,),
    ),
    ("intake", "GET", "/encounters/{encounter_id}/eligibility"): Expect(
        roles("integration", "biller", "supervisor", "auditor"),
        "403",
        path={"encounter_id": "intake_encounter"},
        shows="intake_encounter",
    ),
    ("intake", "GET", "/eligibility/work-items"): Expect(roles("biller", "supervisor"), "filtered"),
    # scheduled visits (docs/eligibility.md): a bundle without an Appointment is refused after
    # the caller was let in; another site's caller sending site A's appointment gets 403
    ("intake", "POST", "/appointments"): Expect(
        roles("integration"),
        "403",
        body={"resourceType": "Bundle", "type": "collection", "entry": []},
        ok=(422,),
        other_body="site_a_appointment",
    ),
    ("intake", "GET", "/appointments/{appointment_id}/eligibility"): Expect(
        roles("integration", "biller", "supervisor", "auditor"),
        "403",
        path={"appointment_id": "intake_appointment"},
        shows="intake_appointment",
    ),
}
# GET /ops/status of every service with a pipeline (shared.ops): work queues of the caller's
# sites only (coding and followup hold one of site A's).
OPS = roles("ops", "supervisor")
ROUTES |= {
    (name, "GET", "/ops/status"): Expect(
        OPS, "filtered", shows="site" if name in ("coding", "followup") else None
    )
    for name in ("intake", "coding", "billing", "payments", "followup")
}

# Routes that fail the matrix today (a service under rewrite): none.
# exactly these are expected to fail, with PENDING as the reason.
PENDING_ROUTES: set[tuple[str, str, str]] = set()


# --------------------------------------------------------------------------- the apps


def service_names() -> list[str]:
    """Every deployable service with an HTTP API: services/<name>/app.py whose spec has one."""
    names = []
    for app_py in sorted((ROOT / "services").glob("*/app.py")):
        spec = importlib.import_module(f"services.{app_py.parent.name}.app").spec()
        if spec.api is not None:
            names.append(spec.name)
    return names


class Relay:
    """Stands in for the outbox relay: nothing is published from here (the seed queues nothing)."""

    def notify(self) -> None:
        pass


@dataclass
class World:
    apps: dict[str, object]
    runtimes: dict[str, Runtime]
    seed: dict[str, str]
    signer: DevSigner
    stranger: object
    dsn: str
    statements_dir: Path

    def token(self, role: str, sites, *, user: str | None = None, **kw) -> str:
        return self.signer.sign(user or f"matrix-{role}-{RUN}", [role], list(sites), 600, **kw)

    def client(self, service: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.apps[service])
        return httpx.AsyncClient(transport=transport, base_url="http://matrix", timeout=60)


@pytest.fixture(scope="module")
async def world(stack_endpoints, tmp_path_factory):
    base = tmp_path_factory.mktemp("route-matrix")
    revoked = base / "revoked.txt"
    revoked.write_text(f"# route matrix\n{REVOKED_JTI}\n")
    env = {
        "DATABASE_URL": stack_endpoints["postgres"],
        "KAFKA_BOOTSTRAP_SERVERS": stack_endpoints["kafka"],
        "RCM_RUN_DIR": str(base / "run"),
        "RCM_MAILBOX_INBOUND": str(base / "inbound"),
        "RCM_MAILBOX_OUTBOUND": str(base / "outbound"),
        "RCM_FOLLOWUP_STATEMENTS_DIR": str(base / "statements"),
        "RCM_TOKEN_REVOCATION_FILE": str(revoked),
    }
    pools: list[asyncpg.Pool] = []
    stop = asyncio.Event()
    tasks: list[asyncio.Task] = []
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        apps, runtimes = {}, {}
        for name in service_names():
            spec = importlib.import_module(f"services.{name}.app").spec()
            settings = spec.settings()
            pool = await db.create_pool(settings.dsn, max_size=4)
            pools.append(pool)
            async with pool.acquire() as conn:
                await db.migrate(conn, spec.schema, spec.package_dir)
            rt = Runtime(settings=settings, pool=pool, relay=Relay(), stop=stop)  # type: ignore[arg-type]
            if spec.build_context:
                rt.context = await spec.build_context(rt)
            # The loops a request waits on (intake's acceptor, coding's wake-ups); no mailboxes.
            for loop in spec.loops:
                if loop.__name__ in ("accept_loop", "work_watch"):
                    tasks.append(asyncio.create_task(loop(rt)))
            runtimes[name] = rt
            apps[name] = http_app(spec, rt)
        any_rt = next(iter(runtimes.values()))
        signer = DevSigner.build(any_rt.settings.auth, any_rt.settings.runtime)
        seed = await _seed(runtimes)
        try:
            yield World(
                apps,
                runtimes,
                seed,
                signer,
                dev_key(base, "not the services' key"),
                stack_endpoints["postgres"],
                base / "statements",
            )
        finally:
            stop.set()
            for t in tasks:
                t.cancel()
                with contextlib.suppress(BaseException):
                    await t
            for pool in pools:
                await pool.close()


# --------------------------------------------------------------------------- the seed


def _inbound(event) -> Inbound:
    return Inbound(event=event, topic=event.topic, partition=0, offset=0)


async def _handle(rt: Runtime, schema: str, handler, *events) -> None:
    """Apply events with the service's own batch handler; its outgoing events are dropped."""
    async with rt.pool.acquire() as conn, conn.transaction():
        await handler(conn, [_inbound(e) for e in events], Emitter(schema))


async def _seed(rt: dict[str, Runtime]) -> dict[str, str]:
    seed = {"site": SITE_A, "payer": f"MXPAYER{RUN}".upper()[:32]}
    dos = date.today() - timedelta(days=20)
    if "billing" in rt:
        from services.billing import repository as billing

        seed["billing_claim"] = f"BCL{RUN}"
        seed["billing_encounter"] = f"ENC-B{RUN}"
        async with rt["billing"].pool.acquire() as conn:
            await billing.insert_claims(
                conn,
                [
                    billing.ClaimRow(
                        seed["billing_claim"],
                        f"ENC-B{RUN}",
                        SITE_A,
                        "AETNA1",
                        "professional",
                        "1",
                        None,
                        None,
                        Decimal("120.00"),
                        dos,
                        "{}",
                        None,
                    )
                ],
            )
            await conn.execute(
                "INSERT INTO billing.patient_estimate (encounter_id, claim_id, site_id, basis,"
                " total_charge, patient_responsibility, payer_responsibility, detail)"
                " VALUES ($1, $2, $3, 'copay', 120, 25, 95, $4::jsonb)",
                seed["billing_encounter"],
                seed["billing_claim"],
                SITE_A,
                json.dumps({"basis": "copay", "patient_responsibility": "25.00", "lines": []}),
            )
    if "payments" in rt:
        from services.payments.handlers import handle
        from services.payments.posting import apply_era

        claim, held = f"PCL{RUN}", f"PCH{RUN}"
        seed["payments_claim"], seed["held_claim"] = claim, held
        await _handle(
            rt["payments"],
            "payments",
            handle,
            payments_submitted(claim, Decimal("150.00"), payer_id=PAYER, site_id=SITE_A),
            payments_submitted(held, Decimal("100.00"), payer_id=PAYER, site_id=SITE_A),
        )
        era = era_835(
            [
                Clp(claim, Decimal("150.00"), Decimal("100.00"), cas=[("CO", "45", Decimal("50"))]),
                # out of balance (100 - 70 != 20): held with the reason
                Clp(held, Decimal("100.00"), Decimal("70.00"), cas=[("CO", "45", Decimal("20"))]),
                # a claim payments never saw: unmatched
                Clp(
                    f"UNM{RUN}",
                    Decimal("77.77"),
                    Decimal("7.77"),
                    cas=[("CO", "45", Decimal("70"))],
                ),
            ],
            payer_id=PAYER,
            trace=f"TRN{RUN}",
        )
        async with rt["payments"].pool.acquire() as conn, conn.transaction():
            await apply_era(conn, era, f"matrix-{RUN}.835", Emitter("payments"))
            # An issued refund of the claim's account (its steps by two people, as the API
            # requires), for the refund routes.
            from services.payments import patient_repository as prepo

            seed["payments_account"] = account = f"ENC-{claim}"
            refund_id = await prepo.insert_refund(
                conn,
                site_id=SITE_A,
                account=account,
                amount=Decimal("5.00"),
                method="check",
                reference=None,
                reason="route matrix",
                idempotency_key=f"matrix-{RUN}",
                fingerprint="-",
                requested_by=f"matrix-biller-{RUN}",
            )
            await prepo.set_refund_state(conn, refund_id, "approved", f"matrix-lead-{RUN}")
            await prepo.set_refund_state(conn, refund_id, "issued", f"matrix-biller-{RUN}")
            seed["payments_refund"] = str(refund_id)
    if "followup" in rt:
        f = rt["followup"]
        handler = importlib.import_module("services.followup.app").spec().handler(f)
        denied, owing, other = f"FCL{RUN}", f"FCO{RUN}", f"FCB{RUN}"
        seed["followup_claim"] = denied
        await _handle(
            f,
            "followup",
            handler,
            submitted(SITE_A, denied, charge="200.00", dos=dos),
            submitted(SITE_A, owing, charge="150.00", dos=dos, mrn=f"MRN-A{RUN}"),
            submitted(SITE_B, other, charge="150.00", dos=dos, mrn=f"MRN-B{RUN}"),
        )
        await _handle(
            f,
            "followup",
            handler,
            remitted(
                SITE_A,
                denied,
                status="4",
                charge="200.00",
                paid="0",
                adjustments=[("CO", "50", "200.00")],
            ),
            *(
                remitted(
                    site,
                    cid,
                    charge="150.00",
                    paid="100.00",
                    pr="40.00",
                    adjustments=[("CO", "45", "10.00"), ("PR", "2", "40.00")],
                )
                for site, cid in ((SITE_A, owing), (SITE_B, other))
            ),
        )
        async with f.pool.acquire() as conn:
            seed["followup_item"] = str(
                await conn.fetchval(
                    "SELECT work_item_id FROM followup.work_item WHERE claim_id = $1", denied
                )
            )
    if "coding" in rt:
        from services.coding import repository as coding

        encounter = f"ENC-C{RUN}"
        seed["coding_encounter"] = encounter
        enc = coded(SITE_A, encounter, dos, "AETNA1").payload.encounter
        enc = enc.model_copy(update={"note": f"Assessment: {CODING_NOTE_SPAN}."})
        async with rt["coding"].pool.acquire() as conn, conn.transaction():
            await coding.insert_encounters(
                conn,
                [
                    coding.EncounterRow(
                        encounter,
                        SITE_A,
                        dos,
                        "review",
                        "review",
                        None,
                        enc.model_dump_json(),
                        json.dumps({"diagnoses": [], "procedures": []}),
                        "[]",
                        None,
                        None,
                    )
                ],
            )
            await coding.enqueue(conn, [(encounter, SITE_A)])
            seed["coding_item"] = str(
                await conn.fetchval(
                    "SELECT work_item_id FROM coding.work_item WHERE encounter_id = $1", encounter
                )
            )
            start = enc.note.index(CODING_NOTE_SPAN)
            span = {"text": CODING_NOTE_SPAN, "start": start, "end": start + len(CODING_NOTE_SPAN)}
            query = coding.QueryRow(
                encounter,
                SITE_A,
                None,
                "coder",
                "laterality",
                "Please clarify the side of the injury documented in the assessment.",
                json.dumps([span]),
                json.dumps(["Right", "Left", "Other (please specify)", "Clinically undetermined"]),
                1,
                f"matrix-coder-{RUN}",
            )
            drafted, cancelled = await coding.insert_queries(conn, [query, query])
            await coding.set_query_state(
                conn, cancelled["query_id"], "cancelled", "matrix", cancel_reason="route matrix"
            )
            seed["coding_query"] = str(drafted["query_id"])
            seed["coding_query_cancelled"] = str(cancelled["query_id"])
    if "intake" in rt:
        from services.intake import repository as intake
        from services.intake.domain.registry import Site

        encounter = f"ENC-I{RUN}"
        seed["intake_encounter"] = encounter
        event_id = uuid.uuid4()
        async with rt["intake"].pool.acquire() as conn, conn.transaction():
            await intake.upsert_sites(conn, [Site(SITE_A, "Matrix Site A")])
            await intake.record_versions(
                conn, [intake.Received(encounter, SITE_A, f"h{RUN}", event_id)]
            )
            await intake.insert_documents(
                conn, [(encounter, 1, SITE_A, f"h{RUN}", event_id, "http", "{}", "[]", "[]")]
            )
        seed["site_a_bundle"] = _bundle(SITE_A)  # type: ignore[assignment]
        from services.intake.appointments import accept_appointments
        from services.intake.domain.appointments import read_appointments

        seed["site_a_appointment"] = _appointment(SITE_A)  # type: ignore[assignment]
        seed["intake_appointment"] = f"APPT-{RUN}"
        async with rt["intake"].pool.acquire() as conn, conn.transaction():
            await accept_appointments(
                conn, read_appointments(seed["site_a_appointment"]).appointments
            )
    return seed


def _bundle(site: str) -> dict:
    """A FHIR R4 Bundle holding one encounter of ``site``."""
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "resource": {
                    "resourceType": "Organization",
                    "id": "org",
                    "identifier": [{"system": "urn:rcm:site", "value": site}],
                    "name": "Matrix Site",
                }
            },
            {
                "resource": {
                    "resourceType": "Patient",
                    "id": "pat",
                    "name": [{"family": "Matrix", "given": ["Pat"]}],
                    "birthDate": "1980-05-17",
                }
            },
            {
                "resource": {
                    "resourceType": "Encounter",
                    "id": f"enc-{site}",
                    "status": "finished",
                    "class": {"code": "AMB"},
                    "subject": {"reference": "Patient/pat"},
                    "serviceProvider": {"reference": "Organization/org"},
                    "period": {"start": (date.today() - timedelta(days=3)).isoformat()},
                }
            },
        ],
    }


def _appointment(site: str) -> dict:
    """A FHIR R4 Bundle holding one booked Appointment at a Location of ``site``."""
    bundle = _bundle(site)
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["resourceType"] != "Encounter"]
    bundle["entry"] += [
        {
            "resource": {
                "resourceType": "Location",
                "id": "loc",
                "managingOrganization": {"reference": "Organization/org"},
            }
        },
        {
            "resource": {
                "resourceType": "Appointment",
                "id": f"APPT-{RUN}",
                "status": "booked",
                "start": f"{date.today() + timedelta(days=20)}T10:00:00Z",
                "participant": [
                    {"actor": {"reference": "Patient/pat"}},
                    {"actor": {"reference": "Location/loc"}},
                ],
            }
        },
    ]
    return bundle


# --------------------------------------------------------------------------- the probes


def _cases():
    for key, expect in ROUTES.items():
        marks = []
        if key in PENDING_ROUTES or expect.pending:
            marks.append(pytest.mark.xfail(reason=PENDING, strict=False))
        yield pytest.param(key, expect, id=f"{key[0]} {key[1]} {key[2]}", marks=marks)


def _fill(value, seed: dict):
    return seed[value] if isinstance(value, str) and value in seed else value


async def _call(w: World, key, expect: Expect, token: str | None, *, body=None):
    service, method, template = key
    path = template
    for name, seeded in expect.path.items():
        path = path.replace("{" + name + "}", str(w.seed[seeded]))
    headers = {"authorization": f"Bearer {token}"} if token is not None else {}
    send = _fill(expect.body if body is None else body, w.seed)
    if isinstance(send, str):  # HL7 v2 text
        headers["content-type"] = "x-application/hl7-v2+er7"
        payload = {"content": send.encode()}
    else:
        payload = {"json": send if method in ("POST", "PUT") else None}
    async with w.client(service) as client:
        return await client.request(method, path, params=expect.query, headers=headers, **payload)


@pytest.mark.parametrize(("key", "expect"), list(_cases()))
async def test_route(world: World, key, expect: Expect):
    w = world
    service = key[0]
    if service not in w.apps:
        pytest.skip(f"{service} has no HTTP API in this checkout")
    role = sorted(expect.roles)[0]
    right_sites = ["*"] if expect.site == "all-sites" else [SITE_A]

    problems: list[str] = []

    def expect_status(what: str, r: httpx.Response, wanted) -> bool:
        if r.status_code in wanted:
            return True
        problems.append(f"{what}: HTTP {r.status_code} {r.text[:200]}")
        return False

    # Who is not let in at all.
    expect_status("no token", await _call(w, key, expect, None), (401,))
    valid = w.token(role, ["*"])
    forged = jwt.encode(
        jwt.decode(valid, options={"verify_signature": False}),
        w.stranger.private,  # type: ignore[attr-defined]
        algorithm="RS256",
        headers={"kid": jwt.get_unverified_header(valid)["kid"]},
    )
    expect_status("bad signature", await _call(w, key, expect, forged), (401,))
    expired = w.token(role, ["*"], issued_at=int(time.time()) - 3600)  # 600 s lifetime
    expect_status("expired", await _call(w, key, expect, expired), (401,))
    revoked = w.token(role, ["*"], jti=REVOKED_JTI)
    expect_status("revoked", await _call(w, key, expect, revoked), (401,))
    # Every role the route is not for.
    for wrong in sorted(set(ROLES) - expect.roles):
        r = await _call(w, key, expect, w.token(wrong, ["*"]))
        expect_status(f"role {wrong}", r, (403,))
    # The right role, another site (sent only to a route that keeps the others out: its body
    # may be real data).
    assert not problems, f"{key}: " + "; ".join(problems)
    r = await _call(w, key, expect, w.token(role, [SITE_B]), body=expect.other_body)
    if expect.site in ("403", "all-sites"):
        expect_status("another site", r, (403,))
    elif expect_status("another site", r, expect.ok) and expect.site == "filtered":
        hidden = [SITE_A] + ([w.seed[expect.shows]] if expect.shows else [])
        if [h for h in hidden if h in r.text]:
            problems.append(f"another site sees site A: {r.text[:200]}")
    # The right callers, of the seeded site.
    for allowed in sorted(expect.roles):
        r = await _call(w, key, expect, w.token(allowed, right_sites))
        if (
            expect_status(f"role {allowed}", r, expect.ok)
            and expect.shows
            and r.status_code == 200
            and str(w.seed[expect.shows]) not in r.text
        ):
            problems.append(f"role {allowed}: {expect.shows} not shown: {r.text[:200]}")
    assert not problems, f"{key}: " + "; ".join(problems)


async def test_health_is_open_and_every_route_is_in_the_table(world: World):
    """The apps' own routes, every one of them named in ROUTES (or open, or the docs)."""
    missing, unknown = [], []
    for name, app in world.apps.items():
        if name in SESSION_SERVICES:
            continue
        seen = set()
        for route in iter_route_contexts(app.routes):  # type: ignore[attr-defined]
            for method in sorted(route.methods or {"*"}):
                if method == "HEAD" or route.path in DOCS:
                    continue
                seen.add((name, method, route.path))
                if route.path in OPEN:
                    continue
                if (name, method, route.path) not in ROUTES:
                    missing.append(f"{name} {method} {route.path}")
        unknown += [
            " ".join(k) for k in ROUTES if k[0] == name and k not in seen
        ]  # a route the table names that the app lost
        async with world.client(name) as client:
            assert (await client.get("/health")).status_code == 200
    assert not missing, f"routes without an entry in ROUTES (roles, site rule): {missing}"
    assert not unknown, f"ROUTES names routes the apps do not have: {unknown}"
    assert {k[0] for k in ROUTES} <= set(world.apps)


async def test_workbench_serves_nothing_but_sign_in_without_a_session(world: World):
    """Every workbench route but the sign-in flow sends a caller without a session to sign in
    (303 to /signin, or 401/403: a POST without the session's CSRF token), whatever bearer
    token it brings."""
    if "workbench" not in world.apps:
        pytest.skip("no workbench in this checkout")
    served = []
    routes = [
        (method, r.path)
        for r in iter_route_contexts(world.apps["workbench"].routes)  # type: ignore[attr-defined]
        for method in sorted(r.methods or {"GET"})
        if method != "HEAD" and r.path not in OPEN | DOCS | WORKBENCH_OPEN
    ]
    assert routes, "the workbench has no screens?"
    bearer = {"authorization": f"Bearer {world.token('supervisor', ['*'])}"}
    async with world.client("workbench") as client:
        for method, template in routes:
            path = template.replace("{work_item_id}", "1").replace("{claim_id}", "C1")
            path = path.replace("{encounter_id}", "E1")
            for headers in ({}, bearer):
                r = await client.request(method, path, headers=headers, follow_redirects=False)
                to_signin = r.status_code == 303 and r.headers["location"].startswith("/signin")
                if not (to_signin or r.status_code in (401, 403)):
                    served.append(f"{method} {template}: {r.status_code}")
    assert not served, f"served without a session: {served}"


async def test_docs_are_off_in_production(world: World):
    """/docs and /openapi.json exist only outside production (shared.http.harden)."""
    for name, rt in world.runtimes.items():
        spec = importlib.import_module(f"services.{name}.app").spec()
        production = rt.settings.model_copy(
            update={"runtime": rt.settings.runtime.model_copy(update={"env": "production"})}
        )
        prod_rt = Runtime(
            settings=production,
            pool=rt.pool,
            relay=rt.relay,
            stop=rt.stop,
            context=rt.context,
            auth=rt.auth,
            identity=rt.identity,
        )
        app = http_app(spec, prod_rt)
        paths = {r.path for r in iter_route_contexts(app.routes)}  # type: ignore[attr-defined]
        assert not paths & DOCS, f"{name} serves {sorted(paths & DOCS)} in production"
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://matrix"
        ) as client:
            assert (await client.get("/openapi.json")).status_code == 404


# --------------------------------------------------------------------------- jobs by site


async def test_jobs_of_a_site_scoped_caller_cover_only_its_sites(world: World):
    """A supervisor of one site runs statements and the no-response pass for that site only;
    statements cannot be back-dated."""
    f = world.runtimes.get("followup")
    if f is None:
        pytest.skip("no followup service")
    handler = importlib.import_module("services.followup.app").spec().handler(f)
    long_ago = datetime.now(UTC) - timedelta(days=70)
    dos = long_ago.date() - timedelta(days=1)
    claims = {site: (f"JS{site}", f"JN{site}") for site in (JOB_A, JOB_B)}
    events = []
    for site, (owing, silent) in claims.items():
        events += [
            submitted(site, owing, charge="150.00", dos=dos, mrn=f"MRN-{site}"),
            # submitted 70 days ago, never acknowledged or paid: the no-response pass's business
            submitted(site, silent, charge="90.00", dos=dos, submitted_at=long_ago),
        ]
    await _handle(f, "followup", handler, *events)
    await _handle(
        f,
        "followup",
        handler,
        *(
            remitted(
                site,
                owing,
                charge="150.00",
                paid="100.00",
                pr="50.00",
                adjustments=[("PR", "1", "50.00")],
            )
            for site, (owing, _) in claims.items()
        ),
    )

    async def run(path: str, sites: list[str], **params) -> httpx.Response:
        async with world.client("followup") as client:
            token = world.token("supervisor", sites, user=f"lead-{sites[0]}")
            return await client.post(
                path, params=params, headers={"authorization": f"Bearer {token}"}
            )

    async def no_response_items(site: str) -> int:
        return await f.pool.fetchval(
            "SELECT count(*) FROM followup.work_item WHERE claim_id = $1 AND category = 'no response'",
            claims[site][1],
        )

    yesterday = (date.today() - timedelta(days=1)).isoformat()
    r = await run("/statements/run", [JOB_B], as_of=yesterday)
    assert r.status_code == 422 and "as_of" in r.json()["detail"]
    r = await run("/statements/run", [JOB_B])
    assert r.status_code == 200, r.text
    assert {s["site_id"] for s in r.json()["issued"]} == {JOB_B}
    r = await run("/jobs/no-response", [JOB_B])
    assert r.status_code == 200, r.text
    assert (await no_response_items(JOB_B), await no_response_items(JOB_A)) == (1, 0)
    # The other site's turn: its own statement and work item, the first site's untouched.
    r = await run("/statements/run", [JOB_A])
    assert {s["site_id"] for s in r.json()["issued"]} == {JOB_A}
    assert (await run("/jobs/no-response", [JOB_A])).status_code == 200
    assert await no_response_items(JOB_A) == 1
    audit = await f.pool.fetch(
        "SELECT actor, action, resource_type, resource_ids, site_id FROM followup.audit_record"
        " WHERE actor = ANY($1::text[]) ORDER BY seq",
        [f"lead-{JOB_A}", f"lead-{JOB_B}"],
    )
    kinds = [(a["actor"], a["action"], a["resource_type"]) for a in audit]
    assert kinds == [
        (f"lead-{JOB_B}", "job", "statement_run"),
        (f"lead-{JOB_B}", "create", "statement"),
        (f"lead-{JOB_B}", "job", "no_response_run"),
        (f"lead-{JOB_A}", "job", "statement_run"),
        (f"lead-{JOB_A}", "create", "statement"),
        (f"lead-{JOB_A}", "job", "no_response_run"),
    ]
    assert list(audit[0]["resource_ids"])[1] == f"sites={JOB_B}"
    assert audit[1]["site_id"] == JOB_B


async def test_unmatched_remittances_belong_to_no_site_until_matched(world: World):
    """An 835 claim payment matched to no claim is shown to all-site callers only."""
    if "payments" not in world.apps:
        pytest.skip("no payments service")
    unmatched = f"UNM{RUN}"

    async def ids(sites: list[str]) -> list[str]:
        async with world.client("payments") as client:
            token = world.token("biller", sites)
            r = await client.get(
                "/remittances/unmatched",
                params={"limit": "5000"},
                headers={"authorization": f"Bearer {token}"},
            )
        assert r.status_code == 200, r.text
        return [x["patient_control_number"] for x in r.json()]

    assert unmatched in await ids(["*"])
    assert unmatched not in await ids([SITE_A])


async def test_operations_see_aging_by_payer_not_by_patient_account(world: World):
    if "followup" not in world.apps:
        pytest.skip("no followup service")
    headers = {"authorization": f"Bearer {world.token('ops', ['*'])}"}
    async with world.client("followup") as client:
        assert (await client.get("/ar/aging", headers=headers)).status_code == 200
        r = await client.get("/ar/aging", params={"by": "patient"}, headers=headers)
    assert r.status_code == 403 and "operations" in r.json()["detail"]
