"""Payments on the real stack, the usual way: claims from claim.submitted, 835s through the mailbox.

Only payments runs (in-process, see ``payments_support``). Every test uses its own payer
id and claim ids; the books are checked after each test (``ledger_invariant``).
"""

from __future__ import annotations

import pytest

from shared.events import WriteOffRequested, WriteOffRequestedPayload
from tests.integration import payments_support as harness
from tests.integration.payments_support import (
    TODAY,
    Clp,
    D,
    Svc,
    era_835,
    new_id,
    submitted,
)

# The harness fixtures, made visible to this module.
payments = harness.payments
ledger_invariant = harness.ledger_invariant
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("ledger_invariant")]


async def _lines(payments, claim_id: str) -> dict[str, D]:
    rows = await payments.pool.fetch(
        "SELECT account, sum(amount) AS s FROM payments.journal_line WHERE claim_id = $1"
        " GROUP BY account",
        claim_id,
    )
    return {r["account"]: r["s"] for r in rows if r["s"] != 0}


async def test_835_posts_each_claim_to_the_cent_and_emits_one_event_each(payments):
    payer, trace = new_id("PY"), new_id("TRN")
    c1, c2, c3 = new_id("CL"), new_id("CL"), new_id("CL")
    two_lines = [Svc("99214", D("120.00"), D(0)), Svc("85025", D("80.00"), D(0))]
    await payments.register(
        submitted(c1, D("150.00"), payer_id=payer),
        submitted(c2, D("200.00"), payer_id=payer, lines=two_lines),
        submitted(c3, D("100.00"), payer_id=payer),
    )
    era = era_835(
        [
            Clp(
                c1,
                D("150.00"),
                D("95.00"),
                pr=D("20.00"),
                cas=[("CO", "45", D("35.00")), ("PR", "1", D("20.00"))],
            ),
            Clp(
                c2,
                D("200.00"),
                D("150.00"),
                pr=D("10.00"),
                lines=[
                    Svc(
                        "99214",
                        D("120.00"),
                        D("90.00"),
                        [("CO", "45", D("20.00")), ("PR", "2", D("10.00"))],
                    ),
                    Svc("85025", D("80.00"), D("60.00"), [("CO", "45", D("20.00"))]),
                ],
            ),
            Clp(c3, D("100.00"), D("0.00"), status="4", cas=[("CO", "50", D("100.00"))]),
        ],
        payer_id=payer,
        trace=trace,
    )
    assert await payments.drop(era) == "processed"

    assert await payments.balance(c1) == (D("0.00"), D("20.00"))
    assert await payments.balance(c2) == (D("0.00"), D("10.00"))
    assert await payments.balance(c3) == (
        D("100.00"),
        D("0.00"),
    )  # a denial stays with the payer for followup
    assert await _lines(payments, c1) == {
        "gross_charges": D("-150.00"),
        "cash_clearing": D("95.00"),
        "contractual_adjustment": D("35.00"),
        "patient_receivable": D("20.00"),
    }
    assert await _lines(payments, c2) == {
        "gross_charges": D("-200.00"),
        "cash_clearing": D("150.00"),
        "contractual_adjustment": D("40.00"),
        "patient_receivable": D("10.00"),
    }
    assert await _lines(payments, c3) == {
        "gross_charges": D("-100.00"),
        "payer_receivable": D("100.00"),
    }

    # Ledger-derived A/R for the payer: billed = paid + adjustments + open balance, claim by claim.
    rows = {b["claim_id"]: b for b in await payments.get("/balances", payer_id=payer)}
    assert set(rows) == {c1, c2, c3}
    for b in rows.values():
        assert D(b["billed"]) == D(b["paid"]) + D(b["contractual"]) + D(b["other_adjustments"]) + D(
            b["open_balance"]
        )
    assert [
        b["claim_id"] for b in await payments.get("/balances", payer_id=payer, open_only="true")
    ] == sorted([c1, c2, c3])
    assert await payments.get("/balances", site_id="SITE-NOBODY", payer_id=payer) == []

    events = await payments.wait_events([f"{payer}:{trace}:{k}" for k in (1, 2, 3)])
    assert all(len(v) == 1 for v in events.values())
    e1, e2, e3 = (v[0] for v in events.values())
    assert (e1.claim_id, e1.status_code, e1.paid, e1.patient_responsibility) == (
        c1,
        "1",
        D("95.00"),
        D("20.00"),
    )
    assert sorted((a.group, a.reason, a.amount) for a in e1.adjustments) == [
        ("CO", "45", D("35.00")),
        ("PR", "1", D("20.00")),
    ]
    assert (e2.paid, e2.patient_responsibility, len(e2.service_lines)) == (
        D("150.00"),
        D("10.00"),
        2,
    )
    assert sum(a.amount for a in e2.adjustments) == D("50.00")
    assert [sl.code for sl in e2.service_lines] == ["99214", "85025"]
    assert (e3.status_code, e3.paid, [(a.group, a.reason) for a in e3.adjustments]) == (
        "4",
        D("0.00"),
        [("CO", "50")],
    )
    assert (e1.trace_number, e1.payer_id, e1.payment_date) == (trace, payer, TODAY)


async def test_secondary_payment_posts_to_the_same_claim(payments):
    primary, secondary, claim = new_id("PY"), new_id("PY"), new_id("CL")
    await payments.register(submitted(claim, D("100.00"), payer_id=primary))
    await payments.drop(
        era_835(
            [
                Clp(
                    claim,
                    D("100.00"),
                    D("60.00"),
                    pr=D("20.00"),
                    cas=[("CO", "45", D("20.00")), ("PR", "1", D("20.00"))],
                )
            ],
            payer_id=primary,
            trace=new_id("TRN"),
        )
    )
    assert await payments.balance(claim) == (D("0.00"), D("20.00"))
    # The secondary pays 15 of the 20 crossed over; OA 23 is the primary's impact, 5 stays with the patient.
    trace = new_id("TRN")
    await payments.drop(
        era_835(
            [
                Clp(
                    claim,
                    D("100.00"),
                    D("15.00"),
                    status="2",
                    pr=D("5.00"),
                    cas=[("OA", "23", D("80.00")), ("PR", "1", D("5.00"))],
                )
            ],
            payer_id=secondary,
            trace=trace,
        )
    )
    assert await payments.balance(claim) == (D("0.00"), D("5.00"))
    assert [
        (r["status_code"], r["state"], r["paid"]) for r in await payments.payments_of(claim)
    ] == [("1", "posted", D("60.00")), ("2", "posted", D("15.00"))]
    (event,) = (await payments.wait_events([f"{secondary}:{trace}:1"]))[f"{secondary}:{trace}:1"]
    assert (event.claim_id, event.status_code, event.paid, event.patient_responsibility) == (
        claim,
        "2",
        D("15.00"),
        D("5.00"),
    )
    lines = await _lines(payments, claim)
    assert lines["cash_clearing"] == D("75.00") and "other_adjustment" not in lines


async def test_plb_interest_and_recoupment_post_at_provider_level_and_reconcile(payments):
    payer, trace, claim = new_id("PY"), new_id("TRN"), new_id("CL")
    await payments.register(submitted(claim, D("200.00"), payer_id=payer))
    era = era_835(
        [Clp(claim, D("200.00"), D("160.00"), cas=[("CO", "45", D("40.00"))])],
        payer_id=payer,
        trace=trace,
        plb=[("L6", f"ICN{claim}", D("-4.25")), ("WO", "ICN-OLD-1", D("100.00"))],
    )
    assert "BPR*I*64.25*C" in era
    assert await payments.drop(era) == "processed"
    plb = await payments.pool.fetch(
        "SELECT l.account, l.amount, l.claim_id FROM payments.journal_entry e JOIN payments.journal_line l"
        " USING (entry_id) WHERE e.kind = 'plb' AND e.payer_id = $1 ORDER BY e.source, l.amount",
        payer,
    )
    assert [(r["account"], r["amount"], r["claim_id"]) for r in plb] == [
        ("interest_income", D("-4.25"), None),
        ("cash_clearing", D("4.25"), None),
        ("cash_clearing", D("-100.00"), None),
        ("provider_adjustment", D("100.00"), None),
    ]
    assert await payments.balance(claim) == (D("0.00"), D("0.00"))
    (row,) = await payments.get("/reconciliation", payer_id=payer)
    assert (row["payment_date"], D(row["deposits"]), D(row["posted"]), D(row["difference"])) == (
        TODAY.isoformat(),
        D("64.25"),
        D("64.25"),
        D("0"),
    )
    assert D(row["unexplained"]) == 0 and row["advices"] == 1


async def test_writeoffs_post_up_to_the_open_balance_and_are_rejected_beyond(payments):
    payer, claim = new_id("PY"), new_id("CL")
    await payments.register(submitted(claim, D("100.00"), payer_id=payer))
    # Denied: the PR part moves to the patient, the rest stays with the payer for followup.
    await payments.drop(
        era_835(
            [
                Clp(
                    claim,
                    D("100.00"),
                    D("0.00"),
                    status="4",
                    pr=D("20.00"),
                    cas=[("CO", "50", D("80.00")), ("PR", "1", D("20.00"))],
                )
            ],
            payer_id=payer,
            trace=new_id("TRN"),
        )
    )
    assert await payments.balance(claim) == (D("80.00"), D("20.00"))

    def request(request_id: str, amount: str, claim_id: str = claim) -> WriteOffRequested:
        return WriteOffRequested(
            site_id="SITE-PAY",
            encounter_id=f"ENC-{claim_id}",
            payload=WriteOffRequestedPayload(
                request_id=request_id,
                claim_id=claim_id,
                amount=D(amount),
                reason="small balance",
                category="small_balance",
                requested_by="biller1",
            ),
        )

    ok, too_much, unknown = new_id("WO"), new_id("WO"), new_id("WO")
    # 85 takes the payer's 80 first, then 5 of the patient's 20; 50 is more than the 15 left.
    await payments.submit(
        request(ok, "85.00"),
        request(ok, "85.00"),
        request(too_much, "50.00"),
        request(unknown, "1.00", claim_id=new_id("CL")),
    )
    await payments.wait_until(
        "SELECT count(*) FROM payments.writeoff WHERE request_id = ANY($1)",
        [ok, too_much, unknown],
        predicate=lambda n: n == 3,
    )
    rows = {
        r["request_id"]: r
        for r in await payments.pool.fetch(
            "SELECT request_id, status, reason FROM payments.writeoff WHERE request_id = ANY($1)",
            [ok, too_much, unknown],
        )
    }
    assert rows[ok]["status"] == "posted"
    assert (
        rows[too_much]["status"] == "rejected"
        and "exceeds open balance 15.00" in rows[too_much]["reason"]
    )
    assert rows[unknown]["status"] == "rejected" and "not known" in rows[unknown]["reason"]
    assert await payments.balance(claim) == (D("0.00"), D("15.00"))
    lines = await _lines(payments, claim)
    assert (lines["other_adjustment"], lines["bad_debt_writeoff"]) == (D("80.00"), D("5.00"))
    entries = await payments.pool.fetchval(
        "SELECT count(*) FROM payments.journal_entry WHERE source LIKE $1", f"writeoff:{ok}:%"
    )
    assert entries == 2  # the repeated request posted nothing more
