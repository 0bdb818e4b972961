"""Patient estimates on the running pipeline (issue 21 item 2).

An encounter coded with an active coverage whose 271 benefits are on it (Coverage.eligibility)
is billed: billing stores its estimate when it builds the claim; the payer simulator adjudicates
the 837, payments posts the 835, and billing's GET then shows the estimate beside the patient
responsibility the 835 stated (the one payments posted). A self-pay encounter gets its Good
Faith Estimate; POST /estimates quotes services at a site. Over HTTP with real tokens.
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from types import SimpleNamespace

import httpx
import pytest

from services.billing.context import BillingContext
from services.billing.domain.payer_rules import load_sample_payer_rules
from services.billing.handlers import make_handler
from shared import icd10cm
from shared.events import CodedProcedure, EligibilitySummary, EncounterCoded, Organization
from shared.kafka import start_producer
from shared.messaging import Emitter
from tests.integration.billing_support import billing_rolled_back
from tests.integration.pipeline_support import RECENT, fetch, wait_for
from tests.integration.test_billing_submission import _coded
from tests.unit.billing.billing_support import coverage, make_coded

pytestmark = pytest.mark.integration
D = Decimal
SITE = "north-clinic"
# No imaging line: the sample payer rules hold one for a prior authorization (no 835 then).
OFFICE = [
    CodedProcedure(code="99213", diagnosis_pointers=[1, 2]),
    CodedProcedure(code="29540", modifiers=["RT"], diagnosis_pointers=[1]),
]


async def _publish(pipeline, *payloads) -> None:
    producer = await start_producer(pipeline.endpoints["kafka"])
    try:
        for p in payloads:
            event = EncounterCoded(
                site_id=p.encounter.site_id, encounter_id=p.encounter.encounter_id, payload=p
            )
            await producer.send_and_wait(event.topic, event.to_json(), key=event.key())
    finally:
        await producer.stop()


def _client(pipeline, role="biller", sites=(SITE,)) -> httpx.AsyncClient:
    token = pipeline.token(user=f"{role}-est", role=role, sites=list(sites))
    return httpx.AsyncClient(
        base_url=pipeline.billing_url, headers={"authorization": f"Bearer {token}"}, timeout=30
    )


async def test_the_estimate_then_the_payers_patient_responsibility(pipeline):
    run = uuid.uuid4().hex[:8].upper()
    insured_id, self_pay_id = f"EST-{run}-I", f"EST-{run}-S"
    benefits = EligibilitySummary(
        status="active",
        checked_on=RECENT,
        plan="GOLD PPO",
        coinsurance_percent=D("20"),
        deductible_remaining=D("40.00"),
        out_of_pocket_remaining=D("2500.00"),
    )
    insured = make_coded(
        encounter_id=insured_id,
        site_id=SITE,
        service_date=RECENT,
        procedures=OFFICE,
        coverages=[coverage(member_id=f"M{run}", eligibility=benefits)],
    )
    self_pay = make_coded(
        encounter_id=self_pay_id,
        site_id=SITE,
        service_date=RECENT,
        procedures=OFFICE,
        coverages=[],
    )
    await _publish(pipeline, insured, self_pay)
    await wait_for(
        pipeline.dsn,
        "SELECT count(*) FROM billing.patient_estimate WHERE encounter_id = ANY($1)",
        [insured_id, self_pay_id],
        predicate=lambda n: n == 2,
        timeout=60,
    )
    async with _client(pipeline) as c:
        first = (await c.get(f"/encounters/{insured_id}/estimate")).json()
    # 99213 125.00 + 29540 45.00 at north-clinic = 170.00; 40.00 deductible, then 20 % of 130.00
    est = first["estimate"]
    assert (est["basis"], est["total_charge"]) == ("deductible_coinsurance", "170.00")
    assert (est["deductible"], est["coinsurance"], est["patient_responsibility"]) == (
        "40.00",
        "26.00",
        "66.00",
    )
    assert [ln["code"] for ln in est["lines"]] == ["99213", "29540"]

    # The payer simulator answers the 837; payments posts its 835 and says what the patient owes.
    claim_id = first["claim_id"]
    posted = await wait_for(
        pipeline.dsn,
        "SELECT patient_responsibility FROM payments.claim_payment WHERE claim_id = $1"
        " AND state = 'posted'",
        claim_id,
        predicate=lambda v: v is not None,
        timeout=120,
    )
    await wait_for(
        pipeline.dsn,
        "SELECT count(*) FROM billing.remitted_patient_responsibility WHERE claim_id = $1",
        claim_id,
        predicate=lambda n: n >= 1,
        timeout=60,
    )
    async with _client(pipeline) as c:
        after = (await c.get(f"/encounters/{insured_id}/estimate")).json()
        other_site = await c.get(
            f"/encounters/{insured_id}/estimate",
            headers={
                "authorization": f"Bearer {pipeline.token(role='biller', sites=['elsewhere'])}"
            },
        )
        missing = await c.get(f"/encounters/EST-{run}-NONE/estimate")
        gfe = (await c.get(f"/encounters/{self_pay_id}/estimate")).json()
    assert after["estimate"] == est  # the estimate stays, for comparison
    assert after["source"] == "remittance" and after["actual"]["final"] is True
    assert D(after["actual"]["patient_responsibility"]) == posted
    assert after["patient_responsibility"] == after["actual"]["patient_responsibility"]
    assert [r["claim_id"] for r in after["actual"]["remittances"]] == [claim_id]
    assert other_site.status_code == 403 and missing.status_code == 404
    assert "M" + run not in other_site.text

    # Self-pay: the charges, and a Good Faith Estimate naming the patient and the provider.
    assert gfe["estimate"]["basis"] == "self_pay" and gfe["patient_responsibility"] == "170.00"
    doc = gfe["good_faith_estimate"]
    for needed in ("GOOD FAITH ESTIMATE", "99213", "29540-RT", "170.00", "$400 or more"):
        assert needed in doc, needed
    assert insured.encounter.patient.last_name in doc
    assert self_pay.encounter.billing_provider.npi in doc

    # Every read is in billing's audit trail, by encounter.
    audited = await fetch(
        pipeline.dsn,
        "SELECT count(*) AS n FROM billing.audit_record WHERE resource_type = 'estimate'"
        " AND $1 = ANY(resource_ids)",
        insured_id,
    )
    assert audited[0]["n"] >= 2


async def test_a_quote_for_services_at_a_site(pipeline):
    body = {
        "site_id": SITE,
        "services": [{"code": "99203"}, {"code": "17003", "units": "3"}, {"code": "J3420"}],
        "coverage": {"copay": "30.00", "out_of_pocket_remaining": "1000.00"},
    }
    async with _client(pipeline) as c:
        insured = await c.post("/estimates", json=body)
        self_pay = await c.post(
            "/estimates",
            json={
                "site_id": SITE,
                "services": body["services"],
                "self_pay": True,
                "service_date": date(2027, 1, 15).isoformat(),
                "patient": {"name": "Quinn Sample", "birth_date": "1990-04-05"},
            },
        )
        neither = await c.post("/estimates", json={"site_id": SITE, "services": body["services"]})
        bad = await c.post(
            "/estimates",
            json={**body, "services": [{"code": "99999X", "units": "-1"}], "patient": {"name": 5}},
        )
        elsewhere = await c.post("/estimates", json={**body, "site_id": "south-urgent-care"})
    async with _client(pipeline, role="coder") as c:
        coder = await c.post("/estimates", json=body)
    assert insured.status_code == 200, insured.text
    q = insured.json()
    # north-clinic: 99203 160.00, 17003 12.00 x 3, J3420 10.00
    assert (q["total_charge"], q["basis"], q["patient_responsibility"]) == (
        "206.00",
        "copay",
        "30.00",
    )
    assert q["payer_responsibility"] == "176.00" and "good_faith_estimate" not in q
    doc = self_pay.json()["good_faith_estimate"]
    assert "Quinn Sample" in doc and "1990-04-05" in doc and "2027-01-15" in doc and "206.00" in doc
    assert neither.status_code == 422 and "coverage" in neither.text
    assert bad.status_code == 422
    fields = {p["field"] for p in bad.json()["detail"]}
    assert {"services.0.code", "services.0.units", "patient.name"} <= fields
    assert "99999X" not in bad.text  # fields are named, values never echoed
    assert elsewhere.status_code == 403 and coder.status_code == 403


async def test_a_newer_document_version_replaces_the_estimate(stack_endpoints, tmp_path):
    """A held claim rebuilt from a re-sent encounter (release) carries the newer benefits."""
    icd10cm.load()
    ctx = BillingContext(outbound_dir=tmp_path, payer_rules=load_sample_payer_rules(), ncci=None)
    handle = make_handler(SimpleNamespace(context=ctx))
    enc = f"EST-{uuid.uuid4().hex[:8].upper()}-V"

    def version(n: int, copay: str, **kw):
        eligibility = EligibilitySummary(status="active", checked_on=RECENT, copay=D(copay))
        return make_coded(
            encounter_id=enc,
            service_date=RECENT,
            procedures=OFFICE,
            document_version=n,
            coverages=[coverage(eligibility=eligibility)],
            **kw,
        )

    held = version(1, "20.00", billing_provider=Organization(name="North Clinic"))  # no NPI
    async with billing_rolled_back(stack_endpoints["postgres"]) as conn:
        seen = []
        for coded in (held, version(2, "35.00")):
            await handle(conn, [_coded(coded)], Emitter("billing"))
            seen.append(
                await conn.fetchrow(
                    "SELECT e.basis, e.patient_responsibility, c.status"
                    " FROM billing.patient_estimate e JOIN billing.claim c USING (claim_id)"
                    " WHERE e.encounter_id = $1",
                    enc,
                )
            )
    assert [tuple(r) for r in seen] == [
        ("copay", D("20.00"), "held"),
        ("copay", D("35.00"), "submitted"),
    ]
