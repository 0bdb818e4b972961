from datetime import date, datetime
from decimal import Decimal

import pytest

from services.followup.domain.x12_276 import StatusInquiry, build_276
from shared.events import Organization, Person
from shared.x12 import split_segments

JANE = Person(first_name="Jane", last_name="Doe", birth_date=date(1980, 1, 2), gender="F")
KID = Person(first_name="Kid", last_name="Doe", birth_date=date(2015, 6, 7), gender="M")
CLINIC = Organization(name="Urgent Care West", npi="1234567893", tax_id="123456789")
OTHER = Organization(name="Urgent Care East", npi="1245319599")


def inquiries():
    return [
        StatusInquiry(
            "CLM001",
            "MCR01",
            "Medicare",
            CLINIC,
            JANE,
            "1EG4TE5MK72",
            date(2024, 1, 5),
            Decimal("125.00"),
        ),
        StatusInquiry(
            "CLM002",
            "MCR01",
            "Medicare",
            CLINIC,
            JANE,
            "W123",
            date(2024, 1, 6),
            Decimal("80.50"),
            patient=KID,
            payer_claim_control_number="PCN99",
            service_end_date=date(2024, 1, 8),
        ),
        StatusInquiry(
            "CLM003",
            "AETNA01",
            "Aetna",
            OTHER,
            JANE,
            "AET555",
            date(2024, 2, 1),
            Decimal("300"),
            bill_type="0131",
        ),
    ]


def build(items=None):
    return build_276(items or inquiries(), 42, 7, datetime(2024, 3, 1, 10, 30), sender_id="RCMSUB")


def test_276_is_valid_under_pyx12(pyx12_validate, tmp_path):
    ok, errors = pyx12_validate(build(), tmp_path)
    assert ok, errors


def test_validator_is_not_a_rubber_stamp(pyx12_validate, tmp_path):
    text = build()
    broken = text.replace("TRN*1*CLM001", "TRN*2*CLM001")  # 276 traces are type 1
    assert pyx12_validate(broken, tmp_path)[0] is False
    no_nm1 = text.replace("NM1*1P*2*URGENT CARE EAST*****XX*1245319599~", "")
    assert pyx12_validate(no_nm1, tmp_path)[0] is False


def test_276_segments():
    segs, _ = split_segments(build())
    ids = [s[0] for s in segs]
    assert segs[0][6].strip() == "RCMSUB" and segs[0][13] == "000000042"
    assert segs[1] == [
        "GS",
        "HR",
        "RCMSUB",
        "CLEARINGHOUSE",
        "20240301",
        "1030",
        "7",
        "X",
        "005010X212",
    ]
    assert segs[2] == ["ST", "276", "0001", "005010X212"]
    assert segs[3] == ["BHT", "0010", "13", "000000042", "20240301", "1030"]
    hl = [s for s in segs if s[0] == "HL"]
    assert [s[1:] for s in hl] == [
        ["1", "", "20", "1"],  # Medicare
        ["2", "1", "21", "1"],
        ["3", "2", "19", "1"],
        ["4", "3", "22", "0"],  # CLM001: subscriber is the patient
        ["5", "3", "22", "1"],  # CLM002: dependent follows
        ["6", "5", "23"],
        ["7", "", "20", "1"],  # Aetna
        ["8", "7", "21", "1"],
        ["9", "8", "19", "1"],
        ["10", "9", "22", "0"],
    ]
    assert ["NM1", "PR", "2", "MEDICARE", "", "", "", "", "PI", "MCR01"] in segs
    assert ["NM1", "41", "2", "RCMSUB", "", "", "", "", "46", "RCMSUB"] in segs
    assert ["NM1", "1P", "2", "URGENT CARE WEST", "", "", "", "", "XX", "1234567893"] in segs
    assert ["NM1", "IL", "1", "DOE", "JANE", "", "", "", "MI", "1EG4TE5MK72"] in segs
    assert ["NM1", "QC", "1", "DOE", "KID"] in segs
    assert ["DMG", "D8", "19800102", "F"] in segs
    assert ["DMG", "D8", "20150607", "M"] in segs
    assert [s[2] for s in segs if s[0] == "TRN"] == ["CLM001", "CLM002", "CLM003"]
    assert ["REF", "1K", "PCN99"] in segs and ["REF", "BLT", "131"] in segs
    assert [s[2] for s in segs if s[:2] == ["AMT", "T3"]] == ["125", "80.5", "300"]
    assert ["DTP", "472", "RD8", "20240106-20240108"] in segs
    se = segs[ids.index("SE")]
    assert se == ["SE", str(ids.index("SE") - ids.index("ST") + 1), "0001"]
    assert segs[-2] == ["GE", "1", "7"] and segs[-1] == ["IEA", "1", "000000042"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"claim_id": ""}, "inquiry 1: claim_id"),
        ({"member_id": ""}, r"inquiry 1 \(claim CLM001\): member_id"),
        ({"provider": Organization(name="X", npi="12345")}, "provider.npi"),
        ({"total_charge": Decimal("-1")}, "total_charge"),
        ({"service_end_date": date(2023, 1, 1)}, "service_end_date"),
    ],
)
def test_bad_inquiry_names_claim_and_field(change, message):
    base = inquiries()[0]
    fields = {f: getattr(base, f) for f in base.__dataclass_fields__}
    with pytest.raises(ValueError, match=message) as e:
        build([StatusInquiry(**{**fields, **change})])
    assert "DOE" not in str(e.value).upper() and "1EG4TE5MK72" not in str(e.value)


def test_no_inquiries():
    with pytest.raises(ValueError, match="no inquiries"):
        build_276([], 1, 1, datetime(2024, 3, 1))
