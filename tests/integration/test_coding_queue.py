"""The remote coder work queue: leasing races, lease expiry, site scoping, edits on completion, audit."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from tests.integration.pipeline_support import fetch, fetchval, wait_for
from tests.integration.test_coding_support import VAGUE, native

pytestmark = pytest.mark.integration


async def _queue(pipeline, site: str, n: int, note: str | None = None) -> list[str]:
    """n encounters the engine cannot code (no or vague documentation): each lands on the coder queue."""
    ids = [f"QA-{site}-{uuid.uuid4().hex[:8]}" for _ in range(n)]
    async with httpx.AsyncClient(
        base_url=pipeline.intake_url, headers=pipeline.intake_headers, timeout=30
    ) as client:
        for eid in ids:
            r = await client.post("/encounters", json=native(site, eid, note))
            assert r.status_code == 202, r.text
    await wait_for(
        pipeline.dsn,
        "SELECT count(*) FROM coding.work_item WHERE encounter_id = ANY($1) AND status = 'queued'",
        ids,
        predicate=lambda c: c == n,
    )
    return ids


def _client(pipeline, user: str, sites: list[str], role: str = "coder") -> httpx.AsyncClient:
    token = pipeline.token(user=user, role=role, sites=sites)
    return httpx.AsyncClient(
        base_url=pipeline.coding_url, headers={"authorization": f"Bearer {token}"}, timeout=30
    )


async def test_no_documentation_routes_to_review_with_an_edit(pipeline):
    [eid] = await _queue(pipeline, "qa-nodoc", 1)
    edits = await fetchval(
        pipeline.dsn, "SELECT edits::text FROM coding.encounter WHERE encounter_id = $1", eid
    )
    assert "documentation" in edits.lower()


async def test_two_coders_racing_never_get_the_same_item(pipeline):
    site = f"qa-race-{uuid.uuid4().hex[:4]}"
    ids = await _queue(pipeline, site, 12)
    leased: dict[str, list[int]] = {"a": [], "b": []}

    async def coder(name: str) -> None:
        async with _client(pipeline, f"coder-{name}", [site]) as c:
            while True:
                r = await c.post("/work/next")
                if r.status_code == 204:
                    return
                assert r.status_code == 200, r.text
                leased[name].append(r.json()["work_item_id"])

    await asyncio.gather(coder("a"), coder("b"))
    all_items = leased["a"] + leased["b"]
    assert len(all_items) == len(set(all_items)) == len(ids)
    owners = await fetch(
        pipeline.dsn,
        "SELECT leased_by, count(*) AS n FROM coding.work_item WHERE encounter_id = ANY($1)"
        " GROUP BY 1",
        ids,
    )
    assert {r["leased_by"]: r["n"] for r in owners} == {
        f"coder-{k}": len(v) for k, v in leased.items() if v
    }


async def test_expired_lease_returns_item_and_old_holder_cannot_complete(pipeline):
    site = f"qa-exp-{uuid.uuid4().hex[:4]}"
    [eid] = await _queue(pipeline, site, 1)
    async with (
        _client(pipeline, "slow-coder", [site]) as slow,
        _client(pipeline, "fast-coder", [site]) as fast,
    ):
        first = (await slow.post("/work/next")).json()
        assert (await fast.post("/work/next")).status_code == 204  # leased: not visible
        await fetchval(
            pipeline.dsn,
            "UPDATE coding.work_item SET lease_expires_at = now() - interval '1 second'"
            " WHERE work_item_id = $1 RETURNING 1",
            first["work_item_id"],
        )
        depth = (await fast.get("/work/depth")).json()
        assert depth[site]["queued"] == 1
        second = (await fast.post("/work/next")).json()
        assert (
            second["work_item_id"] == first["work_item_id"]
            and second["lease_token"] != first["lease_token"]
        )
        body = {
            "lease_token": first["lease_token"],
            "diagnoses": ["J069"],
            "procedures": [{"code": "99213"}],
        }
        r = await slow.post(f"/work/{first['work_item_id']}/complete", json=body)
        assert r.status_code == 409


async def test_coder_never_sees_another_sites_items(pipeline):
    site = f"qa-own-{uuid.uuid4().hex[:4]}"
    [eid] = await _queue(pipeline, site, 1)
    item_id = await fetchval(
        pipeline.dsn, "SELECT work_item_id FROM coding.work_item WHERE encounter_id = $1", eid
    )
    async with _client(pipeline, "other-coder", ["some-other-site"]) as other:
        assert (await other.get(f"/work/{item_id}")).status_code == 403
        r = await other.post(
            f"/work/{item_id}/complete",
            json={
                "lease_token": str(uuid.uuid4()),
                "diagnoses": ["J069"],
                "procedures": [{"code": "99213"}],
            },
        )
        assert r.status_code == 403
        assert site not in (await other.get("/work/depth")).json()
    async with httpx.AsyncClient(base_url=pipeline.coding_url) as anon:
        assert (await anon.post("/work/next")).status_code == 401


async def test_blocking_edits_refused_unless_overridden_then_coded_and_audited(pipeline):
    site = f"qa-edit-{uuid.uuid4().hex[:4]}"
    [eid] = await _queue(pipeline, site, 1, note=VAGUE)
    async with _client(pipeline, "coder-e", [site]) as c:
        item = (await c.post("/work/next")).json()
        # What the coder reviews: the documentation and what the engine made of it.
        assert (
            item["encounter_id"] == eid and item["site_id"] == site and item["status"] == "leased"
        )
        assert (
            item["note"] == item["encounter"]["note"] == VAGUE
            and item["encounter"]["encounter_id"] == eid
        )
        assert set(item["suggestions"]) >= {"diagnoses", "procedures"} and isinstance(
            item["edits"], list
        )
        assert (await c.get(f"/work/{item['work_item_id']}")).json() == item
        # E11 is a category header, not billable: a blocking edit.
        body = {
            "lease_token": item["lease_token"],
            "diagnoses": ["E11"],
            "procedures": [{"code": "99213"}],
        }
        r = await c.post(f"/work/{item['work_item_id']}/complete", json=body)
        assert r.status_code == 422
        codes = {e["code"] for e in r.json()["detail"]["edits"]}
        assert codes, r.json()
        # Fixing the code is accepted.
        body["diagnoses"] = ["E119"]
        r = await c.post(f"/work/{item['work_item_id']}/complete", json=body)
        assert r.status_code == 200, r.text
    row = (
        await fetch(
            pipeline.dsn,
            "SELECT status, coded_by, final_coding::text FROM coding.encounter WHERE encounter_id = $1",
            eid,
        )
    )[0]
    assert (
        row["status"] == "coded" and row["coded_by"] == "coder-e" and "E119" in row["final_coding"]
    )
    audit = await fetch(
        pipeline.dsn,
        "SELECT action, user_id, after::text FROM coding.coding_audit WHERE encounter_id = $1"
        " ORDER BY audit_id",
        eid,
    )
    assert [a["action"] for a in audit] == ["lease", "complete"] and "E119" in audit[1]["after"]
    # The coded encounter flows on: billing creates its claim.
    await wait_for(
        pipeline.dsn,
        "SELECT count(*) FROM billing.claim WHERE encounter_id = $1",
        eid,
        predicate=lambda n: n == 1,
    )


async def test_override_with_reason_lets_a_blocking_edit_through(pipeline):
    site = f"qa-ovr-{uuid.uuid4().hex[:4]}"
    [eid] = await _queue(pipeline, site, 1, note=VAGUE)
    async with _client(pipeline, "coder-o", [site]) as c:
        item = (await c.post("/work/next")).json()
        body = {
            "lease_token": item["lease_token"],
            "diagnoses": ["E11"],
            "procedures": [{"code": "99213"}],
        }
        r = await c.post(f"/work/{item['work_item_id']}/complete", json=body)
        body["overrides"] = [
            {"code": e["code"], "reason": "payer accepts header code per contract"}
            for e in r.json()["detail"]["edits"]
        ]
        r = await c.post(f"/work/{item['work_item_id']}/complete", json=body)
        assert r.status_code == 200, r.text
        assert set(r.json()["edits_overridden"]) == {o["code"] for o in body["overrides"]}
        stats = (await c.get("/coders/stats")).json()
    mine = next(s for s in stats if s["user_id"] == "coder-o")
    assert mine["completed"] == 1 and mine["changed_suggestions"] == 1
    reason = await fetchval(
        pipeline.dsn,
        "SELECT reason FROM coding.coding_audit WHERE encounter_id = $1 AND action = 'complete'",
        eid,
    )
    assert "payer accepts header code" in reason


async def test_a_long_poll_gets_the_item_queued_while_it_waits(pipeline):
    site = f"qa-wait-{uuid.uuid4().hex[:4]}"
    async with _client(pipeline, "coder-w", [site]) as c:
        waiting = asyncio.create_task(c.post("/work/next", params={"wait": 25}))
        await asyncio.sleep(0.5)
        assert not waiting.done()  # nothing queued for this site yet: the request waits
        eid = f"QA-{site}-{uuid.uuid4().hex[:8]}"
        async with httpx.AsyncClient(
            base_url=pipeline.intake_url, headers=pipeline.intake_headers, timeout=30
        ) as intake:
            r = await intake.post(
                "/encounters", json=native(site, eid, None)
            )  # no documentation: to the coder queue
        assert r.status_code == 202, r.text
        r = await asyncio.wait_for(waiting, 30)
        assert r.status_code == 200, r.text
        assert r.json()["encounter_id"] == eid and r.json()["lease_token"]
        assert (
            await c.post("/work/next", params={"wait": 0.5})
        ).status_code == 204  # leased: nothing more
        assert (
            await c.post("/work/next", params={"wait": 31})
        ).status_code == 422  # past the long-poll limit
