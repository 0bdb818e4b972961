"""The workbench in a real browser (Debian's chromium) on the real stack: the coder's journey to
a claim in billing, the biller's appeal and corrected claim, the dashboard against `rcm status`,
and refusals across sites and roles. Every page visited passes axe-core (no serious or
critical violation)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid

import httpx
import pytest

from rcm.simulation.samples import generate_samples
from services.coding.domain import engine
from services.intake.domain.fhir import parse_intake
from tests.e2e.test_workbench_support import (
    axe_check,
    launch_chromium,
    new_page,
    screenshot,
    sign_in_dev,
    start_workbench,
    stop_process,
)
from tests.integration.pipeline_support import RECENT, fetch, fetchval, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def workbench(pipeline):
    base, sp = start_workbench(pipeline, {"RCM_WORKBENCH_SIGN_IN": "dev"})
    yield base
    stop_process(pipeline, sp)


@pytest.fixture(scope="module")
async def chromium():
    pw, browser = await launch_chromium()
    yield browser
    await browser.close()
    await pw.stop()


def _samples(seed: int, site: str, n: int = 120):
    for s in generate_samples(n, seed=seed, start_date=RECENT):
        enc = parse_intake(s.bundle)
        if enc.site_id == site and enc.institutional is None:
            yield s, enc


async def _post(pipeline, bundles) -> None:
    token = pipeline.token("ehr-feed", "integration", ["*"])
    async with httpx.AsyncClient(
        base_url=pipeline.intake_url, headers={"authorization": f"Bearer {token}"}, timeout=30
    ) as client:
        for b in bundles:
            r = await client.post("/encounters", json=b)
            assert r.status_code in (200, 202), r.text


async def _drain_coding(pipeline, site: str) -> None:
    """Complete whatever an earlier test left queued for ``site``, so "next" is ours."""
    from rcm.cli.demo import review

    headers = {"authorization": f"Bearer {pipeline.token('drain', 'coder', [site])}"}
    async with httpx.AsyncClient(base_url=pipeline.coding_url, headers=headers, timeout=30) as c:
        for _ in range(200):
            r = await c.post("/work/next")
            if r.status_code == 204:
                return
            item = r.json()
            body = review(item, None)
            r = await c.post(f"/work/{item['work_item_id']}/complete", json=body)
            if r.status_code == 422:
                body["overrides"] = [
                    {"code": e["code"], "reason": "drained by a test"}
                    for e in r.json()["detail"]["edits"]
                ]
                await c.post(f"/work/{item['work_item_id']}/complete", json=body)


async def _queued_review(pipeline, encounter_id: str) -> int:
    await wait_for(
        pipeline.dsn,
        "SELECT status FROM coding.encounter WHERE encounter_id = $1",
        encounter_id,
        predicate=lambda v: v == "review",
    )
    return await wait_for(
        pipeline.dsn,
        "SELECT work_item_id FROM coding.work_item WHERE encounter_id = $1",
        encounter_id,
    )


async def test_coder_journey_until_the_claim_reaches_billing(
    pipeline, workbench, chromium, run_dir
):
    sample, enc = next(
        (s, e)
        for s, e in _samples(419, "north-clinic")
        if (r := engine.code_encounter(e)).route == "review"
        and len(r.diagnoses) >= 2
        and r.procedures
        and e.patient.gender == "M"
    )
    suggested = engine.code_encounter(enc)
    await _drain_coding(pipeline, "north-clinic")
    await _post(pipeline, [sample.bundle])
    await _queued_review(pipeline, enc.encounter_id)

    page = await new_page(chromium, workbench)
    await sign_in_dev(page, "coder-north")
    assert page.url.endswith("/coder")
    await axe_check(page)
    await screenshot(page, run_dir, "coder-queue")
    await page.keyboard.press("n")  # take the next item
    await page.wait_for_url("**/coder/items/*", timeout=30_000)
    assert enc.encounter_id in await page.inner_text("h1")
    await axe_check(page)

    # hovering a code lights its evidence in the note
    await page.hover('.code-row[data-ref="dx-0"]')
    assert await page.locator('mark.ev.lit[data-refs~="dx-0"]').count() > 0
    # ... and hovering evidence lights its codes
    await page.hover('mark.ev[data-refs~="dx-0"] >> nth=0')
    assert "lit" in (await page.get_attribute('.code-row[data-ref="dx-0"]', "class") or "")
    # decide with the keyboard: accept the first diagnosis, reject the second (wrong) one
    await page.mouse.move(0, 0)
    await page.keyboard.press("j")
    await page.keyboard.press("a")
    await page.keyboard.press("j")
    await page.keyboard.press("r")
    for _ in suggested.diagnoses[2:]:
        await page.keyboard.press("j")
        await page.keyboard.press("r")
    for _ in suggested.procedures:
        await page.keyboard.press("j")
        await page.keyboard.press("a")
    # search, then add codes (coding's search endpoint answers or says it is not offered)
    await page.keyboard.press("/")
    await page.keyboard.type("pneumonia")
    await page.wait_for_selector("#code-results :is(li, p)", timeout=10_000)
    for code in ("J189", "O80"):  # O80 on a male patient: a blocking sex edit to override
        await page.fill("#manual-code", code)
        await page.click("[data-add-manual]")
    await screenshot(page, run_dir, "coder-item")
    await page.keyboard.press("Control+Enter")
    override = page.locator('#outcome input[name="override:DX_SEX_CONFLICT"]')
    await override.wait_for(timeout=15_000)
    await axe_check(page)
    await screenshot(page, run_dir, "coder-override")
    await override.fill("Documented by the provider; payer notified")
    await page.keyboard.press("Control+Enter")
    await page.wait_for_url("**/coder?done=1", timeout=30_000)

    coded = await wait_for(
        pipeline.dsn,
        "SELECT coded FROM billing.claim WHERE encounter_id = $1 AND frequency_code = '1'",
        enc.encounter_id,
        timeout=90,
    )
    coded = json.loads(coded) if isinstance(coded, str) else coded
    assert [d["code"] for d in coded["diagnoses"]] == [suggested.diagnoses[0].code, "J189", "O80"]
    assert [p["code"] for p in coded["procedures"]] == [p.code for p in suggested.procedures]
    assert coded["coded_by"] == "coder-north"
    audit = await fetchval(
        pipeline.dsn,
        "SELECT reason FROM coding.coding_audit WHERE encounter_id = $1 AND action = 'complete'",
        enc.encounter_id,
    )
    assert "Documented by the provider" in audit
    await page.context.close()


async def test_cross_site_and_wrong_role_are_refused_in_the_browser(pipeline, workbench, chromium):
    sample, enc = next(
        (s, e)
        for s, e in _samples(421, "south-urgent-care")
        if engine.code_encounter(e).route == "review"
    )
    await _post(pipeline, [sample.bundle])
    south_item = await _queued_review(pipeline, enc.encounter_id)

    page = await new_page(chromium, workbench)
    await sign_in_dev(page, "coder-north")
    response = await page.goto(f"/coder/items/{south_item}")
    assert response.status == 403
    assert "belongs to another site" in await page.inner_text("main")
    assert enc.note[:40] not in await page.content()
    await axe_check(page)
    for path in ("/billing", "/dashboard"):
        response = await page.goto(path)
        assert response.status == 403, path
        assert "not open to your role" in await page.inner_text("main")
    nav = await page.locator("header nav a").all_inner_texts()
    assert nav == ["Coding"]
    await page.context.close()

    page = await new_page(chromium, workbench)
    await sign_in_dev(page, "biller-north")
    assert (await page.goto("/coder")).status == 403
    assert (await page.goto(f"/coder/items/{south_item}")).status == 403
    await page.context.close()


def _rcm_status(pipeline) -> dict:
    env = {
        **__import__("os").environ,
        "KAFKA_BOOTSTRAP_SERVERS": pipeline.endpoints["kafka"],
        "DATABASE_URL": pipeline.endpoints["postgres"],
    }
    out = subprocess.run(
        [sys.executable, "-m", "rcm.cli.main", "status", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


async def _dashboard_numbers(page, table: str) -> dict[str, int]:
    cells = page.locator(f"#{table} td[data-open]")
    return {
        await c.get_attribute("data-open"): int(await c.inner_text()) for c in await cells.all()
    }


async def test_supervisor_dashboard_matches_rcm_status(pipeline, workbench, chromium, run_dir):
    page = await new_page(chromium, workbench)
    await sign_in_dev(page, "supervisor-all")
    assert page.url.endswith("/dashboard")  # a supervisor lands on the dashboard
    assert await page.locator("header nav a").all_inner_texts() == [
        "Coding",
        "Billing",
        "Dashboard",
    ]
    for _ in range(10):
        before = await asyncio.to_thread(_rcm_status, pipeline)
        await page.goto("/dashboard")
        shown = {t: await _dashboard_numbers(page, t) for t in ("coding-queue", "followup-queue")}
        after = await asyncio.to_thread(_rcm_status, pipeline)
        status = {
            "coding-queue": after["schemas"]["coding"].get("work_queue_depth", {}),
            "followup-queue": after["schemas"]["followup"].get("work_queue_depth", {}),
        }
        if before["schemas"] == after["schemas"]:  # nothing moved while the page was read
            break
        await asyncio.sleep(2)
    assert shown == status
    await axe_check(page)
    await screenshot(page, run_dir, "dashboard")

    # an encounter's trace, from the span file the services write (`rcm trace`'s data)
    sample, enc = next(
        (s, e)
        for s, e in _samples(437, "south-urgent-care")
        if engine.code_encounter(e).route == "auto"
    )
    await _post(pipeline, [sample.bundle])
    encounter_id = enc.encounter_id
    await wait_for(
        pipeline.dsn,
        "SELECT 1 FROM billing.claim WHERE encounter_id = $1",
        encounter_id,
        timeout=90,
    )
    await page.fill("#trace-enc", encounter_id)
    await page.click("text=Show trace")
    await page.wait_for_url(f"**/traces/{encounter_id}")
    services: set[str] = set()
    for _ in range(30):  # spans reach the file in batches
        cells = await page.locator("table.trace tbody td:nth-child(2)").all_inner_texts()
        services = {c.removeprefix("rcm-") for c in cells}
        if {"intake", "coding", "billing"} <= services:
            break
        await asyncio.sleep(1)
        await page.reload()
    assert {"intake", "coding", "billing"} <= services
    await axe_check(page)
    await screenshot(page, run_dir, "trace")

    await page.click(".who button")  # sign out
    await page.wait_for_url("**/signed-out")
    await axe_check(page)
    await page.goto("/signin")
    await axe_check(page)  # the development sign-in page
    await page.context.close()


async def test_biller_appeal_then_corrected_claim(pipeline, workbench, chromium, run_dir):
    site = "north-clinic"
    bundles = [
        s.bundle for s, e in _samples(433, site, n=300) if engine.code_encounter(e).route == "auto"
    ][:40]
    await _post(pipeline, bundles)
    row = None
    for _ in range(120):
        rows = await fetch(
            pipeline.dsn,
            "SELECT w.work_item_id, w.category, w.claim_id FROM followup.work_item w"
            " JOIN followup.claim c USING (claim_id)"
            " WHERE w.site_id = $1 AND w.status = 'open' AND w.carc IS NOT NULL"
            " AND (w.deadline_date IS NULL OR w.deadline_date > current_date + 30)"
            " ORDER BY w.work_item_id",
            site,
        )
        if rows:
            row = rows[0]
            break
        await asyncio.sleep(1)
    assert row is not None, "no denial work item appeared"

    page = await new_page(chromium, workbench)
    await sign_in_dev(page, "biller-north")
    await axe_check(page)
    await screenshot(page, run_dir, "billing-lists")

    async def take(work_item_id: int) -> None:
        for _ in range(30):
            await page.goto("/billing")
            form = page.locator(
                f'form:has(input[name="category"][value="{row["category"]}"]):has(input[name="site"][value="{site}"])'
            )
            await form.locator("button").click()
            await page.wait_for_url("**/billing/items/*", timeout=15_000)
            if page.url.endswith(f"/billing/items/{work_item_id}"):
                return
        raise AssertionError("the denial never came up as next")

    async def act(action: str, **fields) -> str:
        await page.check(f'input[name="action"][value="{action}"]')
        for name, value in fields.items():
            if name == "outcome":
                await page.select_option('select[name="outcome"]', value)
            else:
                await page.fill(f'[name="{name}"]', value)
        await page.click("form.action-form button[type=submit]")
        await page.click("#confirm-action")
        result = page.locator("#action-result .notice")
        await result.wait_for()
        return await result.inner_text()

    await take(row["work_item_id"])
    await axe_check(page)
    letter = f"Appeal {uuid.uuid4().hex[:6]}: the service was medically necessary; notes attached."
    assert "Done: Appeal with a letter" in await act("appeal", letter=letter)
    await screenshot(page, run_dir, "billing-item")
    await page.goto(f"/billing/items/{row['work_item_id']}")
    assert "Done: Record the appeal decision" in await act(
        "appeal_outcome", reason="payer upheld the denial", outcome="upheld"
    )
    await take(row["work_item_id"])
    assert "Done: Send a corrected claim" in await act(
        "correct", reason="upheld appeal: corrected claim with the documentation"
    )
    corrected = await wait_for(
        pipeline.dsn,
        "SELECT claim_id FROM billing.claim WHERE original_claim_id = $1 AND frequency_code = '7'",
        row["claim_id"],
        timeout=60,
    )
    appeal_note = await fetchval(
        pipeline.dsn,
        "SELECT note FROM followup.appeal WHERE work_item_id = $1",
        row["work_item_id"],
    )
    assert appeal_note == letter
    await page.goto(f"/billing/claims/{row['claim_id']}")
    timeline = await page.inner_text(".timeline")
    assert "appeal level 1 filed" in timeline and "appeal upheld" in timeline
    await axe_check(page)
    await screenshot(page, run_dir, "claim")
    assert corrected
    await page.context.close()
