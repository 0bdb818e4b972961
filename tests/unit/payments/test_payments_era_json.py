"""era_to_json: the `rcm era FILE` contract shape."""

from __future__ import annotations

import json
from pathlib import Path

from services.payments.domain import era_to_json, parse_835

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "x12" / "835"


def render(rel: str) -> dict:
    out = era_to_json(parse_835((FIXTURES / rel).read_text()))
    json.dumps(out)  # must be JSON-serialisable as is
    return out


def test_managed_care_json():
    out = render("linuxforhealth/managed-care.835")
    assert out["payer"] == {"name": "RUSHMORE LIFE", "payer_id": None}
    assert out["payment"] == {
        "amount": "945.00",
        "credit_debit": "C",
        "method": "ACH",
        "trace_number": "7170066655",
        "originator": "1935665544",
        "date": None,
    }
    assert out["claims"][0] == {
        "st_control_number": "112233",
        "patient_control_number": "5554555444",
        "status_code": "1",
        "charge": "800.00",
        "paid": "450.00",
        "patient_responsibility": "300.00",
        "payer_claim_control_number": "94060555410000",
        "adjustments": [{"group": "CO", "reason": "A2", "amount": "50.00"}],
        "remarks": [],
        "service_lines": [
            {
                "code": "99211",
                "modifiers": [],
                "charge": "800.00",
                "paid": "500.00",
                "units": "1",
                "adjustments": [{"group": "PR", "reason": "1", "amount": "300.00"}],
                "remarks": [],
            }
        ],
    }
    assert out["provider_adjustments"] == []
    assert out["transactions"][0]["warnings"] == [
        "segment 4 (BPR): BPR16 is not a valid CCYYMMDD date"
    ]


def test_amounts_are_two_place_strings_and_no_phi():
    out = render("authored/reversal-corrected.835")
    rev = out["claims"][0]
    assert (rev["charge"], rev["paid"], rev["patient_responsibility"]) == (
        "-150.00",
        "-80.00",
        "-20.00",
    )
    assert out["payment"]["amount"] == "15.00" and out["payment"]["date"] == "2024-03-15"
    text = json.dumps(out)
    assert "TESTPATIENT" not in text and "MEM00001" not in text


def test_provider_adjustments():
    out = render("authored/plb-interest-recoupment.835")
    assert [(p["reason"], p["reference"], p["amount"]) for p in out["provider_adjustments"]] == [
        ("L6", "ICN8001", "-4.25"),
        ("WO", "ICN6001", "100.00"),
        ("FB", "FB0001", "25.00"),
    ]
    assert out["payer"]["payer_id"] == "60054"


def test_multi_transaction_file_first_payment_all_claims():
    out = render("authored/multi-st.835")
    assert out["payment"]["trace_number"] == "CHK2051"
    assert [(c["st_control_number"], c["patient_control_number"]) for c in out["claims"]] == [
        ("0001", "CLM5001"),
        ("0002", "CLM5002"),
    ]
    assert [
        (t["st_control_number"], t["payment"]["amount"], t["claim_count"])
        for t in out["transactions"]
    ] == [
        ("0001", "100.00", 1),
        ("0002", "50.00", 1),
    ]
    two = render("authored/two-interchanges.835")
    assert [t["interchange_control_number"] for t in two["transactions"]] == [
        "000000301",
        "000000302",
    ]
