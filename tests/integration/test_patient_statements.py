"""Patient statements after the payers and the patient (issue 21 items 3 and 4), payments and
followup running as processes on the real stack: a statement waits until the secondary payer
adjudicated; a patient payment taken by payments shows on the statement; a current payment
plan pauses dunning and a defaulted one resumes it, the plan's status printed."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal

import pytest

from services.followup.parties import account_key
from shared.events import Coverage
from tests.integration.patient_support import patient_owes, payments_call
from tests.integration.pipeline_support import wait_for
from tests.integration.test_followup_typical_journey import (
    coded,
    new_site,
    remitted,
    running_followup,
    submitted,
)

pytestmark = pytest.mark.integration
D = Decimal


@pytest.fixture(scope="module")
async def followup(settings, stack_endpoints):
    async with running_followup(settings, stack_endpoints, with_payments=True) as f:
        yield f


async def _statements(followup, as_of: date, account: str) -> tuple[list[dict], dict]:
    async with followup.client(user="lead", role="supervisor") as ops:
        r = await ops.post("/statements/run", params={"as_of": as_of.isoformat()})
    assert r.status_code == 200, r.text
    return [s for s in r.json()["issued"] if s["account_key"] == account], r.json()


def _pdf_text(followup, statement: dict) -> str:
    from pypdf import PdfReader

    pdf = PdfReader(followup.statements_dir / statement["file_name"])
    return "".join(p.extract_text() for p in pdf.pages)


async def test_the_statement_waits_for_the_secondary_payer(followup):
    site, mrn = new_site("cob-stmt"), f"M{uuid.uuid4().hex[:6]}"
    cid = f"C{uuid.uuid4().hex[:12].upper()}"
    encounter = f"E-{cid}"
    dos = date.today() - timedelta(days=20)
    enc = coded(site, encounter, dos, "MCARE1", mrn=mrn)
    two = enc.payload.encounter.model_copy(
        update={
            "coverages": [
                *enc.payload.encounter.coverages,
                Coverage(
                    payer_id="SUPP1",
                    payer_name="Supplement",
                    member_id="S7654321",
                    sequence="secondary",
                ),
            ]
        }
    )
    await followup.publish(
        enc.model_copy(update={"payload": enc.payload.model_copy(update={"encounter": two})}),
        submitted(site, cid, charge="150.00", dos=dos, mrn=mrn, payer_id="MCARE1"),
    )
    await wait_for(
        followup.dsn,
        "SELECT count(*) FROM followup.encounter_coverage WHERE encounter_id = $1",
        encounter,
        predicate=lambda n: n == 2,
    )
    await followup.publish(
        remitted(
            site,
            cid,
            charge="150.00",
            paid="80.00",
            pr="40.00",
            adjustments=[("CO", "45", "30.00"), ("PR", "1", "40.00")],
            payer_id="MCARE1",
        )
    )
    await wait_for(
        followup.dsn,
        "SELECT patient_balance FROM followup.claim WHERE claim_id = $1",
        cid,
        predicate=lambda v: v == D("40.00"),
    )
    account = account_key(site, mrn, "")
    mine, run = await _statements(followup, date.today(), account)
    assert mine == [] and run["waiting_next_payer"] >= 1  # the supplement has not adjudicated
    # The supplement pays 30.00 of the 40.00: the patient owes 10.00 and gets a statement.
    await followup.publish(
        remitted(
            site,
            cid,
            status="2",
            charge="150.00",
            paid="30.00",
            pr="10.00",
            adjustments=[("PR", "1", "10.00")],
            payer_id="SUPP1",
        )
    )
    await wait_for(
        followup.dsn,
        "SELECT count(*) FROM followup.encounter_adjudication WHERE encounter_id = $1",
        encounter,
        predicate=lambda n: n == 2,
    )
    [first], _ = await _statements(followup, date.today(), account)
    assert (first["cycle"], first["amount_due"]) == (0, "10.00")


async def test_payments_and_a_current_plan_pause_dunning_until_the_plan_defaults(followup):
    # The payer's 835 through payments' mailbox: 60.00 paid, 90.00 the patient's.
    owed = await patient_owes(followup, "plan-stmt", days_ago=25)
    site, mrn, cid, encounter = owed.site, owed.mrn, owed.claim_id, owed.encounter_id
    # The patient pays 30.00 at the desk (payments), which followup learns from payments.
    body = {
        "account": encounter,
        "amount": "30.00",
        "method": "check",
        "check_number": "2231",
        "allocations": [{"claim_id": cid, "amount": "30.00"}],
    }
    r = await payments_call(followup, "POST", "/patient-payments", site, json=body)
    assert r.status_code == 201, r.text
    await wait_for(
        followup.dsn,
        "SELECT payments_received FROM followup.patient_account WHERE encounter_id = $1",
        encounter,
        predicate=lambda v: v == D("30.00"),
    )
    account = account_key(site, mrn, "")
    today = date.today()
    [first], _ = await _statements(followup, today, account)
    assert (first["cycle"], first["amount_due"]) == (0, "60.00")
    text = _pdf_text(followup, first)
    assert "Amount due: $60.00" in text and "Your payments" in text and "-$30.00" in text
    # A plan of 20.00 a week for the 60.00: dunning pauses while it is current.
    plan = {
        "account": encounter,
        "instalment_amount": "20.00",
        "period": "weekly",
        "first_due_date": (today + timedelta(days=7)).isoformat(),
        "grace_days": 10,
    }
    r = await payments_call(followup, "POST", "/payment-plans", site, json=plan)
    assert r.status_code == 201 and r.json()["total"] == "60.00", r.text
    plan_id = r.json()["plan_id"]
    await wait_for(
        followup.dsn,
        "SELECT plan_status FROM followup.patient_account WHERE encounter_id = $1",
        encounter,
        predicate=lambda v: v == "active",
    )
    mine, run = await _statements(followup, today + timedelta(days=31), account)
    assert mine == [] and run["paused_by_plan"] >= 1
    # No instalment paid: past due + grace the review job defaults the plan; dunning resumes.
    r = await payments_call(
        followup,
        "POST",
        "/payment-plans/review",
        site,
        role="supervisor",
        params={"as_of": (today + timedelta(days=18)).isoformat()},
    )
    assert r.status_code == 200 and {c["plan_id"]: c["status"] for c in r.json()["changed"]} == {
        plan_id: "defaulted"
    }
    await wait_for(
        followup.dsn,
        "SELECT plan_status FROM followup.patient_account WHERE encounter_id = $1",
        encounter,
        predicate=lambda v: v == "defaulted",
    )
    [second], _ = await _statements(followup, today + timedelta(days=31), account)
    assert (second["cycle"], second["amount_due"]) == (1, "60.00")
    assert "Payment plan: defaulted" in _pdf_text(followup, second)


async def test_a_payer_naming_itself_otherwise_in_its_835_still_adjudicates_its_claim(followup):
    site, mrn = new_site("alias-stmt"), f"M{uuid.uuid4().hex[:6]}"
    cid = f"C{uuid.uuid4().hex[:12].upper()}"
    dos = date.today() - timedelta(days=20)
    await followup.publish(
        coded(site, f"E-{cid}", dos, "AETNA1", mrn=mrn),
        submitted(site, cid, charge="100.00", dos=dos, mrn=mrn, payer_id="AETNA1"),
    )
    await wait_for(
        followup.dsn,
        "SELECT count(*) FROM followup.encounter_coverage WHERE encounter_id = $1",
        f"E-{cid}",
    )
    await followup.publish(
        remitted(
            site,
            cid,
            charge="100.00",
            paid="75.00",
            pr="25.00",
            adjustments=[("PR", "2", "25.00")],
            payer_id="60054",  # the payer's id in its 835, not the one it was billed by
        )
    )
    await wait_for(
        followup.dsn,
        "SELECT patient_balance FROM followup.claim WHERE claim_id = $1",
        cid,
        predicate=lambda v: v == D("25.00"),
    )
    [first], _ = await _statements(followup, date.today(), account_key(site, mrn, ""))
    assert first["amount_due"] == "25.00"
