from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from services.followup.domain.x12_277 import StatusDetail, parse_277, status_outcome
from shared.x12 import X12Error

FIXTURES = Path(__file__).parents[2] / "fixtures" / "x12" / "followup"
RESPONSE = (FIXTURES / "status_response.277").read_text()


def test_hand_written_277_is_valid_under_pyx12(pyx12_validate, tmp_path):
    ok, errors = pyx12_validate(RESPONSE, tmp_path)
    assert ok, errors


def test_parse_277_x212():
    out = parse_277(RESPONSE)
    assert [c.claim_id for c in out] == ["CLM001", "CLM002", "CLM003"]
    paid, denied, pending = out
    assert (paid.status_category, paid.status_code) == ("F1", "65")
    assert paid.effective_date == date(2024, 3, 10)
    assert paid.total_charge == Decimal("125.00") and paid.paid_amount == Decimal("100.00")
    assert paid.payer_claim_control_number == "PCN1234567"
    assert paid.patient_control_number == "CLM001"
    assert paid.adjudication_date == date(2024, 3, 8) and paid.check_number == "CHK12345"
    assert paid.service_date == date(2024, 1, 5)
    assert paid.version == "005010X212"
    # dependent-level claim; the STC of its service line is not the claim status
    assert (denied.status_category, denied.status_code) == ("F2", "88")
    assert denied.paid_amount == Decimal("0.00") and denied.payer_claim_control_number == "PCN99"
    assert denied.details == [StatusDetail("F2", "88")]
    assert (pending.status_category, pending.total_charge, pending.paid_amount) == (
        "P1",
        Decimal("210.00"),
        None,
    )


def test_parse_277ca_x214_real_samples():
    accepted = parse_277((FIXTURES / "imsweb" / "x12_277CA_accepted.txt").read_text())
    assert len(accepted) == 1
    a = accepted[0]
    assert (a.claim_id, a.status_category, a.status_code, a.action_code) == (
        "5781",
        "A2",
        "20",
        "WQ",
    )
    assert a.payer_claim_control_number == "1107000000014420" and a.version == "005010X214"
    # rejected sample uses '|' as the component separator
    (r,) = parse_277((FIXTURES / "imsweb" / "x12_277CA_rejected.txt").read_text())
    assert (r.claim_id, r.status_category, r.status_code) == ("3920394930203", "A7", "562")
    assert r.details == [StatusDetail("A7", "562", "85")]
    assert r.total_charge == Decimal("199.14")


def _mutate(old: str, new: str) -> str:
    assert old in RESPONSE
    return RESPONSE.replace(old, new, 1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_mutate("005010X212~\nST", "005010X221A1~\nST"), r"segment 2 \(GS\): GS08"),
        (_mutate("ST*277*", "ST*276*"), r"segment 3 \(ST\): ST01"),
        (_mutate("TRN*2*CLM001~", "TRN*2~"), r"segment 13 \(TRN\): claim trace number"),
        (_mutate("STC*F1:65*20240310", "STC*F1*20240310"), r"segment 14 \(STC\): STC01"),
        (
            _mutate("STC*F1:65*20240310", "STC*F1:65*20241310"),
            r"segment 14 \(STC\): STC02 is not a valid date",
        ),
        (_mutate("**125*100*", "**125*1O0*"), r"segment 14 \(STC\): STC05 is not a decimal amount"),
        ("not x12 at all", "no ISA segment"),
    ],
)
def test_bad_277_names_segment(text, message):
    with pytest.raises(X12Error, match=message):
        parse_277(text)


@pytest.mark.parametrize(
    ("category", "outcome"),
    [
        ("A1", "acknowledged"),
        ("A2", "acknowledged"),
        ("A3", "rejected"),
        ("A7", "rejected"),
        ("P1", "pending"),
        ("F1", "paid"),
        ("F2", "denied"),
        ("F3", "revised"),
        ("F4", "finalized"),
        ("R3", "information requested"),
        ("D0", "not found"),
        ("E1", "error"),
        ("", "unknown"),
        ("Z9", "unknown"),
    ],
)
def test_status_outcome(category, outcome):
    assert status_outcome(category) == outcome
