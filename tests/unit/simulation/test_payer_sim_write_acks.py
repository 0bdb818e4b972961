"""999 and 277CA acknowledgements: valid under pyx12 (which ships both maps)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

import pytest
from payer_sim_support import PROFESSIONAL_SAMPLES, RCM_837I, RCM_837P, pyx12_check, segments

from rcm.simulation.payer.domain import (
    AckDecision,
    AdjudicationRules,
    SegmentError,
    acknowledge,
    build_277ca,
    build_999,
    read_837,
)

AT = datetime(2025, 3, 10, 14, 30, 5)
ACCEPT = AckDecision(
    True, "A2", "20", "accepted for processing", payer_claim_control_number="90000000000777"
)
REJECT = AckDecision(
    False, "A7", "562", "billing provider NPI fails the check digit", entity_code="85"
)


def test_999_accepted():
    sub = read_837(RCM_837P.read_text())
    text = build_999(sub, interchange_control_number=41, group_control_number=41, created_at=AT)
    ok, report = pyx12_check(text)
    assert ok, report
    segs = segments(text)
    # the reply swaps sender and receiver
    assert segs[0][6].strip() == "PAYERSIM" and segs[0][8].strip() == "RCMSOUTHUC"
    assert segs[1][:3] == ["GS", "FA", "PAYERSIM"] and segs[1][8] == "005010X231A1"
    body = [s for s in segs if s[0] in {"AK1", "AK2", "IK3", "IK5", "AK9"}]
    assert body == [
        ["AK1", "HC", "731", "005010X222A1"],
        ["AK2", "837", "0001", "005010X222A1"],
        ["IK5", "A"],
        ["AK9", "A", "1", "1", "1"],
    ]


def test_999_rejected_with_segment_errors():
    sub = read_837(RCM_837P.read_text())
    errors = {"0001": [SegmentError("CLM", 19, "2300", "8")]}
    text = build_999(
        sub,
        False,
        interchange_control_number=42,
        group_control_number=42,
        created_at=AT,
        errors=errors,
    )
    ok, report = pyx12_check(text)
    assert ok, report
    segs = segments(text)
    assert ["IK3", "CLM", "19", "2300", "8"] in segs
    assert ["IK5", "R", "5"] in segs
    assert ["AK9", "R", "1", "1", "0"] in segs


def test_999_partial_acceptance():
    sub = read_837(RCM_837P.read_text())
    two = replace(
        sub, transactions=(sub.transactions[0], replace(sub.transactions[0], control_number="0002"))
    )
    text = build_999(
        two,
        interchange_control_number=43,
        group_control_number=43,
        created_at=AT,
        rejected_transactions={"0001"},
    )
    segs = segments(text)
    assert segs[segs.index(["AK2", "837", "0001", "005010X222A1"]) + 1] == ["IK5", "R", "5"]
    assert segs[segs.index(["AK2", "837", "0002", "005010X222A1"]) + 1] == ["IK5", "A"]
    assert ["AK9", "P", "2", "2", "1"] in segs
    ok, report = pyx12_check(text)
    assert ok, report


@pytest.mark.parametrize("path", PROFESSIONAL_SAMPLES[:6], ids=lambda p: p.name)
def test_999_for_real_world_837s(path):
    sub = read_837(path.read_text())
    text = build_999(sub, interchange_control_number=44, group_control_number=44, created_at=AT)
    assert pyx12_check(text)[0]
    assert ["AK1", "HC", "1", "005010X222A2"] in segments(text)


def test_277ca_accepts_and_rejects_per_claim():
    sub = read_837(RCM_837P.read_text())
    decisions = {"ENC1001-1": ACCEPT, "ENC1002-2": REJECT}
    text = build_277ca(
        sub,
        decisions,
        interchange_control_number=51,
        group_control_number=51,
        created_at=AT,
        received_date=date(2025, 3, 10),
    )
    ok, report = pyx12_check(text)
    assert ok, report
    segs = segments(text)
    assert segs[1][:2] == ["GS", "HN"] and segs[1][8] == "005010X214"
    assert segs[2] == ["ST", "277", "0001", "005010X214"]
    hl = [s for s in segs if s[0] == "HL"]
    # payer 1: source/receiver/provider/patient; payer 2 likewise (the claims go to two payers)
    assert [h[3] for h in hl] == ["20", "21", "19", "PT", "20", "21", "19", "PT"]
    assert ["NM1", "PR", "2", "ACME HEALTH PLAN", "", "", "", "", "PI", "ACME01"] in segs
    assert ["NM1", "41", "2", "SOUTH URGENT CARE", "", "", "", "", "46", "RCMSOUTHUC"] in segs
    assert ["TRN", "2", "RCM731"] in segs  # the submitter's BHT03 batch reference
    assert ["NM1", "85", "2", "SOUTH URGENT CARE", "", "", "", "", "XX", "1245319599"] in segs
    i = segs.index(["TRN", "2", "ENC1001-1"])
    assert segs[i + 1] == ["STC", "A2:20", "20250310", "WQ", "235"]
    assert segs[i + 2] == ["REF", "1K", "90000000000777"]
    assert segs[i + 3] == ["DTP", "472", "D8", "20250303"]
    j = segs.index(["TRN", "2", "ENC1002-2"])
    assert segs[j + 1] == ["STC", "A7:562:85", "20250310", "U", "185"]
    assert segs[j + 2][0] == "DTP"  # no REF*1K on a rejection
    assert ["QTY", "QA", "1"] in segs and ["QTY", "QC", "1"] in segs
    assert ["AMT", "YU", "235"] in segs and ["AMT", "YY", "185"] in segs


def test_277ca_institutional_with_decisions_from_acknowledge():
    sub = read_837(RCM_837I.read_text())
    rules = AdjudicationRules(seed=4, ack_reject_rate=0)
    decisions = {c.claim_id: acknowledge(c, rules) for c in sub.claims}
    text = build_277ca(
        sub, decisions, interchange_control_number=52, group_control_number=52, created_at=AT
    )
    ok, report = pyx12_check(text)
    assert ok, report
    segs = segments(text)
    assert ["REF", "BLT", "131"] in segs
    assert ["REF", "1K", decisions["ENC2001-1"].payer_claim_control_number] in segs
    assert ["DTP", "472", "D8", "20250305"] in segs


def test_277ca_for_real_world_837s_with_fake_npis():
    for path in PROFESSIONAL_SAMPLES:
        sub = read_837(path.read_text())
        decisions = {c.claim_id: acknowledge(c) for c in sub.claims}
        text = build_277ca(
            sub, decisions, interchange_control_number=53, group_control_number=53, created_at=AT
        )
        ok, report = pyx12_check(text)
        assert ok, (path.name, report)


def test_277ca_requires_a_decision_for_every_claim():
    sub = read_837(RCM_837P.read_text())
    with pytest.raises(ValueError, match="ENC1002-2"):
        build_277ca(
            sub,
            {"ENC1001-1": ACCEPT},
            interchange_control_number=1,
            group_control_number=1,
            created_at=AT,
        )


def test_999_rejection_for_a_file_read_837_refused():
    from rcm.simulation.payer.domain import build_999_rejection
    from shared.x12 import X12Error

    text = RCM_837P.read_text().replace("CLM*ENC1001-1*235.00", "CLM*ENC1001-1*2X5.00")
    with pytest.raises(X12Error) as err:
        read_837(text)
    ack = build_999_rejection(
        text, err.value, interchange_control_number=61, group_control_number=61, created_at=AT
    )
    ok, report = pyx12_check(ack)
    assert ok, report
    segs = segments(ack)
    assert ["AK2", "837", "0001", "005010X222A1"] in segs
    assert ["IK3", "CLM", "19", "", "8"] in segs  # CLM is the 19th segment of the ST
    assert ["IK5", "R", "5"] in segs and ["AK9", "R", "1", "1", "0"] in segs
    with pytest.raises(X12Error):
        build_999_rejection(
            "garbage",
            err.value,
            interchange_control_number=1,
            group_control_number=1,
            created_at=AT,
        )
