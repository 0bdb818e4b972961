"""Balancing checks: claim, line and transaction identities."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

from services.payments.domain import check_claim, check_era, check_transaction, parse_835
from services.payments.domain.remittance import Adjustment, ClaimPayment, ServiceLine

AUTHORED = Path(__file__).resolve().parents[2] / "fixtures" / "x12" / "835" / "authored"


def claim(charge, paid, claim_adj=(), lines=(), status="1"):
    cp = ClaimPayment("CLM9", status, D(charge), D(paid), None, "12")
    cp.adjustments = [Adjustment(g, r, D(a), None, "claim") for g, r, a in claim_adj]
    for lc, lp, adj in lines:
        sl = ServiceLine("HC", "99213", (), D(lc), D(lp))
        sl.adjustments = [Adjustment(g, r, D(a), None, "line") for g, r, a in adj]
        cp.service_lines.append(sl)
    return cp


def test_balanced_claim_with_claim_and_line_adjustments():
    cp = claim(
        "300",
        "200",
        [("CO", "45", "10")],
        [("300", "210", [("CO", "45", "60"), ("PR", "1", "30")])],
    )
    assert check_claim(cp, "0001") == []


def test_claim_imbalance_names_claim_and_amounts():
    cp = claim("300", "200", [("CO", "45", "20")])
    assert check_claim(cp, "0007") == [
        "transaction 0007 claim CLM9: charge 300 - paid 200 = 100 but claim and line adjustments total 20"
    ]


def test_line_imbalance_names_the_line():
    cp = claim(
        "100", "50", lines=[("60", "30", [("CO", "45", "30")]), ("40", "20", [("CO", "45", "10")])]
    )
    assert check_claim(cp, "0001") == [
        "transaction 0001 claim CLM9 line 2: charge 40 - paid 20 = 20 but line adjustments total 10",
        "transaction 0001 claim CLM9: charge 100 - paid 50 = 50 but claim and line adjustments total 40",
    ]


def test_reversal_with_negative_amounts_balances():
    cp = claim("-150", "-80", [("CO", "45", "-50"), ("PR", "1", "-20")], status="22")
    assert check_claim(cp) == []


def test_transaction_total_includes_plb():
    era = parse_835((AUTHORED / "plb-interest-recoupment.835").read_text())
    tx = era.transactions[0]
    assert check_transaction(tx) == []
    tx.payment.amount = D("160.00")  # as if the PLB had been ignored
    assert check_era(era) == [
        "transaction 0001: payment BPR02 160.00 != claims paid 160 - provider adjustments 120.75 = 39.25"
    ]


def test_debit_payment_is_negative():
    era = parse_835((AUTHORED / "reversal-corrected.835").read_text())
    tx = era.transactions[0]
    tx.claims.pop()  # only the reversal is left: the provider owes 80.00
    tx.payment.amount, tx.payment.credit_debit = D(80), "D"
    assert check_transaction(tx) == []
