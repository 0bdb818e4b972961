"""The 271 reader: real payer files, benefits and cost share, other payers, AAA rejections,
matching to the 270 by TRN, and what a broken file gets."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from services.intake.domain.eligibility import match_results, parse_271, read_271
from services.intake.domain.eligibility.as_json import response_to_json
from shared.x12 import X12Error

REAL = Path(__file__).resolve().parents[2] / "fixtures" / "x12" / "271"
REAL_271 = sorted(
    p
    for p in REAL.glob("*/*")
    if p.suffix in (".271", ".txt") or (p.suffix == ".edi" and "request" not in p.name)
)
TRACE = "93175-012547"  # the TR3 example's trace number, in every real file


def test_every_real_271_parses():
    assert len(REAL_271) == 7
    for path in REAL_271:
        response = read_271(path.read_text())
        assert response.results, path.name
        for r in response.results:
            assert r.status in ("active", "rejected"), path.name


@pytest.mark.parametrize(
    "name",
    [
        "linuxforhealth/subscriber-health-benefit-check.271",
        "stupidedi/x279-subscriber-response.edi",
        "imsweb/x271.txt",
    ],
)
def test_real_subscriber_response(name):
    [r] = parse_271((REAL / name).read_text())
    assert (r.trace_number, r.level, r.status) == (TRACE, "subscriber", "active")
    assert (r.payer_id, r.payer_name) == ("842610001", "ABC COMPANY") or r.payer_id == "841610001"
    assert r.plan_name == "GOLD 123 PLAN"
    assert r.coverage_begin == date(2006, 1, 1)
    assert r.member_id == "123456789"
    # The primary care provider (EB*L) named in a 2120 loop: a related entity, not a payer.
    assert [(e.entity_code, e.role, e.identifier) for e in r.entities] == [
        ("P3", "primary_care_provider", "0202034")
    ]
    assert r.other_payers == ()
    assert r.rejections == ()


@pytest.mark.parametrize(
    "name",
    [
        "linuxforhealth/subscriber-health-benefit-check.271",
        "stupidedi/x279-subscriber-response.edi",
    ],
)
def test_real_copays_in_and_out_of_network_with_repeated_service_types(name):
    [r] = parse_271((REAL / name).read_text())
    copays = [b for b in r.benefits if b.kind == "copay"]
    assert [(b.amount, b.in_network, b.time_period, b.insurance_type) for b in copays] == [
        (Decimal("10.00") if "linux" in name else Decimal("10"), True, "27", "HM"),
        (Decimal("30.00") if "linux" in name else Decimal("30"), False, "27", "HM"),
    ]
    # EB03 repeats (^ in one file, > in the other): every code is kept.
    assert copays[0].service_types == ("1", "33", "35", "47", "86", "88", "98", "AL", "MH", "UC")
    assert r.cost_share(service_type="98").copay == Decimal(copays[0].amount)
    assert r.cost_share(service_type="98", in_network=False).copay == copays[1].amount
    # Plan coverage (30) itself states no copay.
    assert r.cost_share().copay is None


def test_imsweb_4010_envelope_and_miscounted_se_are_warnings():
    response = read_271((REAL / "imsweb" / "x271.txt").read_text())
    assert response.warnings == ("segment 20 (SE): SE01 does not count the 18 segments",)
    # ISA11 of a 4010 interchange is a standard id (U), not a repetition separator: "UC"
    # (urgent care) must not be split on it.
    [r] = response.results
    assert r.status == "active"


@pytest.mark.parametrize(
    "name",
    ["linuxforhealth/dependent-health-benefit-check.271", "stupidedi/x279-dependent-response.edi"],
)
def test_real_dependent_response(name):
    [r] = parse_271((REAL / name).read_text())
    assert (r.trace_number, r.level, r.status) == (TRACE, "dependent", "active")
    assert r.member_id == "123456789"  # the subscriber's, which the dependent is covered under
    assert r.plan_name == "GOLD 123 PLAN"


@pytest.mark.parametrize(
    "name",
    [
        "linuxforhealth/subscriber-health-benefit-check-error.271",
        "stupidedi/x279a1-error-not-eligible-for-inquiries.edi",
    ],
)
def test_real_receiver_level_rejection_answers_every_request(name):
    response = read_271((REAL / name).read_text())
    [r] = response.results
    assert (r.trace_number, r.level, r.status) == (None, "information_receiver", "rejected")
    [x] = r.rejections
    assert (x.loop, x.reason, x.follow_up, x.action) == ("2100B", "50", "N", "review")
    assert x.description == "provider ineligible for inquiries"
    assert match_results(["T-1", "T-2"], response.results) == {"T-1": r, "T-2": r}
    if "linux" in name:
        assert response.warnings == ("segment 10 (SE): SE02 does not match ST02",)


# --------------------------------------------------------------------------- written here

ENVELOPE = (
    "ISA*00*          *00*          *ZZ*PAYER          *ZZ*RCM            "
    "*240301*0901*^*00501*000000009*0*P*:~GS*HB*PAYER*RCM*20240301*0901*9*X*005010X279A1~"
)
HEAD = [
    "ST*271*0001*005010X279A1",
    "BHT*0022*11*R1*20240301*0901",
    "HL*1**20*1",
    "NM1*PR*2*ACME HEALTH*****PI*ACME01",
    "HL*2*1*21*1",
    "NM1*1P*2*NORTH CLINIC*****XX*1234567893",
]


def x271(*body: str, head=HEAD) -> str:
    segs = [*head, *body]
    segs.append(f"SE*{len(segs) + 1}*0001")
    return ENVELOPE + "~".join(segs) + "~GE*1*9~IEA*1*000000009~\n"


def subscriber(trace: str, *body: str, member: str = "W1") -> list[str]:
    return ["HL*3*2*22*0", f"TRN*2*{trace}*9RCM000000", f"NM1*IL*1*DOE*JANE****MI*{member}", *body]


BENEFITS = [
    "REF*18*PLAN77",
    "REF*6P*GRP100",
    "DTP*346*D8*20240101",
    "EB*1*IND*30**ACME GOLD PPO",
    "EB*B*IND*30***27*25*****Y",
    "EB*B*IND*30***27*50*****N",
    "EB*A*IND*30*****0.2****Y",
    "EB*A*IND*30*****0.4****N",
    "EB*C*IND*30***23*1500*****Y",
    "EB*C*IND*30***29*312.40*****Y",
    "EB*C*FAM*30***23*3000*****Y",
    "EB*C*IND*30***23*3000*****N",
    "EB*C*IND*30***29*3000*****N",
    "EB*G*IND*30***23*6000*****Y",
    "EB*G*IND*30***29*4211.75*****Y",
    "EB*G*IND*30***23*12000*****N",
    "EB*G*IND*30***29*12000*****N",
]


def test_active_coverage_with_cost_share_in_and_out_of_network():
    [r] = parse_271(x271(*subscriber("T-1", *BENEFITS)))
    assert (r.status, r.plan_name, r.plan_number, r.group_number) == (
        "active",
        "ACME GOLD PPO",
        "PLAN77",
        "GRP100",
    )
    assert r.coverage_begin == date(2024, 1, 1)
    inn = r.cost_share()
    assert (inn.copay, inn.coinsurance) == (Decimal("25"), Decimal("0.2"))
    assert (inn.deductible, inn.deductible_remaining) == (Decimal("1500"), Decimal("312.40"))
    assert (inn.out_of_pocket, inn.out_of_pocket_remaining) == (Decimal("6000"), Decimal("4211.75"))
    out = r.cost_share(in_network=False)
    assert (out.copay, out.coinsurance, out.deductible, out.deductible_remaining) == (
        Decimal("50"),
        Decimal("0.4"),
        Decimal("3000"),
        Decimal("3000"),
    )
    assert r.cost_share(coverage_level="FAM").deductible == Decimal("3000")
    assert all(isinstance(b.amount, Decimal | None) for b in r.benefits)


def test_inactive_coverage():
    [r] = parse_271(x271(*subscriber("T-1", "EB*6*IND*30**ACME GOLD PPO", "DTP*357*D8*20231231")))
    assert r.status == "inactive" and not r.active
    assert r.benefits[0].end == date(2023, 12, 31)


@pytest.mark.parametrize("code", ["1", "2", "3", "4", "5"])
def test_eb01_one_to_five_is_active(code):
    [r] = parse_271(x271(*subscriber("T", f"EB*{code}**30")))
    assert r.status == "active"


@pytest.mark.parametrize("code", ["6", "7", "8"])
def test_eb01_six_to_eight_is_inactive(code):
    [r] = parse_271(x271(*subscriber("T", f"EB*{code}**30")))
    assert r.status == "inactive"


def test_plan_coverage_decides_over_a_service_type():
    [r] = parse_271(x271(*subscriber("T", "EB*6**AL", "EB*1**30")))
    assert r.status == "active"
    [r] = parse_271(x271(*subscriber("T", "EB*1**AL", "EB*6**30")))
    assert r.status == "inactive"
    [r] = parse_271(x271(*subscriber("T", "EB*B**30***27*10")))
    assert r.status == "unknown"


def test_other_primary_payer_and_managed_care_in_2120_loops():
    body = subscriber(
        "T-1",
        "EB*1*IND*30*HM*ACME HMO",
        "LS*2120",
        "NM1*Y2*2*ACME MANAGED CARE*****PI*MCO55",
        "N3*PO BOX 1",
        "N4*HARTFORD*CT*06101",
        "LE*2120",
        "EB*R**30*MB",
        "DTP*290*D8*20240101",
        "LS*2120",
        "NM1*PRP*2*MEDICARE PART B*****PI*00882",
        "NM1*IL*1*DOE*JOHN****MI*1EG4TE5MK72",
        "LE*2120",
    )
    [r] = parse_271(x271(*body))
    assert [
        (e.entity_code, e.role, e.name, e.identifier, e.benefit_code, e.insurance_type)
        for e in r.other_payers
    ] == [
        ("Y2", "managed_care_organization", "ACME MANAGED CARE", "MCO55", "1", "HM"),
        ("PRP", "primary_payer", "MEDICARE PART B", "00882", "R", "MB"),
    ]
    assert r.other_primary_payer is not None and r.other_primary_payer.identifier == "00882"
    insured = r.entities[-1]  # the other plan's insured: kept without name or id (PHI)
    assert (insured.entity_code, insured.name, insured.identifier) == ("IL", None, None)
    assert r.status == "active"


@pytest.mark.parametrize(
    ("aaa", "reason", "action", "description"),
    [
        ("AAA*Y**42*R", "42", "retry", "unable to respond at current time"),
        ("AAA*Y**72*C", "72", "registration", "invalid/missing subscriber/insured id"),
        ("AAA*Y**73*C", "73", "registration", "invalid/missing subscriber/insured name"),
        ("AAA*Y**75*C", "75", "registration", "subscriber/insured not found"),
        ("AAA*N**15*C", "15", "review", "required application data missing"),
    ],
)
def test_subscriber_level_rejections(aaa, reason, action, description):
    [r] = parse_271(x271(*subscriber("T-9", aaa)))
    assert (r.trace_number, r.status) == ("T-9", "rejected")
    [x] = r.rejections
    assert (x.loop, x.reason, x.action, x.description) == ("2100C", reason, action, description)
    assert x.segment == 12  # ISA is segment 1
    assert r.actions() == (action,)


def test_payer_down_at_the_information_source():
    [r] = parse_271(x271(head=[*HEAD[:3], "AAA*Y**42*R", "NM1*PR*2*ACME HEALTH*****PI*ACME01"]))
    assert (r.level, r.status, r.trace_number, r.payer_id) == (
        "information_source",
        "rejected",
        None,
        "ACME01",
    )
    assert [(x.loop, x.reason, x.action) for x in r.rejections] == [("2000A", "42", "retry")]


def test_benefit_level_rejection_does_not_reject_coverage():
    [r] = parse_271(x271(*subscriber("T", "EB*1**30", "EB*1**UC", "AAA*Y**33*C")))
    assert r.status == "active"
    assert [(x.loop, x.reason) for x in r.rejections] == [("2110C", "33")]


def test_matched_to_the_270_by_trace_number():
    body = [
        *subscriber("B", "EB*1**30"),
        "HL*4*2*22*1",
        "NM1*IL*1*ROE*RAY****MI*W2",
        "HL*5*4*23*0",
        "TRN*2*A*9RCM000000",
        "NM1*03*1*ROE*KIM",
        "EB*6**30",
        "HL*6*2*22*0",
        "TRN*2*C*9RCM000000",
        "NM1*IL*1*LOE*LEE****MI*W3",
        "AAA*Y**75*C",
    ]
    results = parse_271(x271(*body))
    matched = match_results(["A", "B", "C", "D"], results)
    assert {t: (r.level, r.status) for t, r in matched.items()} == {
        "A": ("dependent", "inactive"),
        "B": ("subscriber", "active"),
        "C": ("subscriber", "rejected"),
    }
    assert matched["A"].member_id == "W2"


def test_a_clearinghouse_trace_beside_ours_still_matches():
    head = subscriber("OURS-1")
    body = [*head[:2], "TRN*2*CH-778*9CLEARING1", "TRN*1*PAYER-5*9PAYERS001", *head[2:], "EB*1**30"]
    [r] = parse_271(x271(*body))
    assert (r.trace_number, r.trace_numbers) == ("OURS-1", ("OURS-1", "CH-778"))
    assert set(match_results(["OURS-1", "CH-778", "PAYER-5"], [r])) == {"OURS-1", "CH-778"}


def test_json_view_has_decimal_strings_and_no_phi():
    response = read_271(x271(*subscriber("T-1", *BENEFITS, member="W99887766")))
    doc = response_to_json(response)
    [r] = doc["results"]
    assert r["status"] == "active"
    assert r["cost_share"]["in_network"] == {
        "copay": "25",
        "coinsurance": "0.2",
        "deductible": "1500",
        "deductible_remaining": "312.40",
        "out_of_pocket": "6000",
        "out_of_pocket_remaining": "4211.75",
    }
    copay = r["benefits"][1]
    assert (copay["kind"], copay["amount"], copay["in_network"]) == ("copay", "25", True)
    assert (copay["time_period"], copay["period"]) == ("27", "visit")
    assert r["benefits"][6]["period"] == "remaining"
    text = repr(doc)
    for phi in ("W99887766", "DOE", "JANE"):
        assert phi not in text


# --------------------------------------------------------------------------- bad input


def test_bad_amounts_and_dates_are_warnings_naming_the_segment():
    text = x271(*subscriber("T", "DTP*346*D8*20241399", "EB*1**30", "EB*C*IND*30***23*1O00"))
    response = read_271(text)
    [r] = response.results
    assert r.status == "active"
    assert r.benefits[1].amount is None
    assert r.warnings == (
        "segment 12 (DTP): DTP03 is not a D8/RD8 date; ignored",
        "segment 14 (EB): EB07 is not a number; dropped",
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not x12 at all", "no ISA segment"),
        (
            x271(*subscriber("T", "EB*1**30")).replace("ST*271", "ST*270"),
            "segment 3 (ST): transaction set is not a 271",
        ),
        (
            x271(*subscriber("T", "EB*1**30")).split("SE*")[0],
            "file ends inside a transaction set: expected SE",
        ),
        (
            x271("HL*3*7*22*0", "NM1*IL*1*DOE*JANE****MI*W1"),
            "segment 9 (HL): HL02 names no earlier HL",
        ),
        (x271("HL*3*2*99*0"), "segment 9 (HL): HL03 is not 20, 21, 22 or 23"),
        (
            x271("HL*3*2*23*0"),
            "segment 9: a dependent HL (23) must have a subscriber HL (22) parent",
        ),
    ],
)
def test_structure_errors_name_the_segment_not_the_content(text, message):
    with pytest.raises(X12Error, match=message.replace("(", r"\(").replace(")", r"\)")) as e:
        read_271(text)
    assert "DOE" not in str(e.value) and "W1" not in str(e.value)


def test_refuses_bytes():
    with pytest.raises(TypeError):
        read_271(b"ISA")  # type: ignore[arg-type]
