"""The 270 writer: one subscriber (and dependent) loop per coverage, valid under pyx12."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import date, datetime

import pytest

from rcm.simulation.samples import generate_samples
from services.intake.domain.eligibility import (
    EligibilityRequest,
    build_270,
    requests_for_encounter,
)
from services.intake.domain.fhir import parse_intake
from shared.events import Person
from shared.x12 import split_segments
from tests.unit.billing.billing_support import PATIENT, SPOUSE, coverage, make_coded
from tests.unit.eligibility.pyx12_maps import pyx12_validate

AT = datetime(2024, 3, 1, 9, 30)


def write(requests, **kw) -> str:
    args = dict(
        sender_id="RCMSUBMITTER",
        receiver_id="CLEARINGHOUSE",
        interchange_control_number=12,
        group_control_number=34,
        created_at=AT,
    )
    args.update(kw)
    return build_270(requests, **args)


def segs(text: str) -> list[list[str]]:
    return split_segments(text)[0]


def assert_valid(text: str) -> None:
    ok, errors = pyx12_validate(text)
    assert errors == []
    assert ok is True


def three_coverages():
    """Commercial primary (self), Medicaid secondary for the spouse's plan, tertiary (self)."""
    return make_coded(
        coverages=[
            coverage(),
            coverage(
                payer_id="MCD01",
                payer_name="State Medicaid",
                member_id="MCD778899",
                group_number=None,
                sequence="secondary",
                relationship="spouse",
                subscriber=SPOUSE,
                filing_indicator="MC",
            ),
            coverage(
                payer_id="BCBS01",
                payer_name="Blue Lakes",
                member_id="XLB123",
                sequence="tertiary",
                filing_indicator="BL",
            ),
        ],
        place_of_service="11",
    ).encounter


def test_one_request_per_coverage_in_cob_order():
    reqs = requests_for_encounter(three_coverages())
    assert [r.trace_number for r in reqs] == ["ENC-1-1", "ENC-1-2", "ENC-1-3"]
    assert [r.payer_id for r in reqs] == ["SAMPLE-COMMERCIAL", "MCD01", "BCBS01"]
    assert [r.relationship for r in reqs] == ["self", "spouse", "self"]
    assert reqs[1].subscriber == SPOUSE and reqs[1].patient == PATIENT
    assert reqs[0].subscriber == PATIENT and reqs[0].patient is None
    assert all(r.service_date == date(2024, 3, 5) for r in reqs)
    assert all(r.service_types == ("30",) and r.place_of_service == "11" for r in reqs)
    assert {r.provider_npi for r in reqs} == {"1234567893"}


def test_subscriber_inquiry_segments():
    enc = make_coded().encounter
    text = write(requests_for_encounter(enc))
    assert_valid(text)
    s = segs(text)
    assert s[0][0] == "ISA" and s[0][13] == "000000012" and s[0][12] == "00501"
    assert s[1] == [
        "GS",
        "HS",
        "RCMSUBMITTER",
        "CLEARINGHOUSE",
        "20240301",
        "0930",
        "34",
        "X",
        "005010X279A1",
    ]
    body = [x for x in s[2:] if x[0] not in ("GE", "IEA")]
    assert body == [
        ["ST", "270", "0001", "005010X279A1"],
        ["BHT", "0022", "13", "34-0001", "20240301", "0930"],
        ["HL", "1", "", "20", "1"],
        [
            "NM1",
            "PR",
            "2",
            "SAMPLE COMMERCIAL HEALTH PLAN",
            "",
            "",
            "",
            "",
            "PI",
            "SAMPLE-COMMERCIAL",
        ],
        ["HL", "2", "1", "21", "1"],
        ["NM1", "1P", "2", "NORTH CLINIC", "", "", "", "", "XX", "1234567893"],
        ["HL", "3", "2", "22", "0"],
        ["TRN", "1", "ENC-1-1", "9RCMSUBMIT"],
        ["NM1", "IL", "1", "DOE", "JANE", "", "", "", "MI", "W123456789"],
        ["REF", "6P", "GRP100"],
        ["DMG", "D8", "19850412", "F"],
        ["DTP", "291", "D8", "20240305"],
        ["EQ", "30"],
        ["SE", "14", "0001"],
    ]


def test_dependent_inquiry_puts_trace_and_benefits_under_2000d():
    text = write(requests_for_encounter(three_coverages()))
    assert_valid(text)
    s = segs(text)
    # Each payer has its own transaction set: the dependent's inquiry is the second.
    starts = [i for i, x in enumerate(s) if x[0] == "ST"]
    assert len(starts) == 3
    second = s[starts[1] : starts[2]]
    ids = [x[0] + ("*" + x[1] if x[0] in ("HL", "NM1", "TRN", "INS") else "") for x in second]
    assert ids == [
        "ST",
        "BHT",
        "HL*1",
        "NM1*PR",
        "HL*2",
        "NM1*1P",
        "HL*3",
        "NM1*IL",
        "HL*4",
        "TRN*1",
        "NM1*03",
        "DMG",
        "INS*N",
        "DTP",
        "EQ",
        "III",
        "SE",
    ]
    assert ["HL", "3", "2", "22", "1"] in second and ["HL", "4", "3", "23", "0"] in second
    assert ["NM1", "IL", "1", "DOE", "JOHN", "", "", "", "MI", "MCD778899"] in second
    assert ["INS", "N", "01"] in second  # spouse
    assert ["TRN", "1", "ENC-1-2", "9RCMSUBMIT"] in second
    assert ["III", "ZZ", "11"] in second  # place of service


def test_service_type_codes_are_configurable_one_eq_each():
    reqs = requests_for_encounter(make_coded().encounter, service_types=("30", "98", "UC"))
    text = write(reqs)
    assert_valid(text)
    assert [x for x in segs(text) if x[0] == "EQ"] == [["EQ", "30"], ["EQ", "98"], ["EQ", "UC"]]


def test_transaction_sets_keep_subscribers_first_and_one_dependent_each():
    enc = three_coverages()
    base = requests_for_encounter(enc)
    dependent = base[1]
    same_payer = [
        replace(base[0], trace_number="A"),
        replace(dependent, trace_number="B", payer_id="SAMPLE-COMMERCIAL", payer_name="Sample"),
        replace(base[0], trace_number="C", payer_name="Sample", payer_id="SAMPLE-COMMERCIAL"),
        replace(dependent, trace_number="D", payer_id="SAMPLE-COMMERCIAL", payer_name="Sample"),
    ]
    text = write(same_payer)
    assert_valid(text)
    s = segs(text)
    traces, current = [], []
    for x in s:
        if x[0] == "ST":
            current = []
            traces.append(current)
        elif x[0] == "TRN":
            current.append(x[2])
    assert traces == [["A"], ["C", "B"], ["D"]]


def test_name_search_without_member_id():
    enc = make_coded(coverages=[coverage(member_id=None)]).encounter
    text = write(requests_for_encounter(enc))
    assert_valid(text)
    assert ["NM1", "IL", "1", "DOE", "JANE"] in segs(text)


def test_encounters_from_samples_give_valid_270s():
    samples = generate_samples(40, seed=11)
    reqs = [
        r
        for s in samples
        for r in requests_for_encounter(s.encounter, trace_prefix=s.encounter.encounter_id[-10:])
    ]
    assert any(r.relationship != "self" for r in reqs)
    assert len({r.payer_id for r in reqs}) > 3
    text = write(reqs)
    assert_valid(text)
    assert sum(1 for x in segs(text) if x[0] == "TRN") == len(reqs)


def test_fhir_bundle_encounter():
    sample = generate_samples(8, seed=7)[6]
    enc = parse_intake(json.loads(json.dumps(sample.bundle)))
    reqs = requests_for_encounter(enc, trace_prefix="T1")
    assert [(r.payer_id, r.trace_number) for r in reqs] == [("MCR01", "T1-1"), ("BCBS01", "T1-2")]
    assert_valid(write(reqs))


def _request(**kw) -> EligibilityRequest:
    base = requests_for_encounter(make_coded().encounter)[0]
    return replace(base, **kw)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (dict(trace_number=""), "requests[0].trace_number must be 1-50"),
        (dict(trace_number="X" * 51), "requests[0].trace_number must be 1-50"),
        (dict(trace_number="A*B"), "without X12 separators"),
        (dict(provider_npi="12345"), "requests[0].provider_npi must be a 10-digit NPI"),
        (dict(payer_id=" "), "requests[0].payer_id is required"),
        (
            dict(member_id=None, subscriber=Person(last_name="DOE", first_name="JANE")),
            "member_id, or the subscriber's name and birth date, is required",
        ),
        (dict(relationship="child", patient=None), "requests[0].patient name is required"),
        (dict(service_types=()), "requests[0].service_types is empty"),
        (dict(service_types=("300",)), "not 1-2 characters"),
        (dict(place_of_service="Office"), "place_of_service must be a 2-digit CMS code"),
    ],
)
def test_refuses_what_a_270_cannot_carry_without_quoting_it(change, message):
    with pytest.raises(ValueError, match=re.escape(message)) as e:
        write([_request(**change)])
    assert "W123456789" not in str(e.value) and "DOE" not in str(e.value)


def test_refuses_repeated_trace_numbers_and_bad_envelopes():
    r = _request()
    with pytest.raises(ValueError, match=r"requests\[1\].trace_number repeats"):
        write([r, r])
    with pytest.raises(ValueError, match="no requests"):
        write([])
    with pytest.raises(ValueError, match="interchange_control_number must be 1..999999999"):
        write([r], interchange_control_number=0)
    with pytest.raises(ValueError, match="usage must be 'P' or 'T'"):
        write([r], usage="X")
    with pytest.raises(ValueError, match="originator_id must be 10 characters"):
        write([r], originator_id="123")


def test_requests_for_encounter_refuses_self_pay_and_missing_npi():
    with pytest.raises(ValueError, match="encounter.coverages: no coverage"):
        requests_for_encounter(make_coded(coverages=[]).encounter)
    enc = make_coded().encounter
    enc = enc.model_copy(
        update={"billing_provider": enc.billing_provider.model_copy(update={"npi": None})}
    )
    with pytest.raises(ValueError, match="billing_provider.npi is required"):
        requests_for_encounter(enc)
    enc = make_coded().encounter
    unnamed = enc.billing_provider.model_copy(update={"name": None})
    with pytest.raises(ValueError, match="billing_provider.name is required"):
        requests_for_encounter(enc.model_copy(update={"billing_provider": unnamed}))


def test_requests_keep_phi_out_of_repr():
    text = repr(requests_for_encounter(three_coverages()))
    for phi in ("W123456789", "MCD778899", "Doe", "Jane", "1985"):
        assert phi not in text
