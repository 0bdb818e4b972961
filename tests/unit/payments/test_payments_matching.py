"""Matching CLP claim payments to submitted claims."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D
from pathlib import Path

from services.payments.domain import parse_835
from services.payments.domain.matching import CandidateLine, ClaimCandidate, ClaimIndex, match_claim

AUTHORED = Path(__file__).resolve().parents[2] / "fixtures" / "x12" / "835" / "authored"
DOS = date(2024, 3, 3)
CLAIM = parse_835((AUTHORED / "claim-and-line-cas.835").read_text()).claims[0]
# What we billed for CLM3001: 99214 with 4 modifiers and 29530-LT (the payer paid it as 29540).
BILLED_LINES = (
    CandidateLine("29530", ("LT",), DOS),
    CandidateLine("99214", ("GT", "XS", "59", "25"), DOS),  # modifier order does not matter
)


def cand(claim_id, payer="60054", charge="500", lines=BILLED_LINES, icn=None):
    return ClaimCandidate(claim_id, payer, D(charge), lines, icn)


def test_exact_patient_control_number():
    assert match_claim(CLAIM, [cand("OTHER"), cand("CLM3001")]) == (
        "CLM3001",
        "patient_control_number",
    )


def test_payer_claim_control_number():
    assert match_claim(CLAIM, [cand("X1"), cand("X2", icn="ICN9001")]) == (
        "X2",
        "payer_claim_control_number",
    )


def test_service_lines_and_charge_of_the_same_payer():
    candidates = [
        cand("X1", charge="499"),
        cand("X2", lines=BILLED_LINES[:1]),
        cand("X3", payer="OTHERPAYER"),
        cand("X4"),
    ]
    assert match_claim(CLAIM, candidates, payer_id="60054") == ("X4", "service_lines")
    # Without a payer filter X3 fits as well: no guessing.
    assert match_claim(CLAIM, candidates) == (None, "ambiguous")


def test_wrong_date_or_code_does_not_match():
    other_day = tuple(CandidateLine(x.code, x.modifiers, date(2024, 3, 4)) for x in BILLED_LINES)
    paid_code = (CandidateLine("29540", ("LT",), DOS), BILLED_LINES[1])
    assert match_claim(CLAIM, [cand("X1", lines=other_day), cand("X2", lines=paid_code)]) == (
        None,
        "unmatched",
    )


def test_reversal_matches_on_the_positive_charge_and_index_is_reusable():
    rev = parse_835((AUTHORED / "reversal-corrected.835").read_text()).claims[1]
    rev.patient_control_number, rev.payer_claim_control_number = "UNKNOWN", None
    rev.charge = -rev.charge
    index = ClaimIndex(
        [cand("Z1", charge="150", lines=(CandidateLine("99213", (), date(2024, 3, 1)),))]
    )
    assert match_claim(rev, index) == ("Z1", "service_lines")
    assert match_claim(CLAIM, index) == (None, "unmatched")
