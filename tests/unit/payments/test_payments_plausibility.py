"""Plausible bounds of a claim payment (issue 18 item 6), on real sample data and the probes."""

from decimal import Decimal as D
from pathlib import Path

from services.payments.domain import parse_835
from services.payments.domain.plausibility import check_bounds

LFH = Path(__file__).resolve().parents[2] / "fixtures" / "x12" / "835" / "linuxforhealth"


def test_every_claim_payment_of_the_public_samples_is_plausible_against_its_own_charge():
    files = sorted(LFH.glob("*.835"))
    assert files
    for f in files:
        for cp in parse_835(f.read_text()).claims:
            assert check_bounds(cp, None) == [], f.name


def _probe(status: str, charge: str, paid: str):
    text = (LFH / sorted(p.name for p in LFH.glob("*.835"))[0]).read_text()
    (cp, *_) = parse_835(text).claims
    cp.status_code, cp.charge, cp.paid = status, D(charge), D(paid)
    return cp


def test_negative_on_an_original_and_above_billed_are_refused_a_reversal_is_not():
    (why,) = check_bounds(_probe("1", "100.00", "-500.00"), D("100.00"), "0001")
    assert why.startswith("transaction 0001 claim ") and "paid -500.00 is negative" in why
    (why,) = check_bounds(_probe("1", "9999999.99", "9999999.99"), D("100.00"))
    assert why.endswith("paid 9999999.99 exceeds billed charge 100.00")
    assert check_bounds(_probe("22", "-100.00", "-80.00"), D("100.00")) == []
    assert check_bounds(_probe("1", "100.00", "100.00"), D("100.00")) == []
