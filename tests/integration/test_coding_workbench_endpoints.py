"""What the workbench asks coding for: code search as a coder types, auto vs review per site and
day, lease renewal and the live edit check, against the running coding service."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from tests.integration.pipeline_support import wait_for
from tests.integration.test_coding_support import VAGUE, coder, native, post_to_intake

pytestmark = pytest.mark.integration


async def test_code_search_by_code_and_by_words_billable_first(pipeline):
    async with coder(pipeline, "coder-search", ["any-site"]) as c:

        async def search(q: str, **params) -> list[dict]:
            r = await c.get("/codes/search", params={"q": q, **params})
            assert r.status_code == 200, r.text
            return r.json()

        # By code prefix, dot or not, any case: billable codes first, in code order.
        hits = await search("e11.6", system="icd10cm", limit=5)
        assert [h["code"] for h in hits] == ["E11.610", "E11.618", "E11.620", "E11.621", "E11.622"]
        assert all(h["billable"] and h["system"] == "icd10cm" for h in hits)
        assert (await search("S93.401"))[0] == {
            "code": "S93.401A",
            "label": "Sprain of unspecified ligament of right ankle, initial encounter",
            "billable": True,
            "system": "icd10cm",
        }
        headers = [h for h in await search("E11", limit=100) if not h["billable"]]
        assert headers and (await search("E11", limit=100))[-len(headers) :] == headers
        # By words, the last one as far as typed; inclusion terms count.
        assert [h["code"] for h in await search("high blood press")] == ["I10"]
        assert (await search("ankle spra"))[0]["code"] == "S93.401A"
        assert (await search("gastro-esophageal reflux"))[0]["code"] == "K21.9"
        # CPT with rcm's own labels (never AMA descriptors), HCPCS from the bundled file.
        cpt = await search("office visit established", system="cpt")
        assert [h["code"] for h in cpt[:3]] == ["99211", "99212", "99213"]
        assert cpt[0]["label"] == "Office visit est pt lvl 1"
        assert (await search("99213", system="cpt"))[0]["code"] == "99213"
        assert (await search("methylprednisolone", system="hcpcs"))[0]["code"].startswith("J")
        assert await search("zzqqxx") == []
        # The workbench sends no system as an empty value.
        assert (await search("I10", system=""))[0]["code"] == "I10"
        r = await c.get("/codes/search", params={"q": "I10", "system": "snomed"})
        assert r.status_code == 422 and r.json()["detail"][0]["field"] == "query.system"
    async with coder(pipeline, "biller-search", ["any-site"], role="biller") as b:
        assert (await b.get("/codes/search", params={"q": "I10"})).status_code == 403


async def test_route_counts_per_site_and_day(pipeline):
    site = f"qa-routes-{uuid.uuid4().hex[:4]}"
    eids = [f"RT-{uuid.uuid4().hex[:10]}" for _ in range(2)]
    for eid in eids:
        await post_to_intake(pipeline, native(site, eid, VAGUE))
    await wait_for(
        pipeline.dsn,
        "SELECT count(*) FROM coding.encounter WHERE encounter_id = ANY($1)",
        eids,
        predicate=lambda n: n == 2,
    )
    today = datetime.now(UTC).date().isoformat()
    async with coder(pipeline, "lead-routes", [site], role="supervisor") as lead:
        r = await lead.get("/stats/routes", params={"days": 1})
        assert r.status_code == 200, r.text
        assert r.json() == {
            site: {"auto": 0, "review": 2, "days": {today: {"auto": 0, "review": 2}}}
        }
    async with coder(pipeline, "ops-routes", ["other-site"], role="ops") as ops:
        assert site not in (await ops.get("/stats/routes")).json()
    async with coder(pipeline, "coder-routes", [site]) as c:
        assert (await c.get("/stats/routes")).status_code == 403


async def test_lease_renewal_and_the_live_edit_check(pipeline):
    site = f"qa-renew-{uuid.uuid4().hex[:4]}"
    eid = f"RN-{uuid.uuid4().hex[:10]}"
    await post_to_intake(pipeline, native(site, eid, VAGUE))
    await wait_for(
        pipeline.dsn,
        "SELECT count(*) FROM coding.work_item WHERE encounter_id = $1 AND status = 'queued'",
        eid,
        predicate=lambda n: n == 1,
    )
    async with (
        coder(pipeline, "coder-renew", [site]) as c,
        coder(pipeline, "coder-other", [site]) as other,
    ):
        item = (await c.post("/work/next")).json()
        wid = item["work_item_id"]
        r = await c.post(f"/work/{wid}/renew", json={"lease_token": item["lease_token"]})
        assert r.status_code == 200, r.text
        assert r.json()["lease_expires_at"] >= item["lease_expires_at"]
        r = await other.post(f"/work/{wid}/renew", json={"lease_token": item["lease_token"]})
        assert r.status_code == 409
        # E11 is a header: the same blocking edit completion would raise, nothing stored.
        codes = {"diagnoses": ["E11"], "procedures": [{"code": "99213"}]}
        r = await c.post(f"/work/{wid}/validate", json=codes)
        assert r.status_code == 200, r.text
        assert any(e["severity"] == "blocking" for e in r.json()["edits"])
        complete = {**codes, "lease_token": item["lease_token"]}
        r = await c.post(f"/work/{wid}/complete", json=complete)
        assert r.status_code == 422
        assert {e["code"] for e in r.json()["detail"]["edits"]} <= {
            e["code"] for e in (await c.post(f"/work/{wid}/validate", json=codes)).json()["edits"]
        }
