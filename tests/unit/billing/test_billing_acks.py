from decimal import Decimal

import pytest

from services.billing.domain.ack_codes import describe_277_status, describe_999_error
from services.billing.domain.acks import parse_277ca, parse_999
from services.billing.domain.chargemaster import load_sample_chargemaster
from services.billing.domain.claim import build_claim
from services.billing.domain.x12_837 import build_837
from shared.x12 import X12Error
from tests.unit.billing.billing_support import FIXTURES, make_coded

SAMPLES = FIXTURES / "imsweb"
ISA = "ISA*00*          *00*          *ZZ*CLEARINGHOUSE  *ZZ*RCMSUBMITTER   *240307*0900*^*00501*000000101*0*P*:~"


def test_imsweb_999_accepted():
    (ack,) = parse_999((SAMPLES / "x12_999_accepted.txt").read_text())
    assert (ack.st_control_number, ack.group_control_number, ack.status) == ("0001", "17456", "A")
    assert ack.accepted is True and ack.errors == [] and ack.transaction_set == "837"
    assert ack.message == "accepted"


def test_imsweb_999_rejected_has_segment_error_location():
    (ack,) = parse_999((SAMPLES / "x12_999_rejected.txt").read_text())
    assert (ack.st_control_number, ack.status, ack.accepted) == ("0028", "R", False)
    seg_err, tx_err = ack.errors
    assert (seg_err.level, seg_err.segment_id, seg_err.segment_position, seg_err.code) == (
        "segment",
        "NM",
        17,
        "1",
    )
    assert seg_err.message == "unrecognized segment id"
    assert (tx_err.level, tx_err.code, tx_err.message) == (
        "transaction",
        "5",
        "one or more segments in error",
    )


def test_imsweb_277ca_accepted_and_rejected():
    (ok,) = parse_277ca((SAMPLES / "x12_277CA_accepted.txt").read_text())
    assert (ok.claim_id, ok.accepted, ok.status_category, ok.status_codes) == (
        "5781",
        True,
        "A2",
        ["20"],
    )
    assert ok.payer_claim_control_number == "1107000000014420"
    assert ok.total_charge == Decimal("125")
    (bad,) = parse_277ca(
        (SAMPLES / "x12_277CA_rejected.txt").read_text()
    )  # "|" component separator
    assert (bad.claim_id, bad.accepted, bad.rejected) == ("3920394930203", False, True)
    assert (bad.status_category, bad.status_codes, bad.statuses[0].entity) == ("A7", ["562"], "85")
    assert bad.message == "rejected: information invalid: entity NPI (billing provider)"


def test_999_with_ik4_element_errors_maps_back_to_our_claim():
    coded = [make_coded(encounter_id=f"E{i}") for i in range(3)]
    cm = load_sample_chargemaster("north-clinic")
    claims = [build_claim(c, claim_id=f"C-{i}", chargemaster=cm) for i, c in enumerate(coded)]
    from datetime import datetime

    batch = build_837(
        claims,
        interchange_control_number=100,
        group_control_number=55,
        created_at=datetime(2024, 3, 6, 9, 0),
    )
    # Position of the second claim's CLM inside ST 0001 (ST = 1).
    lines = batch.text.split("~")
    st = next(i for i, x in enumerate(lines) if x.startswith("ST*"))
    clm = next(i for i, x in enumerate(lines) if x.startswith("CLM*C-1*")) - st + 1
    text = (
        ISA + "GS*FA*CLEARINGHOUSE*RCMSUBMITTER*20240307*0900*101*X*005010X231A1~"
        "ST*999*0001*005010X231A1~AK1*HC*55*005010X222A1~"
        f"AK2*837*0001*005010X222A1~IK3*CLM*{clm}*2300*8~CTX*CLM01:C-1~IK4*2*782*7*ABC~"
        "IK4*5:3*1331*I12~IK5*R*I5~"
        "AK2*837*0002*005010X222A1~IK5*E~AK9*P*2*2*1~SE*12*0001~GE*1*101~IEA*1*000000101~"
    )
    first, second = parse_999(text)
    assert (first.st_control_number, first.group_control_number, first.accepted) == (
        "0001",
        "55",
        False,
    )
    seg, el1, el2, tx = first.errors
    assert (seg.segment_id, seg.segment_position, seg.loop_id, seg.code) == (
        "CLM",
        clm,
        "2300",
        "8",
    )
    assert batch.claim_at(first.st_control_number, seg.segment_position) == "C-1"
    assert (el1.element_position, el1.element_reference, el1.code, el1.bad_value) == (
        2,
        "782",
        "7",
        "ABC",
    )
    assert el1.message == "invalid code value" and el1.segment_position == clm
    assert (el2.element_position, el2.component_position, el2.code) == (5, 3, "I12")
    assert tx.code == "I5"
    assert (second.st_control_number, second.status, second.accepted) == ("0002", "E", True)


GS277 = "GS*HN*CLEARINGHOUSE*RCMSUBMITTER*20240307*0900*9*X*005010X214~ST*277*0001*005010X214~"
HDR277 = (
    "BHT*0085*08*B1*20240307*0900*TH~HL*1**20*1~NM1*PR*2*PAYER*****PI*P1~TRN*1*T1~"
    "DTP*050*D8*20240307~DTP*009*D8*20240307~HL*2*1*21*1~NM1*41*2*RCM*****46*RCMSUBMITTER~"
    "TRN*2*55~STC*A1:19*20240307*WQ*500~QTY*90*2~QTY*AA*1~"
)


def test_277ca_several_claims_line_statuses_and_provider_rejection():
    text = (
        ISA
        + GS277
        + HDR277
        + (
            "HL*3*2*19*1~NM1*85*2*NORTH*****XX*1234567893~TRN*1*0~STC*A1:19:85*20240307*WQ~"
            "HL*4*3*PT~NM1*QC*1*DOE*JANE****MI*W1~TRN*2*C-1~STC*A2:20*20240307*WQ*255~"
            "REF*1K*PAYER-CCN-1~REF*D9*TRACE1~DTP*472*RD8*20240305-20240305~"
            "SVC*HC:99213*125~STC*A7:454*20240307*U~REF*FJ*1~"
            "HL*5*3*PT~NM1*QC*1*ROE*RAY****MI*W2~TRN*2*C-2~STC*A7:33:IL*20240307*U*90******A6:21:QC~"
            "HL*6*2*19*1~NM1*85*2*SOUTH*****XX*1245319599~TRN*1*0~STC*A3:562:85*20240307*U~"
            "HL*7*6*PT~NM1*QC*1*POE*PAT****MI*W3~TRN*2*C-3~STC*A1:19*20240307*WQ*155~"
            "SE*40*0001~GE*1*9~IEA*1*000000101~"
        )
    )
    a, b, c = parse_277ca(text)
    assert (a.claim_id, a.accepted, a.status_codes, a.payer_claim_control_number) == (
        "C-1",
        True,
        ["20"],
        "PAYER-CCN-1",
    )
    assert a.clearinghouse_trace == "TRACE1" and a.total_charge == Decimal("255")
    assert (b.claim_id, b.accepted, b.status_category) == ("C-2", False, "A7")
    assert [(s.category, s.code, s.entity) for s in b.statuses] == [
        ("A7", "33", "IL"),
        ("A6", "21", "QC"),
    ]
    assert "subscriber or subscriber id not found (subscriber)" in b.message
    # C-3 itself says A1, but its billing provider loop was rejected (A3): the claim is too.
    assert (c.claim_id, c.accepted, c.rejected, c.status_category) == ("C-3", False, True, "A3")
    assert c.statuses[-1].level == "provider" and c.statuses[-1].code == "562"


@pytest.mark.parametrize(
    "body, where",
    [
        (
            "ST*999*0001~AK1*HC*1~IK3*CLM*5**8~SE*3*0001~",
            "segment 4 (IK3): IK3 outside an AK2 loop",
        ),
        (
            "ST*999*0001~AK1*HC*1~AK2*837*0001~IK3*CLM*X**8~",
            "segment 5 (IK3): IK302 segment position 'X'",
        ),
        (
            "ST*999*0001~AK1*HC*1~AK2*837*0001~IK4*2**7~",
            "segment 5 (IK4): IK4 without a preceding IK3",
        ),
        ("ST*999*0001~AK1*HC*1~AK2*837*0001~AK9*R*1*1*0~", "segment 5 (AK9): AK2 loop has no IK5"),
        ("ST*999*0001~AK1*HC*1~AK2*837*0001~IK5*Q~", "segment 5 (IK5): IK501 status 'Q' unknown"),
        ("ST*277*0001~", "segment 2 (ST): expected a 999"),
    ],
)
def test_malformed_999_names_the_segment(body, where):
    with pytest.raises(X12Error) as err:
        parse_999(ISA + body)
    assert str(err.value).startswith(where)


@pytest.mark.parametrize(
    "body, where",
    [
        ("HL*1**PT~NM1*QC*1*X~STC*A1:19~SE*4*1~", "segment 3 (HL): patient loop has no TRN*2"),
        ("HL*1**PT~TRN*2*C-1~SE*3*1~", "segment 3 (HL): patient loop has no STC"),
        ("HL*1**PT~TRN*2*C-1~STC~", "segment 5 (STC): STC01 claim status is required"),
        ("HL*1**PT~TRN*2*C-1~STC*A1:19*20240101*WQ*12X~", "segment 5 (STC): STC04 amount"),
        ("HL*1~", "segment 3 (HL): HL01 id and HL03"),
    ],
)
def test_malformed_277ca_names_the_segment(body, where):
    with pytest.raises(X12Error) as err:
        parse_277ca(ISA + "ST*277*0001*005010X214~" + body)
    assert str(err.value).startswith(where)


def test_not_x12_at_all():
    with pytest.raises(X12Error, match="no ISA segment"):
        parse_999("hello")
    with pytest.raises(X12Error, match="no ISA segment"):
        parse_277ca("")


def test_code_descriptions_in_words():
    assert describe_999_error("8", "7") == "segment has data element errors; invalid code value"
    assert describe_999_error("I6") == "situationally required segment is missing"
    assert describe_999_error(element_error="ZZ") == "element error ZZ"
    assert (
        describe_277_status("A3", "116", "PR")
        == "returned as unprocessable: sent to the wrong payer (payer)"
    )
    assert describe_277_status("A6") == "rejected: information missing"
    assert describe_277_status("Q9", "9999") == "status category Q9: status code 9999"


def test_999_groups_report_ak9_status_and_group_errors():
    from services.billing.domain.acks import parse_999_groups

    (group,) = parse_999_groups((SAMPLES / "x12_999_rejected.txt").read_text())
    assert (group.group_control_number, group.status, group.accepted) == ("28", "R", False)
    assert [t.st_control_number for t in group.transactions] == ["0028"]
    text = (
        ISA
        + "GS*FA*CH*RCM*20240307*0900*9*X*005010X231A1~ST*999*0001~AK1*HC*77~AK9*R*0*0*0*5~SE*4*0001~GE*1*9~IEA*1*000000101~"
    )
    (whole,) = parse_999_groups(text)
    assert whole.transactions == [] and whole.status == "R"
    assert [(e.level, e.code, e.message) for e in whole.errors] == [
        ("group", "5", "GE transaction set count does not match")
    ]
