"""`rcm demo` end to end on the session's stack: the report's sections beyond the primary payer
(eligibility, estimates, secondary/tertiary claims and crossovers, patient payments) are
present and carry what the demo's own data made happen."""

from __future__ import annotations

import asyncio
import json
from datetime import date, timedelta
from decimal import Decimal

import pytest

from rcm.cli.demo import run_demo
from rcm.simulation.samples import generate_samples, with_third_payer

pytestmark = pytest.mark.e2e

N, SEED = 40, 2101  # a seed no other test posts: 9 encounters with a next payer, 2 a third


def _totals(section: dict) -> dict:
    out: dict = {}
    for row in section.values():
        for k, v in row.items():
            out[k] = out.get(k, 0) + (Decimal(v) if isinstance(v, str) else v)
    return out


def test_the_demo_report_shows_eligibility_later_payers_and_patient_payments(settings, capsys):
    status = asyncio.run(run_demo(settings, n=N, seed=SEED, as_json=True, timeout=400))
    out, err = capsys.readouterr()
    assert status == 0, err[-3000:]
    data = json.loads(out)  # --json: the report alone on stdout
    samples = with_third_payer(
        generate_samples(N, SEED, start_date=date.today() - timedelta(days=35)), SEED
    )
    coverages = sum(len(s.encounter.coverages) for s in samples)
    with_next = sum(len(s.encounter.coverages) > 1 for s in samples)
    assert with_next >= 5 and any(len(s.encounter.coverages) == 3 for s in samples)

    # Every coverage of every sample was asked about with a 270 and judged.
    elig = _totals(data["eligibility"])
    assert elig["checked"] == coverages
    assert elig["active"] + elig["inactive"] + elig["unverified"] == coverages
    assert elig["active"] > coverages // 2
    assert elig["inquiries"] >= coverages

    # Estimates from the 271s' benefits, compared with what the 835s said.
    est = _totals(data["estimates"])
    assert est["made"] > 0 and est["remitted_count"] > 0
    assert est["estimated"] > 0

    # The primary claims with another coverage on file are those of the samples with one (a
    # claim held for eligibility still counts), and later payers were billed and paid.
    later = _totals(data["later_payers"])
    assert later["with_next_payer"] == with_next
    assert later["secondary"] > 0 and later["later_paid"] > 0
    assert later["later_paid_amount"] > 0
    assert later["secondary"] + later["crossovers"] <= with_next

    # Patients paid their statements through payments' API: one overpayment refunded, a plan.
    ar = _totals(data["patient_ar"])
    statements = sum(r["count"] for r in data["statements"])
    assert statements > 0
    assert ar["payments"] > 0 and ar["payments_amount"] > 0
    assert (ar["refunds"], ar["refunds_issued"], ar["refunded_amount"]) == (1, 1, Decimal("10"))
    assert ar["plans"] == 1 and ar["plans_active"] == 1
    assert ar["credit_balance"] == 0  # the overpayment went back

    # The printed report (stderr under --json) has the sections with these figures.
    for title in (
        "eligibility (270/271)",
        "patient estimates",
        "secondary and tertiary payers",
        "patient payments (patient A/R):",
    ):
        assert title in err
    total_rows = [line.split() for line in err.splitlines() if line.strip().startswith("total")]
    assert [str(elig["checked"]), str(elig["active"])] == total_rows[-4][1:3]
