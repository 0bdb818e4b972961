"""read_837 on real-world samples (LinuxForHealth) and on rcm-shaped 837P/837I files."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from payer_sim_support import (
    INSTITUTIONAL_SAMPLES,
    LFH,
    PROFESSIONAL_SAMPLES,
    RCM_837I,
    RCM_837P,
)

from rcm.simulation.payer.domain.read_837 import read_837
from shared.x12 import X12Error

# file -> [(CLM01, CLM02, number of service lines)]
EXPECTED = {
    "demo.ambulance.example5.837": [("051068", "766.50", 4)],
    "demo.autoaccident.837": [("900000032", "185.00", 2)],
    "demo.cob.2ndary.example4.837": [("125WILL", "145.50", 1)],
    "demo.cob.example3.A.837": [("26407789", "79.04", 3)],
    "demo.cob.example3.B.837": [("26407789", "79.04", 3)],
    "demo.cob.example3.C.837": [("26407789", "79.04", 3)],
    "demo.cob.example4.837": [("101KEN6055", "120.00", 1)],
    "demo.drug.example10.1.837": [("CLMNO12345", "103.37", 2)],
    "demo.drug.example10.2.837": [("CLMNO12345", "2232.93", 6)],
    "demo.drug.example10.3.837": [("CLMNO12345", "2232.93", 6)],
    "demo.example1.837": [("26463774", "100.00", 4)],
    "demo.example11.837": [("ABC123-RI", "28.75", 2)],
    "demo.example12.837": [("TS234H3", "252.71", 1)],
    "demo.example2.837": [("26462967", "100.00", 4)],
    "demo.example6.837": [("125WILL", "145.50", 1)],
    "demo.example7.837": [("R03996273 #01", "520.24", 2)],
    "demo.example8.837": [("SMI123", "75.00", 1)],
    "demo.example9.837": [("153829140", "827.00", 1)],
    "institutional-claim.837i": [("756048Q", "89.93", 2)],
    "out-of-network-repriced-claim.837i": [("W392-49141", "14.84", 1)],
    "ppo-repriced-claim.837i": [("456DFH43", "237.50", 2)],
    "two-claims-single-provider.837i": [("756048Q", "89.95", 2), ("756049Q", "50.00", 1)],
}


@pytest.mark.parametrize("path", PROFESSIONAL_SAMPLES + INSTITUTIONAL_SAMPLES, ids=lambda p: p.name)
def test_reads_every_linuxforhealth_sample(path):
    sub = read_837(path.read_text())
    got = [(c.claim_id, str(c.total_charge), len(c.lines)) for c in sub.claims]
    assert got == EXPECTED[path.name]
    assert sub.interchange_control_number == "000000907"
    assert sub.group_control_number == "1"
    expected_type = "institutional" if path.suffix == ".837i" else "professional"
    for claim in sub.claims:
        assert claim.claim_type == expected_type
        assert claim.line_charge_total == claim.total_charge  # every sample balances
        assert claim.st_control_number == sub.transactions[0].control_number


def test_all_samples_are_covered():
    assert len(PROFESSIONAL_SAMPLES) == 18 and len(INSTITUTIONAL_SAMPLES) == 4
    assert (LFH / "LICENSE").exists()


def test_ambulance_sample_details():
    sub = read_837((LFH / "837_005010X222A2" / "demo.ambulance.example5.837").read_text())
    (claim,) = sub.claims
    assert sub.transactions[0].control_number == "000017712"
    assert sub.transactions[0].implementation == "005010X222A2"
    assert (claim.payer_id, claim.payer_name) == ("123245", "MEDICARE PART B")
    assert claim.billing_provider_npi == "2366554859"
    assert claim.billing_provider_tax_id == "376985369"
    assert claim.member_id == "012345678A"
    assert claim.filing_indicator == "MB" and claim.payer_sequence == "P"
    assert claim.place_of_service == "41" and claim.frequency_code == "1"
    assert claim.service_date == date(2005, 2, 8)
    assert claim.diagnoses == ("8628", "E8888", "9592", "8540")
    mileage = claim.lines[1]
    assert (mileage.code, mileage.modifiers, mileage.units) == ("A0425", ("RH",), Decimal("21.00"))
    assert mileage.charge == Decimal("8.20")


def test_payer_comes_from_2010bb_not_the_other_payer_loop():
    # example3.A carries a 2320/2330 other-subscriber block with its own NM1*IL and NM1*PR.
    sub = read_837((LFH / "837_005010X222A2" / "demo.cob.example3.B.837").read_text())
    (claim,) = sub.claims
    assert (claim.payer_id, claim.payer_name) == ("567890", "GREAT PRAIRIES HEALTH")
    assert claim.member_id == "222334444"  # 2010BA, not the 2330A JS00111223333
    assert claim.payer_sequence == "S"
    assert (claim.patient_last_name, claim.patient_first_name) == ("SMITH", "TED")
    assert (claim.subscriber_last_name, claim.subscriber_first_name) == ("SMITH", "JACK")


def test_declared_colon_but_written_greater_than_is_read_with_a_warning():
    sub = read_837((LFH / "837_005010X222A2" / "demo.example11.837").read_text())
    (claim,) = sub.claims
    assert [(ln.code, ln.modifiers) for ln in claim.lines] == [
        ("E0570", ("RR",)),
        ("A7003", ("NU",)),
    ]
    assert claim.diagnoses == ("496", "25000")
    assert any("component separator" in w for w in sub.warnings)


def test_drug_line_date_range_and_description_component():
    sub = read_837((LFH / "837_005010X222A2" / "demo.drug.example10.3.837").read_text())
    (claim,) = sub.claims
    assert (claim.service_date, claim.service_end_date) == (date(2004, 2, 1), date(2004, 2, 7))
    assert claim.lines[3].code == "J3490" and claim.lines[3].modifiers == ()
    assert claim.lines[1].units == Decimal("56.00")


def test_institutional_sample_revenue_codes_statement_and_diagnoses():
    sub = read_837((LFH / "837_005010X223A3" / "institutional-claim.837i").read_text())
    (claim,) = sub.claims
    assert [(ln.revenue_code, ln.code, ln.units) for ln in claim.lines] == [
        ("0305", "85025", Decimal("1.00")),
        ("0730", "93005", Decimal("3.00")),
    ]
    assert claim.service_date == date(1996, 9, 11)
    # occurrence (BH), value (BE) and condition (BG) codes are not diagnoses
    assert claim.diagnoses == ("3669", "4019", "79431")
    assert claim.facility_code == "14" and claim.type_of_bill == "0141"
    assert claim.place_of_service is None


def test_two_claims_in_one_transaction_keep_their_own_subscriber():
    sub = read_837((LFH / "837_005010X223A3" / "two-claims-single-provider.837i").read_text())
    first, second = sub.claims
    assert (first.member_id, second.member_id) == ("030005074", "123405074")
    assert (first.service_date, second.service_date) == (date(2005, 3, 15), date(2005, 4, 1))
    assert sub.transactions[0].claim_count == 2


def test_rcm_837p():
    sub = read_837(RCM_837P.read_text())
    assert sub.interchange_control_number == "000000731"
    assert (sub.sender_id, sub.receiver_id) == ("RCMSOUTHUC", "PAYERSIM")
    assert sub.version == "005010X222A1"
    (tx,) = sub.transactions
    assert (tx.control_number, tx.reference, tx.submitter_id) == ("0001", "RCM731", "RCMSOUTHUC")
    original, replacement = sub.claims
    assert original.claim_id == "ENC1001-1" and original.total_charge == Decimal("235.00")
    assert original.prior_authorization == "AUTH7788"
    assert original.diagnoses == ("S93401A", "W010XXA")
    assert [(ln.code, ln.modifiers, ln.line_control_number) for ln in original.lines] == [
        ("99213", ("25",), "ENC1001-1-1"),
        ("73610", ("RT",), "ENC1001-1-2"),
        ("29540", (), None),
    ]
    assert replacement.frequency_code == "7"
    assert replacement.payer_claim_control_number == "90000000000042"
    assert (replacement.payer_id, replacement.filing_indicator) == ("BCBSIL", "BL")
    assert (replacement.patient_first_name, replacement.subscriber_first_name) == (
        "MARY",
        "RICHARD",
    )


def test_rcm_837i():
    sub = read_837(RCM_837I.read_text())
    (claim,) = sub.claims
    assert claim.claim_type == "institutional" and claim.type_of_bill == "0131"
    assert claim.billing_provider_npi == "1760483390"
    assert claim.diagnoses == ("R0789", "I10")
    assert [ln.revenue_code for ln in claim.lines] == ["0450", "0300", "0320", "0730"]
    assert claim.total_charge == Decimal("808.00") == claim.line_charge_total


# --------------------------------------------------------------------------- malformed


def _broken(old: str, new: str) -> str:
    text = RCM_837P.read_text()
    assert old in text
    return text.replace(old, new, 1)


@pytest.mark.parametrize(
    ("old", "new", "segment", "segment_id", "words"),
    [
        ("CLM*ENC1001-1*235.00", "CLM*ENC1001-1*2X5.00", 21, "CLM", "CLM02"),
        ("SE*54*0001", "SE*53*0001", 56, "SE", "SE01"),
        ("DTP*472*D8*20250303", "DTP*472*D8*20251303", 28, "DTP", "D8 date"),
        ("NM1*PR*2*ACME HEALTH PLAN*****PI*ACME01~", "", 20, "CLM", "no payer"),
        ("LX*1~\nSV1*HC:99214", "SV1*HC:99214", 53, "SV1", "without a preceding LX"),
        ("GS*HC*", "GS*HP*", 2, "GS", "not HC"),
        ("IEA*1*000000731", "IEA*1*000000732", 58, "IEA", "IEA02"),
        ("HL*1**20*1", "HL*1**99*1", 8, "HL", "HL03"),
    ],
)
def test_malformed_input_names_the_segment(old, new, segment, segment_id, words):
    with pytest.raises(X12Error) as err:
        read_837(_broken(old, new))
    assert err.value.segment == segment
    assert err.value.segment_id == segment_id
    assert words in str(err.value)


def test_claim_without_lines_is_rejected_at_its_clm():
    text = _broken("LX*1~\nSV1*HC:99214*185.00*UN*1***1~\nDTP*472*D8*20250304~\n", "")
    with pytest.raises(X12Error, match="has no service lines") as err:
        read_837(text.replace("SE*54*0001", "SE*51*0001"))
    assert err.value.segment_id == "CLM"


def test_not_x12_at_all():
    with pytest.raises(X12Error) as err:
        read_837("hello, this is not an interchange")
    assert err.value.segment == 1


def test_errors_never_carry_phi():
    text = _broken("CLM*ENC1002-2*185.00", "CLM*ENC1002-2*DOE")
    with pytest.raises(X12Error) as err:
        read_837(text)
    message = str(err.value)
    for phi in ("ROE", "MARY", "RICHARD", "BCX900112233", "19520202"):
        assert phi not in message


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_damaged_files_raise_x12error_or_read(data):
    """Whatever a sender's file looks like, the reader either reads it or says where it broke."""
    text = RCM_837P.read_text()
    segs = text.split("~")
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(1, len(segs) - 1))
        action = data.draw(st.sampled_from(["drop", "dup", "truncate", "garble"]))
        if action == "drop":
            del segs[i]
        elif action == "dup":
            segs.insert(i, segs[i])
        elif action == "truncate":
            segs[i] = segs[i][: data.draw(st.integers(0, max(len(segs[i]) - 1, 0)))]
        else:
            segs[i] = segs[i].replace("*", data.draw(st.sampled_from(["**", "*X*", ":"])), 1)
    try:
        sub = read_837("~".join(segs))
    except X12Error as err:
        assert err.segment is None or err.segment >= 1
    else:
        assert all(c.lines for c in sub.claims)
