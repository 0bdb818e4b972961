"""The site, provider and payer registries on the real stack: loaded from CSV by the CLI,
read and replaced over HTTP, and used by the mapping for the next encounter."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid

import httpx
import pytest

from rcm.cli.intake_cmds import sample_registry_files
from rcm.simulation.samples import generate_samples
from services.intake.domain.systems import ENCOUNTER_SYSTEM, SITE_SYSTEM
from tests.integration.pipeline_support import RECENT

pytestmark = pytest.mark.integration


def rcm(pipeline, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DATABASE_URL": pipeline.dsn,
        "KAFKA_BOOTSTRAP_SERVERS": pipeline.endpoints["kafka"],
    }
    return subprocess.run(
        [sys.executable, "-m", "rcm.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def _client(pipeline, role: str = "supervisor", sites=("*",)) -> httpx.AsyncClient:
    token = pipeline.token(user=f"{role}-1", role=role, sites=list(sites))
    return httpx.AsyncClient(
        base_url=pipeline.intake_url, headers={"authorization": f"Bearer {token}"}, timeout=30
    )


async def test_the_cli_loads_the_sample_registries_and_the_api_serves_them(pipeline):
    files = sample_registry_files()
    r = await asyncio.to_thread(
        rcm, pipeline, "sites", "load", str(files["sites"]), "--providers", str(files["providers"])
    )
    assert r.returncode == 0, r.stderr
    assert "sites: 3 loaded, providers: 9 loaded" in r.stdout
    r = await asyncio.to_thread(rcm, pipeline, "payers", "load", str(files["payers"]))
    assert r.returncode == 0 and "payers: 7 loaded" in r.stdout, r.stderr
    async with _client(pipeline, "biller") as c:
        site = (await c.get("/sites/north-clinic")).json()
        assert site["npi"] == "1245873900" and site["tax_id"] == "814203377"
        assert site["address"]["postal_code"] == "432151407"
        assert {p["last_name"] for p in site["providers"]} == {"Marchetti", "Okafor", "Raman"}
        assert {s["site_id"] for s in (await c.get("/sites")).json()} >= {
            "north-clinic",
            "south-urgent-care",
            "east-hospital",
        }
        payers = {p["payer_id"]: p for p in (await c.get("/payers")).json()}
        assert payers["SELFPAY"]["self_pay"] is True
        assert payers["AETNA1"]["aliases"] == ["Aster Health"]
        assert (await c.get("/payers/MCR01")).json()["filing_indicator"] == "MB"
        assert (await c.get("/payers/NOPE")).status_code == 404
    async with _client(pipeline, "biller", sites=["north-clinic"]) as c:
        assert [s["site_id"] for s in (await c.get("/sites")).json()] == ["north-clinic"]
        assert (await c.get("/sites/east-hospital")).status_code == 403


async def test_a_bad_csv_is_refused_row_by_row_without_values(pipeline, tmp_path):
    bad = tmp_path / "sites.csv"
    bad.write_text(
        "site_id,name,npi,tax_id,address_line1,city,state,postal_code\n"
        "qa-x,Zqx Clinic,1234567890,ZQX,1 Main,Columbus,Zqxland,4321\n"
        ",Nameless,,,,,,\n"
    )
    r = await asyncio.to_thread(rcm, pipeline, "sites", "load", str(bad))
    assert r.returncode == 2
    for where in (
        "line 2.npi",
        "line 2.tax_id",
        "line 2.state",
        "line 2.postal_code",
        "line 3.site_id",
    ):
        assert where in r.stderr, r.stderr
    assert "Zqx" not in r.stderr and "Traceback" not in r.stderr


async def test_put_and_get_over_http_with_roles_and_sites(pipeline):
    site_id = f"qa-reg-{uuid.uuid4().hex[:6]}"
    body = {
        "name": "QA Registry Clinic",
        "npi": "1245873900",
        "tax_id": "81-4203377",
        "address": {
            "line1": "1 Main St",
            "city": "Columbus",
            "state": "Ohio",
            "postal_code": "43215-1407",
        },
        "providers": [{"npi": "1538204672", "first_name": "Elena", "last_name": "Marchetti"}],
    }
    async with httpx.AsyncClient(base_url=pipeline.intake_url) as anon:
        assert (await anon.put(f"/sites/{site_id}", json=body)).status_code == 401
        assert (await anon.get("/payers")).status_code == 401
    async with _client(pipeline, "coder") as c:
        assert (await c.put(f"/sites/{site_id}", json=body)).status_code == 403
    async with _client(pipeline, "supervisor", sites=["another-site"]) as c:
        assert (await c.put(f"/sites/{site_id}", json=body)).status_code == 403
    async with _client(pipeline, "supervisor", sites=[site_id]) as c:
        r = await c.put(f"/sites/{site_id}", json=body)
        assert r.status_code == 200, r.text
        stored = (await c.get(f"/sites/{site_id}")).json()
        assert stored["tax_id"] == "814203377" and stored["address"]["state"] == "OH"
        assert [p["npi"] for p in stored["providers"]] == ["1538204672"]
        # Replacing the site replaces its providers.
        r = await c.put(f"/sites/{site_id}", json={**body, "providers": []})
        assert r.status_code == 200 and r.json()["providers"] == []
        secret = "Zqx-secret-99"
        r = await c.put(
            f"/sites/{site_id}",
            json={**body, "npi": secret, "address": {**body["address"], "postal_code": secret}},
        )
        assert r.status_code == 422
        assert {p["path"] for p in r.json()["detail"]} == {"body.npi", "body.address.postal_code"}
        assert secret not in r.text
        assert (await c.put("/sites/bad id!", json=body)).status_code in (404, 422)
        r = await c.put(
            "/payers/QA-SELF", json={"name": "QA self-pay", "self_pay": True, "aliases": ["Cash"]}
        )
        assert r.status_code == 200 and r.json()["self_pay"] is True
        r = await c.put("/payers/QA-BAD", json={"name": "x", "filing_indicator": "Q9"})
        assert r.status_code == 422 and r.json()["detail"][0]["path"] == "body.filing_indicator"


async def test_the_registry_fills_what_the_ehr_left_out_and_a_resend_is_a_new_version(pipeline):
    """An EHR bundle whose organisation carries neither NPI nor EIN: accepted with both
    missing; once the site is in the registry, the same bundle again maps to an encounter
    with them: version 2."""
    site_id = f"qa-fill-{uuid.uuid4().hex[:6]}"
    sample = next(
        s
        for s in generate_samples(20, seed=5, start_date=RECENT)
        if s.encounter.institutional is None
    )
    bundle = sample.bundle
    for entry in bundle["entry"]:
        res = entry["resource"]
        idents = res.get("identifier", [])
        if res["resourceType"] == "Organization" and any(
            i["system"] == SITE_SYSTEM for i in idents
        ):
            res["identifier"] = [{"system": SITE_SYSTEM, "value": site_id}]
            res["name"] = f"QA Fill Clinic {site_id}"
        if res["resourceType"] == "Encounter":
            res["identifier"] = [{"system": ENCOUNTER_SYSTEM, "value": f"QA-{site_id}"}]
    async with httpx.AsyncClient(
        base_url=pipeline.intake_url, headers=pipeline.intake_headers, timeout=30
    ) as client:
        r1 = await client.post("/encounters", json=bundle)
        assert r1.status_code == 202, r1.text
        assert {"billing_provider.npi", "billing_provider.tax_id"} <= set(r1.json()["missing"])
        async with _client(pipeline, "supervisor", sites=[site_id]) as c:
            r = await c.put(
                f"/sites/{site_id}",
                json={"name": "QA Fill Clinic", "npi": "1245873900", "tax_id": "814203377"},
            )
            assert r.status_code == 200, r.text
        r2 = await client.post("/encounters", json=bundle)
        assert r2.status_code == 202, r2.text
        v2 = r2.json()
        assert v2["document_version"] == 2
        assert not {"billing_provider.npi", "billing_provider.tax_id"} & set(v2["missing"])
    assert v2["encounter_id"] == r1.json()["encounter_id"] == f"QA-{site_id}"
