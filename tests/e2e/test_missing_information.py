"""Issue 17, end to end: a Synthea bulk-export slice (a real Synthea patient of
google/fhir-data-pipes, its resources regrouped into one NDJSON file per type as `$export`
writes them, objects untouched) goes through `rcm import --url`, coding and billing. With no
registry entries for its organisation and payers, every claim is held on the unassigned site
and followup opens a "missing information" work item naming the fields. One group is taken
further by the EHR route (registries filled, the same encounters re-sent: a new document
version that moves them to their real site), the other by the biller route
(``PATCH /claims/{id}/billing-data``).

What the data cannot give stays held, as a billing department would see it: Synthea sends no
member id and its practitioners' NPIs (999...) fail the check digit, so after the EHR route a
biller still has those two fields to supply; and the visits date from 2010-2019, past every
payer's filing limit, so a claim with every field filled is held by the scrubber for timely
filing (TIMELY_FILING_EXCEEDED), never sent to the payer. The real inputs are not changed to
make them billable."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import FIXTURES
from tests.integration.pipeline_support import fetch, wait_for

pytestmark = pytest.mark.e2e

SYNTHEA = (
    FIXTURES
    / "realworld"
    / "fhir"
    / "google-fhir-data-pipes"
    / "Bob965_Keeling57_3f6fd0bb-6cd3-eb3f-4401-cd38ace25f2b.json"
)
# Office visits at the patient's primary-care organisation (PCP103937), by payer.
EHR_ROUTE = ["a929fb83-2f98-eebe-513f-484fe065c896", "0c339e08-27ff-970d-fdcc-a09106172cf6"]
BILLER_ROUTE = ["884e57f8-d976-4649-3426-fbb9985b56d1", "643674df-472f-68c3-b509-c3949665bcb9"]
SLICE = EHR_ROUTE + BILLER_ROUTE
SITE = "pcp103937"
SITE_BODY = {
    "name": "PCP103937",
    "npi": "1245319599",
    "tax_id": "123456789",
    "taxonomy": "207Q00000X",
    "address": {
        "line1": "1 Main St",
        "city": "Winchester",
        "state": "MA",
        "postal_code": "01890-1234",
    },
}
PAYER_BODY = {"name": "UnitedHealthcare", "filing_indicator": "CI", "self_pay": False}
BILLING_DATA = {
    "billing_provider": {
        "npi": "1245319599",
        "tax_id": "12-3456789",
        "address": {
            "line1": "1 Main St",
            "city": "Winchester",
            "state": "MA",
            "postal_code": "01890-1234",
        },
    },
    # Synthea's practitioner NPIs fail the check digit: the biller supplies the real one.
    "rendering_provider": {"npi": "1234567893"},
    "payer": {"payer_id": "ANTHEM1", "member_id": "W123456789"},
}


def export_slice(out: Path, encounters: list[str] = SLICE) -> dict[str, int]:
    """The slice's encounters, its patient and every resource naming one of them, one NDJSON
    file per resource type (each line one of the bundle's resource objects, unchanged)."""
    out.mkdir()
    by_type: dict[str, list[str]] = {}
    for entry in json.loads(SYNTHEA.read_bytes())["entry"]:
        res = entry["resource"]
        text = json.dumps(res)
        keep = res["resourceType"] == "Patient" or (
            res["id"] in encounters
            if res["resourceType"] == "Encounter"
            else any(f"urn:uuid:{e}" in text for e in encounters)
        )
        if keep:
            by_type.setdefault(res["resourceType"], []).append(text)
    for rtype, lines in by_type.items():
        (out / f"{rtype}.ndjson").write_text("\n".join(lines) + "\n")
    return {t: len(v) for t, v in by_type.items()}


def rcm_import(pipeline, directory: Path) -> dict:
    env = {**os.environ, "RCM_TOKEN_SECRET": pipeline.settings.auth.token_secret}
    r = subprocess.run(
        [sys.executable, "-m", "rcm.cli.main", "import", str(directory)]
        + ["--url", pipeline.intake_url, "--json"],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def client(pipeline, url: str, role: str, sites=("*",)) -> httpx.AsyncClient:
    token = pipeline.token(user=f"e2e-{role}", role=role, sites=sites)
    return httpx.AsyncClient(base_url=url, headers={"authorization": f"Bearer {token}"}, timeout=30)


async def code_waiting(pipeline, encounters: list[str], timeout: float = 60) -> None:
    """A coder finishes the slice's coder work items with the engine's suggestions (Synthea
    notes have no assessment: every encounter goes to review) until each encounter is coded
    at its latest document version."""
    deadline = time.monotonic() + timeout
    async with client(pipeline, pipeline.coding_url, "coder") as c:
        while time.monotonic() < deadline:
            pending = await fetch(
                pipeline.dsn,
                "SELECT count(*) AS n FROM coding.work_item"
                " WHERE encounter_id = ANY($1) AND status IN ('open', 'leased')",
                encounters,
            )
            r = await c.post("/work/next")
            if r.status_code == 204:
                if pending[0]["n"] == 0 and await _all_coded(pipeline, encounters):
                    return
                await asyncio.sleep(0.3)
                continue
            assert r.status_code == 200, r.text
            item = r.json()
            body = {
                "lease_token": item["lease_token"],
                "diagnoses": [d["code"] for d in item["suggestions"]["diagnoses"]],
                "procedures": [
                    {k: v for k, v in p.items() if k in ("code", "modifiers", "units")}
                    for p in item["suggestions"]["procedures"]
                ],
            }
            done = await c.post(f"/work/{item['work_item_id']}/complete", json=body)
            if done.status_code == 422:  # an edit the coder accepts: override with a reason
                body["overrides"] = [
                    {"code": e["code"], "reason": "reviewed: documentation supports it"}
                    for e in done.json()["detail"]["edits"]
                ]
                done = await c.post(f"/work/{item['work_item_id']}/complete", json=body)
            assert done.status_code == 200, done.text
    raise AssertionError(f"coding of {encounters} not finished in {timeout}s")


async def _all_coded(pipeline, encounters: list[str]) -> bool:
    rows = await fetch(
        pipeline.dsn,
        "SELECT count(*) AS n FROM coding.encounter WHERE encounter_id = ANY($1)"
        " AND status = 'coded'",
        encounters,
    )
    return rows[0]["n"] == len(encounters)


async def claims_of(pipeline, encounters: list[str]) -> dict[str, dict]:
    rows = await fetch(
        pipeline.dsn,
        "SELECT DISTINCT ON (encounter_id) encounter_id, claim_id, status FROM billing.claim"
        " WHERE encounter_id = ANY($1) AND frequency_code = '1' ORDER BY encounter_id, claim_id",
        encounters,
    )
    return {r["encounter_id"]: dict(r) for r in rows}


async def open_missing_items(pipeline, claim_ids: list[str]) -> list:
    return await fetch(
        pipeline.dsn,
        "SELECT work_item_id, claim_id, status FROM followup.work_item WHERE claim_id = ANY($1)"
        " AND category = 'missing information' AND status <> 'resolved' ORDER BY claim_id",
        claim_ids,
    )


def outbound_837s(pipeline) -> str:
    root = Path(pipeline.settings.mailbox.outbound)
    return "".join(
        p.read_text(errors="replace") for p in root.rglob("*") if p.is_file() and "837" in p.name
    )


_HELD: dict[str, dict] = {}


async def held_slice(pipeline, tmp_path) -> dict[str, dict]:
    """Steps 1 and 2 once per session: the slice imported, coded and held; its claims."""
    if _HELD:
        return _HELD
    followup_url = f"http://127.0.0.1:{pipeline.supervisor.by_name('followup')[0].http_port}"
    counts = export_slice(tmp_path / "export")
    assert counts["Encounter"] == len(SLICE) and counts["Patient"] == 1

    # 1. Intake, coding, billing: every encounter accepted, coded, its claim held.
    summary = rcm_import(pipeline, tmp_path / "export")
    assert summary["encounters"] == len(SLICE) and summary["accepted"] == len(SLICE), summary
    assert summary["rejected"] == 0 and summary["missing"], summary
    await code_waiting(pipeline, SLICE)
    await wait_for(
        pipeline.dsn,
        "SELECT count(*) FROM billing.claim WHERE encounter_id = ANY($1) AND status = 'held'",
        SLICE,
        predicate=lambda n: n == len(SLICE),
        timeout=60,
    )
    claims = await claims_of(pipeline, SLICE)
    claim_ids = [c["claim_id"] for c in claims.values()]

    # 2. Followup: one "missing information" item per claim, naming the fields, no values.
    await wait_for(
        pipeline.dsn,
        "SELECT count(*) FROM followup.work_item WHERE claim_id = ANY($1)"
        " AND category = 'missing information' AND status <> 'resolved'",
        claim_ids,
        predicate=lambda n: n == len(SLICE),
    )
    async with client(pipeline, followup_url, "biller") as f:
        for row in await open_missing_items(pipeline, claim_ids):
            r = await f.get(f"/work/{row['work_item_id']}")
            assert r.status_code == 200, r.text
            text = json.dumps(r.json())
            fields = r.json()["missing_fields"]
            assert {"billing_provider.tax_id", "billing_provider.npi"} <= set(fields), fields
            assert any(x.startswith("payer") for x in fields), fields
            assert "Bob965" not in text and "Keeling57" not in text
    for c in claims.values():
        assert c["claim_id"] not in outbound_837s(pipeline)
    _HELD.update(claims)
    return _HELD


async def latest_hold_reasons(pipeline, claim_id: str) -> list[str]:
    rows = await fetch(
        pipeline.dsn,
        "SELECT detail FROM billing.claim_history WHERE claim_id = $1 AND status = 'held'"
        " ORDER BY history_id DESC LIMIT 1",
        claim_id,
    )
    return [r["code"] for r in json.loads(rows[0]["detail"])["reasons"]]


async def open_items(pipeline, claim_id: str) -> list:
    return await fetch(
        pipeline.dsn,
        "SELECT category, label, site_id, evidence FROM followup.work_item WHERE claim_id = $1"
        " AND status <> 'resolved' ORDER BY work_item_id",
        claim_id,
    )


async def test_a_synthea_slice_missing_billing_data_is_held_with_work_items(pipeline, tmp_path):
    claims = await held_slice(pipeline, tmp_path)
    assert set(claims) == set(SLICE)


async def test_the_biller_fills_the_fields_and_only_timely_filing_holds_the_claims(
    pipeline, tmp_path
):
    """Every field the work item asked for is filled (the rendering NPI included): the claim is
    rebuilt and scrubbed again, and the one finding left is the filing limit (visits of 2010
    and 2013). The missing-information item is resolved; the biller's item is a timely-filing
    write-off naming the limit; nothing reaches the payer."""
    claims = await held_slice(pipeline, tmp_path)
    async with client(pipeline, pipeline.billing_url, "biller") as b:
        for eid in BILLER_ROUTE:
            r = await b.patch(f"/claims/{claims[eid]['claim_id']}/billing-data", json=BILLING_DATA)
            assert r.status_code == 200, r.text
            assert r.json()["status"] == "held", r.text
    for eid in BILLER_ROUTE:
        claim_id = claims[eid]["claim_id"]
        assert await latest_hold_reasons(pipeline, claim_id) == ["TIMELY_FILING_EXCEEDED"]
    await wait_for(
        pipeline.dsn,
        "SELECT count(*) FROM followup.work_item WHERE claim_id = ANY($1) AND status <> 'resolved'"
        " AND category = 'timely filing' AND action = 'write off' AND label LIKE '%filing limit%'",
        [claims[e]["claim_id"] for e in BILLER_ROUTE],
        predicate=lambda n: n == len(BILLER_ROUTE),
    )
    ids = [claims[e]["claim_id"] for e in BILLER_ROUTE]
    assert await open_missing_items(pipeline, ids) == []
    sent = outbound_837s(pipeline)
    assert not any(c in sent for c in ids)


async def test_the_ehr_resends_with_registries_filled_and_the_claims_move_to_their_site(
    pipeline, tmp_path
):
    """The re-sent encounters (first received on the unassigned site) move to their real site
    as document version 2; coding and billing follow: the claims are rebuilt under the site,
    and the biller's item now asks only for what neither the EHR nor the registries hold."""
    claims = await held_slice(pipeline, tmp_path)
    async with client(pipeline, pipeline.intake_url, "supervisor") as i:
        r = await i.put(f"/sites/{SITE}", json={**SITE_BODY, "providers": []})
        assert r.status_code == 200, r.text
        r = await i.put("/payers/UHC01", json=PAYER_BODY)
        assert r.status_code == 200, r.text
    ehr = tmp_path / "ehr"
    export_slice(ehr)
    for f in ehr.glob("*.ndjson"):  # only this group is re-sent
        lines = [
            line
            for line in f.read_text().splitlines()
            if json.loads(line)["resourceType"] == "Patient"
            or not any(e in line for e in BILLER_ROUTE)
        ]
        f.write_text("\n".join(lines) + "\n")
    again = rcm_import(pipeline, ehr)
    assert again["new_versions"] == len(EHR_ROUTE), again
    rows = await fetch(
        pipeline.dsn,
        "SELECT encounter_id, site_id, version FROM intake.encounter WHERE encounter_id = ANY($1)",
        EHR_ROUTE,
    )
    assert {(r["site_id"], r["version"]) for r in rows} == {(SITE, 2)}
    await code_waiting(pipeline, EHR_ROUTE)
    ids = [claims[e]["claim_id"] for e in EHR_ROUTE]
    await wait_for(
        pipeline.dsn,
        "SELECT count(*) FROM billing.claim WHERE claim_id = ANY($1) AND site_id = $2"
        " AND status = 'held' AND (coded->'encounter'->>'document_version')::int = 2",
        ids,
        SITE,
        predicate=lambda n: n == len(EHR_ROUTE),
        timeout=60,
    )
    await wait_for(
        pipeline.dsn,
        "SELECT count(*) FROM followup.work_item WHERE claim_id = ANY($1) AND site_id = $2"
        " AND category = 'missing information' AND status <> 'resolved'",
        ids,
        SITE,
        predicate=lambda n: n == len(EHR_ROUTE),
    )
    followup_sites = await fetch(
        pipeline.dsn, "SELECT site_id FROM followup.claim WHERE claim_id = ANY($1)", ids
    )
    assert [r["site_id"] for r in followup_sites] == [SITE] * len(EHR_ROUTE)
    for claim_id in ids:
        reasons = await latest_hold_reasons(pipeline, claim_id)
        assert "BILLING_TAX_ID_MISSING" not in reasons and "PAYER_ID_MISSING" not in reasons
        [item] = [w for w in await open_items(pipeline, claim_id)]
        assert json.loads(item["evidence"])["missing_fields"] == [
            "rendering_provider.npi",
            "payer.member_id",
        ]
    # A biller of the site (not of every site) now sees and fills them.
    async with client(pipeline, pipeline.billing_url, "biller", sites=(SITE,)) as b:
        for claim_id in ids:
            body = {"rendering_provider": {"npi": "1234567893"}, "payer": {"member_id": "U1"}}
            r = await b.patch(f"/claims/{claim_id}/billing-data", json=body)
            assert r.status_code == 200, r.text
            assert await latest_hold_reasons(pipeline, claim_id) == ["TIMELY_FILING_EXCEEDED"]
    await wait_for(
        pipeline.dsn,
        "SELECT count(*) FROM followup.work_item WHERE claim_id = ANY($1) AND site_id = $2"
        " AND status <> 'resolved' AND category = 'timely filing'",
        ids,
        SITE,
        predicate=lambda n: n == len(EHR_ROUTE),
    )
    assert await open_missing_items(pipeline, ids) == []
    sent = outbound_837s(pipeline)
    assert not any(c in sent for c in ids)
