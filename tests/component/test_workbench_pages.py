"""The services the workbench calls, played at the HTTP boundary (httpx.MockTransport).

Each fake verifies the bearer token with shared.auth as the real services do, scopes by the
caller's sites (403 for another site's item) and answers in the real APIs' shapes. The coder
items are what the coding engine really produces for vignette encounters, and completing
one runs the engine's own final-code edits, so blocking edits are real ones.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from services.coding.domain import engine
from services.intake.domain.fhir import parse_intake
from shared.auth import Authenticator, Principal, TokenError
from shared.events import Encounter
from shared.settings import AuthSettings, RuntimeSettings

VIGNETTES = Path(__file__).resolve().parents[1] / "fixtures" / "vignettes"


def coded_item(work_item_id: int, vignette: str, site: str) -> dict:
    enc = parse_intake(json.loads((VIGNETTES / vignette).read_text()))
    enc = enc.model_copy(update={"site_id": site, "encounter_id": f"ENC-{work_item_id}"})
    suggestions = engine.offline_json(engine.code_encounter(enc))
    return {
        "work_item_id": work_item_id,
        "encounter_id": enc.encounter_id,
        "site_id": site,
        "status": "queued",
        "lease_token": None,
        "lease_expires_at": None,
        "note": enc.note,
        "encounter": enc.model_dump(mode="json"),
        "suggestions": suggestions,
        "edits": suggestions["edits"],
    }


@dataclass
class Fakes:
    home: Path
    coding_items: dict[int, dict] = field(default_factory=dict)
    completed: list[dict] = field(default_factory=list)
    actions: list[dict] = field(default_factory=list)
    followup_items: dict[int, dict] = field(default_factory=dict)
    search: list[dict] | None = None  # None: coding offers no search endpoint
    seen_tokens: list[str] = field(default_factory=list)
    refuse_tokens: bool = False

    def __post_init__(self):
        self.auth = Authenticator.build(AuthSettings(), RuntimeSettings(home=self.home))

    # -- plumbing --------------------------------------------------------------------------

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme != "Bearer" or self.refuse_tokens:
            return httpx.Response(401, json={"detail": "missing bearer token"})
        try:
            p = self.auth.authenticate_local(token)
        except TokenError as e:
            return httpx.Response(401, json={"detail": str(e)})
        self.seen_tokens.append(token)
        route = getattr(self, request.url.host, None)
        if route is None:
            return httpx.Response(503)
        return route(request, p)

    @staticmethod
    def missing() -> httpx.Response:
        return httpx.Response(404, json={"detail": "Not Found"})

    @staticmethod
    def body(request: httpx.Request) -> dict:
        return json.loads(request.content or b"{}")

    # -- coding ----------------------------------------------------------------------------

    def coding(self, request: httpx.Request, p: Principal) -> httpx.Response:
        if not p.roles & {"coder", "supervisor"}:
            return httpx.Response(403, json={"detail": "the caller's role may not do this"})
        path, method = request.url.path, request.method
        mine = [i for i in self.coding_items.values() if p.can_access(i["site_id"])]
        if path == "/work/depth":
            depth: dict = {}
            for i in mine:
                if i["status"] != "completed":
                    d = depth.setdefault(i["site_id"], {"queued": 0, "leased": 0})
                    d["queued" if i["status"] == "queued" else "leased"] += 1
            return httpx.Response(200, json=depth)
        if path == "/work/next" and method == "POST":
            item = next((i for i in mine if i["status"] == "queued"), None)
            if item is None:
                return httpx.Response(204)
            expires = datetime.now(UTC) + timedelta(minutes=15)
            item.update(
                status="leased",
                lease_token=str(uuid.uuid4()),
                lease_expires_at=expires.isoformat(),
                leased_by=p.user_id,
            )
            return httpx.Response(200, json=_view(item))
        if path == "/coders/stats":
            return httpx.Response(
                200,
                json=[
                    {
                        "user_id": "coder-north",
                        "completed": 6,
                        "avg_handling_seconds": 300.0,
                        "changed_suggestions": 3,
                    },
                    {
                        "user_id": "coder-south",
                        "completed": 2,
                        "avg_handling_seconds": 600.0,
                        "changed_suggestions": 0,
                    },
                ],
            )
        if path == "/codes/search":
            return self.missing() if self.search is None else httpx.Response(200, json=self.search)
        m = re.fullmatch(r"/work/(\d+)(/complete)?", path)
        if not m:
            return self.missing()
        item = self.coding_items.get(int(m.group(1)))
        if item is None:
            return httpx.Response(404, json={"detail": f"work item {m.group(1)} not found"})
        if not p.can_access(item["site_id"]):
            return httpx.Response(
                403, json={"detail": f"work item {m.group(1)} belongs to another site"}
            )
        if not m.group(2):
            return httpx.Response(200, json=_view(item))
        body = self.body(request)
        if item.get("leased_by") != p.user_id or body.get("lease_token") != item["lease_token"]:
            return httpx.Response(
                409, json={"detail": "work item is not leased to you (lease expired or taken)"}
            )
        enc = Encounter.model_validate(item["encounter"])
        edits = engine.validate_final_codes(enc, body["diagnoses"], body["procedures"])
        overridden = {o["code"] for o in body.get("overrides", [])}
        unresolved = [
            e.model_dump() for e in edits if e.severity == "blocking" and e.code not in overridden
        ]
        if unresolved:
            return httpx.Response(
                422,
                json={
                    "detail": {
                        "message": "blocking coding edits remain; fix them or override with a reason",
                        "edits": unresolved,
                    }
                },
            )
        item["status"] = "completed"
        self.completed.append({"work_item_id": item["work_item_id"], "user": p.user_id, **body})
        return httpx.Response(
            200, json={"work_item_id": item["work_item_id"], "status": "completed"}
        )

    # -- followup, billing, payments --------------------------------------------------------

    def followup(self, request: httpx.Request, p: Principal) -> httpx.Response:
        if not p.roles & {"biller", "supervisor"}:
            return httpx.Response(403, json={"detail": "the caller's role may not do this"})
        path = request.url.path
        mine = [i for i in self.followup_items.values() if p.can_access(i["site_id"])]
        if path == "/work/depth":
            depth: dict = {}
            for i in mine:
                d = depth.setdefault(i["site_id"], {}).setdefault(
                    i["category"],
                    {"queued": 0, "leased": 0, "waiting": 0, "urgent": 0, "overdue": 0},
                )
                d[{"open": "queued", "leased": "leased", "waiting": "waiting"}[i["status"]]] += 1
            return httpx.Response(200, json=depth)
        if path == "/work/next" and request.method == "POST":
            cat = request.url.params.get("category")
            item = next(
                (i for i in mine if i["status"] == "open" and cat in (None, i["category"])), None
            )
            if item is None:
                return httpx.Response(204)
            item.update(status="leased", lease_token=str(uuid.uuid4()))
            return httpx.Response(200, json=item)
        if path == "/ar/aging":
            return httpx.Response(
                200,
                json={
                    "as_of": "2026-12-07",
                    "basis": "service",
                    "by": "payer",
                    "columns": ["0-30", "31-60", "61-90", "91-120", "120+", "credit"],
                    "rows": {
                        "ACME": {
                            "0-30": "400.00",
                            "31-60": "100.00",
                            "61-90": "0.00",
                            "91-120": "0.00",
                            "120+": "50.00",
                            "credit": "0.00",
                            "total": "550.00",
                        }
                    },
                    "totals": {},
                    "grand_total": "550.00",
                },
            )
        if path == "/claims/CLM-1":
            return httpx.Response(
                200,
                json={
                    "claim_id": "CLM-1",
                    "site_id": "north-clinic",
                    "state": "denied",
                    "payer_id": "ACME",
                    "status_history": [
                        {
                            "source": "277CA",
                            "outcome": "accepted",
                            "status_category": "A2",
                            "recorded_at": "2026-11-02T09:00:00+00:00",
                        }
                    ],
                    "appeals": [],
                    "work_items": [
                        {
                            "work_item_id": 7,
                            "category": "medical necessity",
                            "action": "appeal",
                            "status": "leased",
                        }
                    ],
                },
            )
        m = re.fullmatch(r"/work/(\d+)(/actions)?", path)
        if not m:
            return self.missing()
        item = self.followup_items.get(int(m.group(1)))
        if item is None:
            return httpx.Response(404, json={"detail": "not found"})
        if not p.can_access(item["site_id"]):
            return httpx.Response(403, json={"detail": "belongs to another site"})
        if not m.group(2):
            return httpx.Response(200, json=item)
        body = self.body(request)
        if body.get("lease_token") != item.get("lease_token"):
            return httpx.Response(409, json={"detail": "lease lost"})
        self.actions.append({"work_item_id": item["work_item_id"], **body})
        item["status"] = "waiting" if body["action"] == "appeal" else "resolved"
        return httpx.Response(
            200, json={"work_item_id": item["work_item_id"], "status": item["status"]}
        )

    def billing(self, request: httpx.Request, p: Principal) -> httpx.Response:
        if request.url.path != "/claims/CLM-1":
            return httpx.Response(404, json={"detail": "claim not found"})
        return httpx.Response(
            200,
            json={
                "claim_id": "CLM-1",
                "site_id": "north-clinic",
                "payer_id": "ACME",
                "status": "denied",
                "history": [
                    {
                        "status": "submitted",
                        "at": "2026-11-01T10:00:00+00:00",
                        "detail": {"file_name": "c.837"},
                    },
                    {"status": "denied", "at": "2026-11-09T10:00:00+00:00", "detail": None},
                ],
            },
        )

    def payments(self, request: httpx.Request, p: Principal) -> httpx.Response:
        if request.url.path != "/claims/CLM-1/balance":
            return self.missing()
        return httpx.Response(
            200,
            json={
                "claim_id": "CLM-1",
                "billed": "150.00",
                "paid": "0.00",
                "contractual": "0.00",
                "other_adjustments": "0.00",
                "payer_balance": "150.00",
                "patient_balance": "0.00",
                "open_balance": "150.00",
            },
        )


def _view(item: dict) -> dict:
    return {k: v for k, v in item.items() if k != "leased_by"}


def denial_item(work_item_id: int, site: str) -> dict:
    return {
        "work_item_id": work_item_id,
        "claim_id": "CLM-1",
        "site_id": site,
        "category": "medical necessity",
        "action": "appeal",
        "status": "open",
        "carc": "50",
        "rarc": ["N115"],
        "amount": "150.00",
        "lease_token": None,
        "claim": {
            "claim_id": "CLM-1",
            "state": "denied",
            "payer_id": "ACME",
            "total_charge": "150.00",
        },
        "appeals": [],
        "audit": [
            {
                "user_id": "biller-north",
                "action": "lease",
                "detail": None,
                "at": "2026-11-10T09:00:00+00:00",
            }
        ],
    }


# ------------------------------------------------------------------------------- the tests

import pytest  # noqa: E402

from services.workbench import context  # noqa: E402
from services.workbench.settings import WorkbenchConfig, WorkbenchSettings  # noqa: E402
from services.workbench.web.app import create_app  # noqa: E402

BASE = "https://wb.test"


@pytest.fixture
def fakes(tmp_path) -> Fakes:
    f = Fakes(home=tmp_path)
    f.coding_items[1] = coded_item(1, "ed_ankle_sprain_right.json", "north-clinic")
    f.coding_items[2] = coded_item(2, "pc_htn_hld.json", "south-urgent-care")
    f.coding_items[3] = coded_item(3, "peds_uri.json", "north-clinic")
    f.followup_items[7] = denial_item(7, "north-clinic")
    f.followup_items[8] = denial_item(8, "south-urgent-care")
    return f


@pytest.fixture
async def browser(fakes, tmp_path):
    """A client that signs in as someone: ``await browser("coder-north")``."""
    settings = WorkbenchSettings(
        runtime=RuntimeSettings(home=tmp_path, run_dir=tmp_path / "run"),
        workbench=WorkbenchConfig(
            public_url=BASE,
            **{f"{s}_url": f"http://{s}" for s in ("coding", "billing", "payments", "followup")},
        ),
    )
    ctx = context.build(settings, transport=fakes.transport())
    app = create_app(ctx)
    clients = []

    async def sign_in(username: str | None = None) -> httpx.AsyncClient:
        c = httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url=BASE, headers={"origin": BASE}
        )
        clients.append(c)
        if username:
            r = await c.get("/signin")
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', r.text).group(1)
            r = await c.post("/signin/dev", data={"username": username, "csrf_token": csrf})
            assert r.status_code == 303, r.text
            c.csrf = await _csrf(c, r.headers["location"])
        return c

    yield sign_in
    for c in clients:
        await c.aclose()
    await ctx.close()


async def _csrf(c: httpx.AsyncClient, path: str) -> str:
    r = await c.get(path)
    return re.search(r'"X-CSRF-Token": "([^"]+)"', r.text).group(1)


def _post(c, url, data=None, htmx=True):
    headers = {"x-csrf-token": c.csrf}
    if htmx:
        headers["hx-request"] = "true"
    return c.post(url, data=data or {}, headers=headers)


async def test_sign_in_sets_a_host_only_secure_httponly_lax_cookie(browser):
    c = await browser()
    assert (await c.get("/coder")).headers["location"] == "/signin?next=/coder"
    r = await c.get("/signin")
    assert "Development sign-in" in r.text and "coder-north" in r.text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', r.text).group(1)
    r = await c.post("/signin/dev", data={"username": "coder-north", "csrf_token": csrf})
    cookie = r.headers["set-cookie"].lower()
    assert cookie.startswith("__host-rcm-wb=")
    assert all(flag in cookie for flag in ("secure", "httponly", "samesite=lax", "path=/"))
    assert "domain=" not in cookie
    assert r.headers["location"] == "/coder"
    # the sign-in form is single use
    r = await c.post("/signin/dev", data={"username": "supervisor-all", "csrf_token": csrf})
    assert r.status_code == 400


async def test_every_post_needs_the_csrf_token_and_our_origin(browser, fakes):
    c = await browser("coder-north")
    r = await c.post("/coder/next", headers={"hx-request": "true"})
    assert r.status_code == 200 and "did not come from the workbench" in r.text
    assert r.headers["hx-retarget"] == "#flash"
    r = await c.post("/coder/next", headers={"x-csrf-token": c.csrf, "origin": "https://evil.test"})
    assert r.status_code == 403
    assert all(i["status"] == "queued" for i in fakes.coding_items.values())  # nothing leased


async def test_pages_carry_the_browser_security_headers(browser):
    c = await browser("coder-north")
    r = await c.get("/coder")
    csp = r.headers["content-security-policy"]
    assert (
        "script-src 'self'" in csp
        and "frame-ancestors 'none'" in csp
        and "unsafe-inline" not in csp
    )
    assert (
        r.headers["cache-control"] == "no-store"
        and r.headers["x-content-type-options"] == "nosniff"
    )
    assert (await c.get("/static/vendor/htmx-2.0.11.min.js")).status_code == 200


async def test_roles_open_only_their_screens(browser):
    coder = await browser("coder-north")
    assert [
        a
        for a in ("Coding", "Billing", "Dashboard")
        if f">{a}</a>" in (await coder.get("/coder")).text
    ] == ["Coding"]
    for path in (
        "/billing",
        "/billing/items/7",
        "/billing/claims/CLM-1",
        "/dashboard",
        "/traces/ENC-1",
    ):
        r = await coder.get(path)
        assert r.status_code == 403, path
    biller = await browser("biller-north")
    assert (await biller.get("/coder")).status_code == 403
    ops = await browser("ops-all")
    assert (await ops.get("/billing")).status_code == 403
    assert (await ops.get("/dashboard")).status_code == 200


async def test_a_coder_sees_only_their_sites(browser, fakes):
    c = await browser("coder-north")
    r = await c.get("/coder")
    assert (
        'data-site="north-clinic" data-queued="2"' in r.text and "south-urgent-care" not in r.text
    )
    r = await c.get("/coder/items/2")  # south's item: coding refuses, so does the page
    assert r.status_code == 403 and "belongs to another site" in r.text
    assert "htn" not in r.text.lower()


async def test_the_note_marks_each_codes_evidence(browser, fakes):
    c = await browser("coder-north")
    r = await _post(c, "/coder/next")
    assert r.headers["hx-redirect"] == "/coder/items/1"
    page = (await c.get("/coder/items/1")).text
    assert '<mark class="ev" data-refs="dx-0 px-0">Sprain of right ankle</mark>' in page
    assert 'data-ref="dx-0"' in page and "S93401A" in page and "99283" in page
    assert "not marked: the coding service does not report them yet" in page
    # when coding reports negated and historical mentions, they are marked with a label
    note = fakes.coding_items[1]["note"]
    at = note.index("Sprain")
    fakes.coding_items[1]["suggestions"]["context"] = [
        {"start": 0, "end": 10, "kind": "negated"},
        {"start": at - 5, "end": at + 6, "kind": "history"},
    ]
    page = (await c.get("/coder/items/1")).text
    assert '<span class="ctx ctx-negated"><span class="ctx-label">negated</span>' in page
    assert '<span class="ctx-label">history</span>' in page
    assert (
        '<mark class="ev" data-refs="dx-0 px-0">Sprain</mark>' in page
    )  # cut where the history span ends


async def test_complete_needs_every_suggestion_decided(browser, fakes):
    c = await browser("coder-north")
    await _post(c, "/coder/next")
    token = fakes.coding_items[1]["lease_token"]
    r = await _post(c, "/coder/items/1/complete", {"lease_token": token, "dx-0": "accept"})
    assert "Decide every suggestion first: 1 still open (px-0)" in r.text
    assert fakes.completed == []


async def test_reject_add_override_complete_and_next(browser, fakes):
    """The coder journey against coding's contract: a blocking edit, overridden with a reason."""
    c = await browser("coder-north")
    await _post(c, "/coder/next")
    token = fakes.coding_items[1]["lease_token"]
    form = {"lease_token": token, "dx-0": "accept", "px-0": "accept", "add-dx": "O80"}
    r = await _post(c, "/coder/items/1/complete", form)
    assert "blocking coding edits remain" in r.text
    assert 'name="override:DX_SEX_CONFLICT"' in r.text and fakes.completed == []
    r = await _post(
        c,
        "/coder/items/1/complete",
        {**form, "override:DX_SEX_CONFLICT": "Documented by the provider"},
    )
    assert r.headers["hx-redirect"] == "/coder/items/3"  # complete-and-next
    (done,) = fakes.completed
    assert done["diagnoses"] == ["S93401A", "O80"]
    assert done["procedures"] == [
        {"code": "99283", "modifiers": [], "units": "1", "diagnosis_pointers": [1]}
    ]
    assert done["overrides"] == [
        {"code": "DX_SEX_CONFLICT", "reason": "Documented by the provider"}
    ]
    assert done["user"] == "coder-north"
    # nothing left: back to the queue
    item3 = fakes.coding_items[3]
    r = await _post(
        c,
        "/coder/items/3/complete",
        {"lease_token": item3["lease_token"], "dx-0": "reject", "px-0": "accept", "add-dx": "J069"},
    )
    assert r.headers["hx-redirect"] == "/coder?done=1"
    assert fakes.completed[1]["diagnoses"] == ["J069"]


async def test_live_edit_check_and_code_search(browser, fakes):
    c = await browser("coder-north")
    await _post(c, "/coder/next")
    r = await _post(c, "/coder/items/1/check", {"dx-0": "accept"})
    assert "1 suggestion still to decide" in r.text
    r = await _post(c, "/coder/items/1/check", {"dx-0": "accept", "px-0": "accept"})
    assert "offers no live re-check yet" in r.text  # coding has no POST /work/{id}/validate
    r = await _post(c, "/coder/codes", {"q": "ankle"})
    assert "not offered by the coding service yet" in r.text
    fakes.search = [
        {
            "code": "S93401A",
            "label": "Sprain of unsp ligament of right ankle, init",
            "billable": True,
            "system": "icd10cm",
        },
        {"code": "S934", "label": "Sprain of ankle", "billable": False, "system": "icd10cm"},
    ]
    r = await _post(c, "/coder/codes", {"q": "ankle", "system": "icd10cm"})
    assert 'data-add-code="S93401A"' in r.text and "not billable" in r.text


async def test_coder_figures_are_the_coders_own(browser):
    c = await browser("coder-north")
    r = await c.get("/coder")
    assert (
        '<dd id="my-completed">6</dd>' in r.text and "<dd>12.0</dd>" in r.text and "50 %" in r.text
    )


async def test_biller_works_a_denial_with_confirmation_and_reason(browser, fakes):
    c = await browser("biller-north")
    r = await c.get("/billing")
    assert "medical necessity" in r.text and "south-urgent-care" not in r.text
    assert "does not list items yet" in r.text
    r = await _post(c, "/billing/next", {"category": "medical necessity"})
    assert r.headers["hx-redirect"] == "/billing/items/7"
    page = (await c.get("/billing/items/7")).text
    assert "CLM-1" in page and "Appeal with a letter" in page
    r = await _post(c, "/billing/items/7/actions", {"action": "appeal"})
    assert "letter: write the appeal letter" in r.text
    letter = "The visit was medically necessary; notes attached."
    r = await _post(c, "/billing/items/7/actions", {"action": "appeal", "letter": letter})
    assert "Confirm: Appeal with a letter" in r.text and fakes.actions == []
    r = await _post(
        c, "/billing/items/7/actions", {"action": "appeal", "letter": letter, "confirmed": "yes"}
    )
    assert "Done: Appeal with a letter" in r.text
    assert fakes.actions == [
        {
            "work_item_id": 7,
            "action": "appeal",
            "reason": letter,
            "lease_token": fakes.followup_items[7]["lease_token"],
        }
    ]
    assert (await c.get("/billing/items/8")).status_code == 403


async def test_claim_page_shows_the_timeline_and_ledger(browser):
    c = await browser("biller-north")
    r = await c.get("/billing/claims/CLM-1")
    text = r.text
    assert r.status_code == 200
    order = [
        text.index(s)
        for s in ("837 sent", "277CA acknowledgement", "denied (835)", "work item 7: lease")
    ]
    assert order == sorted(order)
    assert 'data-balance="open_balance">150.00' in text
    assert (await c.get("/billing/claims/..%2Fetc")).status_code == 404


async def test_dashboard_shows_what_the_services_offer(browser):
    c = await browser("supervisor-all")
    r = await c.get("/dashboard")
    text = r.text
    assert '<td class="num" data-open="north-clinic">2</td>' in text
    assert '<td class="num" data-open="south-urgent-care">1</td>' in text
    assert "coding does not offer this yet" in text  # GET /stats/routes
    assert 'class="bar w100"' in text and "400.00" in text  # aging bars
    assert "coder-south" in text


async def test_sign_out_ends_the_session(browser):
    c = await browser("coder-north")
    cookie = dict(c.cookies)
    r = await c.post("/signout", data={"csrf_token": c.csrf})
    assert r.headers["location"] == "/signed-out"
    stale = await browser()
    stale.cookies.update(cookie)
    assert (await stale.get("/coder")).status_code == 303


async def test_a_token_the_services_refuse_ends_the_session(browser, fakes):
    c = await browser("coder-north")
    fakes.refuse_tokens = True
    r = await c.get("/coder")
    assert r.status_code == 303 and r.headers["location"].startswith("/signin")
    fakes.refuse_tokens = False
    assert (await c.get("/coder")).status_code == 303  # the session is gone


async def test_the_services_get_the_users_own_token(browser, fakes):
    c = await browser("biller-north")
    await c.get("/billing")
    p = fakes.auth.authenticate_local(fakes.seen_tokens[-1])
    assert (p.user_id, p.role, sorted(p.sites)) == ("biller-north", "biller", ["north-clinic"])


async def test_an_idle_session_ends(browser, fakes, monkeypatch):
    c = await browser("coder-north")
    assert (await c.get("/coder")).status_code == 200
    import time as clock

    later = clock.time() + 31 * 60  # past the 30-minute idle limit
    monkeypatch.setattr("services.workbench.web.security.time.time", lambda: later)
    r = await c.get("/coder")
    assert r.status_code == 303 and r.headers["location"] == "/signin?next=/coder"


async def test_trace_page_draws_the_encounters_spans(browser, tmp_path):
    spans = tmp_path / "run" / "traces" / "spans.jsonl"
    spans.parent.mkdir(parents=True)
    rows = [
        {
            "trace_id": "t1",
            "span_id": "a",
            "parent_id": None,
            "name": "intake encounter",
            "service": "intake",
            "start": 0,
            "end": 4_000_000,
            "status": "OK",
            "attributes": {"rcm.encounter_id": "ENC-9"},
        },
        {
            "trace_id": "t1",
            "span_id": "b",
            "parent_id": "a",
            "name": "code encounter",
            "service": "coding",
            "start": 1_000_000,
            "end": 3_000_000,
            "status": "UNSET",
            "attributes": {},
        },
    ]
    spans.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    c = await browser("ops-all")
    r = await c.get("/traces/ENC-9")
    assert r.status_code == 200
    assert '<th scope="row" class="d1">code encounter</th>' in r.text
    assert "span-bar l24 w50" in r.text
    r = await c.get("/traces", params={"encounter_id": "ENC-9"})
    assert r.headers["location"] == "/traces/ENC-9"
    assert (await c.get("/traces", params={"encounter_id": "<script>"})).status_code == 400


# ------------------------------------------------------------------- the OIDC flow's guards

ISSUER = "https://idp.test/realms/rcm"


@pytest.fixture
async def oidc_client(tmp_path):
    """The workbench in OIDC mode, its identity provider answering discovery only."""

    def idp(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/realms/rcm/.well-known/openid-configuration":
            return httpx.Response(
                200,
                json={
                    "issuer": ISSUER,
                    "authorization_endpoint": f"{ISSUER}/protocol/openid-connect/auth",
                    "token_endpoint": f"{ISSUER}/protocol/openid-connect/token",
                    "jwks_uri": f"{ISSUER}/protocol/openid-connect/certs",
                    "end_session_endpoint": f"{ISSUER}/protocol/openid-connect/logout",
                },
            )
        return httpx.Response(400, json={"error": "invalid_grant"})

    settings = WorkbenchSettings(
        runtime=RuntimeSettings(home=tmp_path),
        auth=AuthSettings(token_issuer=ISSUER, token_audience="rcm", token_keys="oidc"),
        workbench=WorkbenchConfig(public_url=BASE, client_secret="client-secret-for-tests"),
    )
    ctx = context.build(settings, transport=httpx.MockTransport(idp))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(create_app(ctx)), base_url=BASE
    ) as c:
        yield c
    await ctx.close()


async def test_oidc_sign_in_starts_a_pkce_code_flow(oidc_client):
    r = await oidc_client.get("/signin", params={"next": "/billing"})
    assert "/signin/oidc?next=/billing" in r.text and "demo users" not in r.text
    assert (
        await oidc_client.post("/signin/dev", data={"username": "coder-north"})
    ).status_code == 404
    r = await oidc_client.get("/signin/oidc", params={"next": "/billing"})
    assert r.status_code == 303
    url = httpx.URL(r.headers["location"])
    q = dict(url.params)
    assert str(url).startswith(f"{ISSUER}/protocol/openid-connect/auth?")
    assert q["response_type"] == "code" and q["client_id"] == "rcm-workbench"
    assert q["redirect_uri"] == f"{BASE}/auth/callback" and q["code_challenge_method"] == "S256"
    assert len(q["code_challenge"]) == 43 and q["state"] and q["nonce"] and "openid" in q["scope"]
    assert "__Host-rcm-wb-login=" in r.headers["set-cookie"]
    assert "form-action 'self' https://idp.test" in r.headers["content-security-policy"]


async def test_oidc_callbacks_that_do_not_belong_are_refused(oidc_client):
    r = await oidc_client.get("/auth/callback", params={"code": "c", "state": "s"})
    assert r.status_code == 400 and "not started in this browser" in r.text  # no sign-in cookie
    r = await oidc_client.get("/signin/oidc")
    state = dict(httpx.URL(r.headers["location"]).params)["state"]
    r = await oidc_client.get("/auth/callback", params={"code": "c", "state": "forged"})
    assert r.status_code == 400 and "does not belong to this browser" in r.text
    r = await oidc_client.get("/auth/callback", params={"code": "c", "state": state})
    assert r.status_code == 400 and "not started in this browser" in r.text  # one use only
    await oidc_client.get("/signin/oidc")
    r = await oidc_client.get("/auth/callback", params={"error": "access_denied"})
    assert r.status_code == 400 and "did not sign you in" in r.text
    r = await oidc_client.get("/signin/oidc")
    state = dict(httpx.URL(r.headers["location"]).params)["state"]
    r = await oidc_client.get("/auth/callback", params={"code": "c", "state": state})
    assert (
        r.status_code == 400 and "refused the authorization_code request (invalid_grant)" in r.text
    )
    assert "__Host-rcm-wb=" not in r.headers.get("set-cookie", "")
