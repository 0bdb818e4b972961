"""Ledger postings: every entry sums to zero, COB rules, PLB signs, reversals."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.payments.domain import parse_835
from services.payments.domain.ledger import (
    BAD_DEBT_WRITEOFF,
    CASH_CLEARING,
    CONTRACTUAL_ADJUSTMENT,
    GROSS_CHARGES,
    INTEREST_INCOME,
    OTHER_ADJUSTMENT,
    PATIENT_RECEIVABLE,
    PAYER_RECEIVABLE,
    PROVIDER_ADJUSTMENT,
    JournalLine,
    LedgerError,
    assert_balanced,
    claim_balance,
    entry_for_claim_charge,
    entry_for_claim_payment,
    entry_for_plb,
    entry_for_writeoff,
    reverse,
)
from services.payments.domain.remittance import Adjustment, ClaimPayment

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "x12" / "835"


def era(rel):
    return parse_835((FIXTURES / rel).read_text())


def as_dict(lines):
    return {ln.account: ln.amount for ln in lines}


def payment(status, charge, paid, adjustments, pcn="CLM1"):
    cp = ClaimPayment(pcn, status, D(charge), D(paid), None, "12")
    cp.adjustments = [Adjustment(g, r, D(a), None, "claim") for g, r, a in adjustments]
    return cp


def test_charge_entry():
    lines = entry_for_claim_charge("CLM1", "60054", D("125.5"))
    assert lines == [
        JournalLine(PAYER_RECEIVABLE, D("125.50"), "CLM1", "60054"),
        JournalLine(GROSS_CHARGES, D("-125.50"), "CLM1", "60054"),
    ]


def test_primary_payment_from_managed_care_sample():
    c1 = era("linuxforhealth/managed-care.835").transactions[0].claims[0]
    charge = entry_for_claim_charge("C1", "P", c1.charge)
    pay = entry_for_claim_payment(c1, "C1", "P")
    assert as_dict(pay) == {
        CASH_CLEARING: D("450.00"),
        CONTRACTUAL_ADJUSTMENT: D("50.00"),
        PATIENT_RECEIVABLE: D("300.00"),
        PAYER_RECEIVABLE: D("-800.00"),
    }
    assert sum(ln.amount for ln in pay) == 0
    assert claim_balance(charge + pay, "C1") == (D("0.00"), D("300.00"))


def test_secondary_payment_settles_the_crossed_over_patient_balance():
    # Primary left 615.00 to the patient; the secondary (sample claim 0001000053)
    # pays 310.00, writes off CO 85.00, keeps PR 220.00 with the patient and
    # does not re-post OA 23 (prior payer impact 136.50).
    secondary = era("linuxforhealth/secondary-payment.835").transactions[0].claims[1]
    primary = payment("1", "751.50", "100", [("CO", "45", "36.50"), ("PR", "1", "615")])
    lines = entry_for_claim_charge("C2", "P1", secondary.charge)
    lines += entry_for_claim_payment(primary, "C2", "P1")
    sec = entry_for_claim_payment(secondary, "C2", "P2")
    assert as_dict(sec) == {
        CASH_CLEARING: D("310.00"),
        CONTRACTUAL_ADJUSTMENT: D("85.00"),
        PATIENT_RECEIVABLE: D("-395.00"),
    }
    assert claim_balance(lines + sec, "C2") == (D("0.00"), D("220.00"))
    assert secondary.patient_responsibility == D("220.00")


def test_reversal_is_exact_negation_and_corrected_payment_reposts():
    rev, corrected = era("authored/reversal-corrected.835").transactions[0].claims
    original_cp = payment("1", "150", "80", [("CO", "45", "50"), ("PR", "1", "20")])
    lines = entry_for_claim_charge("CLM1001", "60054", D(150))
    original = entry_for_claim_payment(original_cp, "CLM1001", "60054")
    lines += original
    assert claim_balance(lines, "CLM1001") == (D(0), D(20))
    undo = entry_for_claim_payment(rev, "CLM1001", "60054", original=original)
    assert undo == reverse(original) == [ln._replace(amount=-ln.amount) for ln in original]
    # Without the original, the negative amounts give the same negation.
    assert sorted(entry_for_claim_payment(rev, "CLM1001", "60054")) == sorted(undo)
    lines += undo
    assert claim_balance(lines, "CLM1001") == (D(150), D(0))
    lines += entry_for_claim_payment(corrected, "CLM1001", "60054")
    assert claim_balance(lines, "CLM1001") == (D(0), D(20))
    assert sum(ln.amount for ln in lines if ln.account == CASH_CLEARING) == D(95)


def test_reversal_amount_must_match_original():
    original = entry_for_claim_payment(payment("1", "150", "80", [("CO", "45", "70")]), "C", "P")
    bad = payment("22", "-150", "-75", [("CO", "45", "-75")])
    with pytest.raises(LedgerError, match="reversal of claim C pays -75"):
        entry_for_claim_payment(bad, "C", "P", original=original)


def test_denial_keeps_balance_on_payer_and_moves_only_pr():
    c1, c2 = era("authored/denied-lq.835").transactions[0].claims
    assert entry_for_claim_payment(c1, "CLM4001", "P") == []
    assert as_dict(entry_for_claim_payment(c2, "CLM4002", "P")) == {
        PATIENT_RECEIVABLE: D(150),
        PAYER_RECEIVABLE: D(-150),
    }


def test_plb_signs_and_cash_equals_bpr02():
    tx = era("authored/plb-interest-recoupment.835").transactions[0]
    interest, recoup, forward = (entry_for_plb(a, "60054") for a in tx.provider_adjustments)
    assert as_dict(interest) == {CASH_CLEARING: D("4.25"), INTEREST_INCOME: D("-4.25")}
    assert as_dict(recoup) == {CASH_CLEARING: D(-100), PROVIDER_ADJUSTMENT: D(100)}
    assert as_dict(forward) == {CASH_CLEARING: D(-25), PROVIDER_ADJUSTMENT: D(25)}
    lines = interest + recoup + forward
    for cp in tx.claims:
        lines += entry_for_claim_charge(cp.patient_control_number, "60054", cp.charge)
        lines += entry_for_claim_payment(cp, cp.patient_control_number, "60054")
    assert sum(ln.amount for ln in lines if ln.account == CASH_CLEARING) == tx.payment.amount
    assert sum(ln.amount for ln in lines) == 0


def test_medicare_plb_cash_equals_bpr02():
    tx = era("linuxforhealth/medicare-part-a.835").transactions[0]
    lines = [ln for a in tx.provider_adjustments for ln in entry_for_plb(a, "999")]
    for cp in tx.claims:
        lines += entry_for_claim_payment(cp, cp.patient_control_number, "999")
    assert sum(ln.amount for ln in lines if ln.account == CASH_CLEARING) == D("150000.00")


def test_writeoffs():
    assert as_dict(entry_for_writeoff("C", D("12.3"), BAD_DEBT_WRITEOFF)) == {
        BAD_DEBT_WRITEOFF: D("12.30"),
        PATIENT_RECEIVABLE: D("-12.30"),
    }
    assert as_dict(entry_for_writeoff("C", D(5), OTHER_ADJUSTMENT)) == {
        OTHER_ADJUSTMENT: D(5),
        PAYER_RECEIVABLE: D(-5),
    }
    with pytest.raises(LedgerError, match="unknown ledger account"):
        entry_for_writeoff("C", D(5), "petty_cash")


def test_assert_balanced_raises():
    with pytest.raises(LedgerError, match="does not balance: debits - credits = 0.01"):
        assert_balanced(
            [
                JournalLine(CASH_CLEARING, D("10.01"), None, None),
                JournalLine(PAYER_RECEIVABLE, D("-10.00"), None, None),
            ]
        )
    assert_balanced([])


# --------------------------------------------------------------- property test

cents = st.integers(min_value=0, max_value=50_000).map(lambda c: D(c) / 100)
op = st.one_of(
    st.tuples(st.just("primary"), st.integers(0, 2), cents, cents, cents, cents),
    st.tuples(st.just("secondary"), st.integers(0, 2), cents, cents, cents),
    st.tuples(st.just("reverse"), st.integers(0, 2), st.integers(0, 20)),
    st.tuples(st.just("writeoff"), st.integers(0, 2), cents),
)


@settings(max_examples=150, deadline=None)
@given(charges=st.lists(cents, min_size=3, max_size=3), ops=st.lists(op, max_size=25))
def test_random_postings_keep_ledger_balanced(charges, ops):
    ids = ["A", "B", "C"]
    ledger: list[JournalLine] = []
    posted: dict[str, list] = {c: [] for c in ids}  # claim -> payment entries not yet reversed
    expected = {}  # claim -> [payer_due, patient_due], kept by a separate simple model
    for cid, charge in zip(ids, charges, strict=True):
        ledger += entry_for_claim_charge(cid, "P", charge)
        expected[cid] = [charge, D(0)]
    for kind, k, *vals in ops:
        cid = ids[k]
        if kind == "primary":
            paid, co, oa, pr = vals
            cp = payment(
                "1",
                paid + co + oa + pr,
                paid,
                [("CO", "45", co), ("OA", "94", oa), ("PR", "1", pr)],
            )
            entry = entry_for_claim_payment(cp, cid, "P")
            effect = (-(paid + co + oa + pr), pr)
        elif kind == "secondary":
            paid, co, pr = vals
            cp = payment(
                "2", paid + co + pr, paid, [("CO", "45", co), ("PR", "2", pr), ("OA", "23", D(7))]
            )
            entry = entry_for_claim_payment(cp, cid, "P2")
            effect = (D(0), -(paid + co))
        elif kind == "writeoff":
            entry = entry_for_writeoff(cid, vals[0], BAD_DEBT_WRITEOFF)
            effect = (D(0), -vals[0])
        else:
            if not posted[cid]:
                continue
            original, orig_effect = posted[cid].pop(vals[0] % len(posted[cid]))
            cash = sum((ln.amount for ln in original if ln.account == CASH_CLEARING), D(0))
            rev = payment("22", D(0), -cash, [])
            entry = entry_for_claim_payment(rev, cid, "P", original=original)
            effect = (-orig_effect[0], -orig_effect[1])
        assert sum(ln.amount for ln in entry) == 0
        if kind in ("primary", "secondary"):
            posted[cid].append((entry, effect))
        ledger += entry
        expected[cid][0] += effect[0]
        expected[cid][1] += effect[1]
    assert sum(ln.amount for ln in ledger) == 0
    for cid in ids:
        assert claim_balance(ledger, cid) == tuple(expected[cid])
        # payer_due + patient_due = charge - cash received - non-PR adjustments - write-offs
        removed = sum(
            ln.amount
            for ln in ledger
            if ln.claim_id == cid
            and ln.account not in (PAYER_RECEIVABLE, PATIENT_RECEIVABLE, GROSS_CHARGES)
        )
        assert sum(claim_balance(ledger, cid)) == charges[ids.index(cid)] - removed
