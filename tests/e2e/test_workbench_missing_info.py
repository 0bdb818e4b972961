"""A biller releases a claim held for missing information in the workbench, in Debian's
chromium on the real stack.

An encounter is coded with a billing provider the EHR sent by name only (no NPI, EIN or
address): billing holds its claim naming those fields, followup opens a "missing information"
work item listing them. The biller finds it in the work list (filtered to that category),
opens it, is told by billing that a mistyped NPI fails its check digit, fills the fields and
sends them: billing rebuilds the claim and sends its 837, the item (which the biller took from
the list) is resolved saying so, and the claim page shows the claim's codes. And the dashboard's pipeline table shows each service's
`GET /ops/status`, equal to `rcm status`. Every page passes axe-core.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from shared.events import CodedProcedure, EncounterCoded, Organization
from shared.kafka import start_producer
from tests.e2e.test_workbench_support import (
    axe_check,
    launch_chromium,
    new_page,
    screenshot,
    sign_in_dev,
    start_workbench,
    stop_process,
)
from tests.integration.pipeline_support import RECENT, fetchval, wait_for
from tests.unit.billing.billing_support import coverage, make_coded

pytestmark = pytest.mark.e2e

SITE = "north-clinic"
# What the biller looks up and types in (the practice's real identifiers in production).
NPI, MISTYPED_NPI = "1245319599", "1245319598"  # the second fails the check digit
FIELDS = {
    "billing_provider.tax_id": "12-3456789",
    "billing_provider.address.line1": "100 Main St",
    "billing_provider.address.city": "Springfield",
    "billing_provider.address.state": "IL",
    "billing_provider.address.postal_code": "62701-1234",
}


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


async def _held_for_missing_information(pipeline) -> tuple[str, str, int]:
    """encounter.coded on its topic, as coding would publish it, with a billing provider known
    by name only; the encounter, its held claim and followup's work item."""
    encounter_id = f"E2E-MI-{uuid.uuid4().hex[:8].upper()}"
    payload = make_coded(
        encounter_id=encounter_id,
        site_id=SITE,
        service_date=RECENT,
        billing_provider=Organization(name="North Clinic"),
        coverages=[coverage(payer_id="AETNA1", payer_name="Aetna")],
        # an office visit and strapping (this payer wants a prior authorization for an x-ray)
        procedures=[
            CodedProcedure(code="99213", modifiers=["25"], diagnosis_pointers=[1, 2]),
            CodedProcedure(code="29540", diagnosis_pointers=[1]),
        ],
    )
    event = EncounterCoded(site_id=SITE, encounter_id=encounter_id, payload=payload)
    producer = await start_producer(pipeline.endpoints["kafka"])
    try:
        await (await producer.send(event.topic, event.to_json(), key=event.key()))
    finally:
        await producer.stop()
    claim_id = await wait_for(
        pipeline.dsn,
        "SELECT claim_id FROM billing.claim WHERE encounter_id = $1 AND status = 'held'",
        encounter_id,
        timeout=90,
    )
    work_item_id = await wait_for(
        pipeline.dsn,
        "SELECT work_item_id FROM followup.work_item WHERE claim_id = $1"
        " AND category = 'missing information' AND status = 'open'",
        claim_id,
        timeout=90,
    )
    return encounter_id, claim_id, work_item_id


def _outbound_837s(pipeline) -> str:
    root = Path(pipeline.settings.mailbox.outbound)
    return "".join(
        p.read_text(errors="replace") for p in root.rglob("*") if p.is_file() and "837" in p.name
    )


async def test_a_biller_fills_the_missing_fields_and_the_claim_is_sent(
    pipeline, workbench, chromium, run_dir
):
    encounter_id, claim_id, item = await _held_for_missing_information(pipeline)
    assert claim_id not in _outbound_837s(pipeline)

    page = await new_page(chromium, workbench)
    await sign_in_dev(page, "biller-north")
    # the work list, filtered to the category, lists the item; its link opens it
    await page.goto("/billing")
    await page.select_option('select[name="category"]', "missing information")
    await page.click("form.filters button[type=submit]")
    await page.wait_for_url(lambda url: "category=missing+information" in url)
    row = page.locator("table.worklist tbody tr", has_text=claim_id)
    assert "missing information" in await row.inner_text()
    await axe_check(page)
    await row.locator(f'a[href="/billing/items/{item}"]').click()
    await page.wait_for_url(f"**/billing/items/{item}")
    assert encounter_id not in page.url and claim_id not in page.url
    # picked from the list, not taken as "next": the biller takes it (a lease) to own it
    await page.click("#take-item")
    await page.wait_for_url(f"**/billing/items/{item}")
    assert await page.locator("#take-item").count() == 0
    assert (
        await fetchval(
            pipeline.dsn, "SELECT leased_by FROM followup.work_item WHERE work_item_id = $1", item
        )
        == "biller-north"
    )

    # the form asks for what billing named: the NPI, the EIN and the whole address
    form = page.locator("form.fill-form")
    names = await form.locator("input[data-field]").evaluate_all("els => els.map(e => e.name)")
    assert {"billing_provider.npi", *FIELDS} <= set(names), names
    await axe_check(page)
    for name, value in FIELDS.items():
        await form.locator(f'input[name="{name}"]').fill(value)
    # a mistyped NPI: billing's check digit refuses it, naming the field, not the value
    await form.locator('input[name="billing_provider.npi"]').fill(MISTYPED_NPI)
    await page.click("#fill-submit")
    problem = page.locator("#fill-result .notice.error")
    await problem.wait_for(timeout=30_000)
    text = await problem.inner_text()
    assert "billing_provider.npi" in text and "check digit" in text and MISTYPED_NPI not in text
    assert (
        await fetchval(
            pipeline.dsn, "SELECT status FROM billing.claim WHERE claim_id = $1", claim_id
        )
        == "held"
    )

    await form.locator('input[name="billing_provider.npi"]').fill(NPI)
    await screenshot(page, run_dir, "billing-missing-info")
    await page.click("#fill-submit")
    done = page.locator("#fill-result .notice.info")
    await done.wait_for(timeout=30_000)
    assert f"Released: claim {claim_id}" in await done.inner_text()
    await axe_check(page)

    # billing sent it; the item the biller held is resolved saying so; the audit names the
    # fields and not the values
    await wait_for(
        pipeline.dsn,
        "SELECT status FROM billing.claim WHERE claim_id = $1",
        claim_id,
        predicate=lambda s: s not in ("held", "created"),
        timeout=60,
    )
    await wait_for(
        pipeline.dsn,
        "SELECT status FROM followup.work_item WHERE work_item_id = $1",
        item,
        predicate=lambda s: s == "resolved",
        timeout=60,
    )
    # followup closes it on claim.submitted, with the reason, and the biller's lease ends
    resolved = await fetchval(
        pipeline.dsn,
        "SELECT (detail->>'resolution') || ' / lease of ' || (detail->>'lease_ended')"
        " FROM followup.work_audit WHERE work_item_id = $1 AND action = 'auto_resolve'",
        item,
    )
    assert resolved == "claim released and submitted / lease of biller-north"
    assert (
        await fetchval(
            pipeline.dsn, "SELECT lease_token FROM followup.work_item WHERE work_item_id = $1", item
        )
        is None
    )
    for _ in range(60):
        sent = _outbound_837s(pipeline)
        if claim_id in sent:
            break
        await page.wait_for_timeout(500)
    assert claim_id in sent and "REF*EI*123456789" in sent and NPI in sent
    audited = await fetchval(
        pipeline.dsn,
        "SELECT resource_ids FROM billing.audit_record WHERE actor = 'biller-north'"
        " AND resource_ids[1] = $1 AND action = 'update' ORDER BY seq DESC LIMIT 1",
        claim_id,
    )
    assert "filled=billing_provider.npi" in audited and NPI not in " ".join(audited)

    # the claim page: its codes, and the release in the timeline
    await page.goto(f"/billing/claims/{claim_id}")
    codes = await page.inner_text("#claim-diagnoses")
    assert "S93401A" in codes and "W010XXA" in codes
    assert "29540" in await page.inner_text("#claim-procedures")
    assert "837 sent" in await page.inner_text(".timeline")
    await axe_check(page)
    await page.context.close()


def _rcm_status(pipeline) -> dict:
    env = {
        **os.environ,
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


async def test_the_dashboards_pipeline_table_is_each_services_ops_status(
    pipeline, workbench, chromium
):
    """Dead letters and outbox backlog per service on the dashboard equal `rcm status`'s (each
    service's GET /ops/status reads its own schema as `rcm status` does)."""
    page = await new_page(chromium, workbench)
    await sign_in_dev(page, "supervisor-all")
    shown, status = {}, {}
    for _ in range(10):  # the services' figures are at most 5 s old; wait for a quiet moment
        before = await asyncio.to_thread(_rcm_status, pipeline)
        await page.goto("/dashboard")
        shown = {}
        for row in await page.locator("#ops tbody tr[data-service]").all():
            name = await row.get_attribute("data-service")
            shown[name] = {
                k: await row.locator(f'td[data-ops="{k}"]').inner_text()
                for k in ("dead_letters", "outbox_backlog", "pending_files")
            }
        after = await asyncio.to_thread(_rcm_status, pipeline)
        status = {
            name: {
                k: str(after["schemas"][name][k])
                for k in ("dead_letters", "outbox_backlog", "pending_files")
            }
            for name in shown
            if name in after["schemas"]  # `rcm status` reads each service's schema, intake's too
        }
        compared = {name: v for name, v in shown.items() if name in status}
        if before["schemas"] == after["schemas"] and compared == status:
            break
        await asyncio.sleep(3)
    assert set(shown) == {"intake", "coding", "billing", "payments", "followup"}
    assert {"intake", "coding", "billing", "payments", "followup"} <= set(status)
    assert compared == status
    lag = await page.locator(
        '#ops tr[data-service="billing"] td[data-ops="consumer_lag"]'
    ).inner_text()
    assert lag.isdigit()  # billing consumes: its group's lag, read from the broker
    assert (
        await page.locator('#ops tr[data-service="payments"] td[data-ops="inbound"]').inner_text()
        != "–"
    )
    await axe_check(page)
    await page.context.close()
