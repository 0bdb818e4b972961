"""Coordination of benefits: the secondary and tertiary 837P/837I built from the prior payers'
835s (real ones and the simulator's), valid under pyx12, balanced, or refused with reasons."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from rcm.cli.eligibility_cmds import prior_from_835
from rcm.simulation.payer.domain import (
    AdjudicationRules,
    FeeSchedule,
    PayeeInfo,
    PayerInfo,
    adjudicate,
    build_835,
    read_837,
)
from services.billing.domain.chargemaster import load_sample_chargemaster
from services.billing.domain.claim import Claim, build_claim
from services.billing.domain.cob import (
    CobRefused,
    PriorAdjudication,
    PriorAdjustment,
    PriorLine,
    build_cob_claim,
)
from services.billing.domain.x12_837 import build_837
from services.payments.domain.era import parse_835
from shared.events import Address
from shared.x12 import amount, split_segments
from tests.unit.billing.billing_support import SPOUSE, coverage, make_coded, make_institutional
from tests.x12_support import pyx12_validate

ERA = Path(__file__).resolve().parents[2] / "fixtures" / "x12" / "835" / "linuxforhealth"
AT = datetime(2024, 4, 2, 8, 0)
D = Decimal

MEDICAID = coverage(
    payer_id="MCD01",
    payer_name="State Medicaid",
    member_id="MCD445566",
    group_number=None,
    sequence="secondary",
    filing_indicator="MC",
)
BLUE = coverage(
    payer_id="BCBS01",
    payer_name="Blue Lakes",
    member_id="XLB778899",
    sequence="tertiary",
    relationship="spouse",
    subscriber=SPOUSE,
    filing_indicator="BL",
)


def claim(coded=None, coverages=None) -> Claim:
    coded = coded or make_coded(coverages=coverages or [coverage(), MEDICAID, BLUE])
    cm = load_sample_chargemaster(coded.encounter.site_id)
    return build_claim(coded, claim_id="C-77", chargemaster=cm)


def write(c: Claim) -> str:
    return build_837([c], interchange_control_number=5, group_control_number=6, created_at=AT).text


def segs(text: str) -> list[list[str]]:
    return split_segments(text)[0]


def assert_valid(text: str) -> None:
    ok, errors = pyx12_validate(text)
    assert errors == []
    assert ok is True


def adj(group: str, reason: str, amount: str) -> PriorAdjustment:
    return PriorAdjustment(group, reason, D(amount))


def primary_paid(c: Claim) -> PriorAdjudication:
    """Allowed 80 % of each line, paid 80 % of that, the rest coinsurance (PR 2)."""
    lines = []
    for ln in c.lines:
        assert ln.charge is not None
        allowed = (ln.charge * D("0.8")).quantize(D("0.01"))
        paid = (allowed * D("0.8")).quantize(D("0.01"))
        lines.append(
            PriorLine(
                code=ln.code,
                modifiers=ln.modifiers,
                charge=ln.charge,
                paid=paid,
                adjustments=(
                    adj("CO", "45", str(ln.charge - allowed)),
                    adj("PR", "2", str(allowed - paid)),
                ),
                units=ln.units,
            )
        )
    return PriorAdjudication(
        adjudication_date=date(2024, 3, 20),
        charge=c.total_charge,
        paid=sum((pl.paid for pl in lines), D("0")),
        payer_claim_control_number="PCN-PRIMARY-1",
        lines=tuple(lines),
    )


def loops_2320(s: list[list[str]]) -> list[list[list[str]]]:
    """The segments of each 2320 loop (SBR after the claim's CLM) up to the next SBR/LX."""
    clm = next(i for i, x in enumerate(s) if x[0] == "CLM")
    out: list[list[list[str]]] = []
    for x in s[clm:]:
        if x[0] == "LX":
            break
        if x[0] == "SBR":
            out.append([])
        if out:
            out[-1].append(x)
    return out


def lines_2430(s: list[list[str]]) -> dict[str, list[list[list[str]]]]:
    """LX number -> its 2430 loops (SVD, CAS..., DTP*573)."""
    out: dict[str, list] = {}
    lx = None
    for x in s:
        if x[0] == "LX":
            lx = x[1]
            out[lx] = []
        elif x[0] == "SVD" and lx is not None:
            out[lx].append([x])
        elif lx is not None and out[lx] and x[0] in ("CAS", "DTP") and out[lx][-1][-1][0] != "DTP":
            out[lx][-1].append(x)
    return out


def cas_total(items: list[list[str]]) -> Decimal:
    total = D("0")
    for x in items:
        if x[0] == "CAS":
            total += sum((D(x[i]) for i in range(3, len(x), 3) if x[i]), D("0"))
    return total


# --------------------------------------------------------------------------- secondary


def test_secondary_professional_claim():
    c = claim()
    prior = primary_paid(c)
    cob = build_cob_claim(c, [prior])
    assert cob.payer == MEDICAID
    assert [x.sequence for x in cob.other_coverages] == ["primary", "tertiary"]
    text = write(cob)
    assert_valid(text)
    s = segs(text)
    sbr = next(x for x in s if x[0] == "SBR")
    assert sbr[1] == "S" and sbr[9] == "MC"
    assert ["NM1", "PR", "2", "STATE MEDICAID", "", "", "", "", "PI", "MCD01"] in s
    primary, tertiary = loops_2320(s)
    assert primary[0][1] == "P"
    assert ["AMT", "D", "163.2"] in primary
    assert ["AMT", "EAF", amount(prior.patient_responsibility)] in primary
    assert ["DTP", "573", "D8", "20240320"] in primary
    assert ["REF", "F8", "PCN-PRIMARY-1"] in primary
    assert [
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
    ] in primary
    # The tertiary payer has not adjudicated: named, with nothing from it.
    assert tertiary[0][1] == "T" and tertiary[0][2] == "01"
    assert not [x for x in tertiary if x[0] in ("AMT", "CAS", "DTP")]
    # Every line: one 2430 from the primary that balances with the line's charge.
    sv1 = [D(x[2]) for x in s if x[0] == "SV1"]
    loops = lines_2430(s)
    assert list(loops) == ["1", "2", "3"]
    for (lx, [loop]), charge in zip(loops.items(), sv1, strict=True):
        svd = loop[0]
        assert svd[1] == "SAMPLE-COMMERCIAL" and svd[3].startswith("HC:")
        assert D(svd[2]) + cas_total(loop) == charge, lx
        assert loop[-1] == ["DTP", "573", "D8", "20240320"]


def test_amt_d_is_zero_when_the_primary_paid_nothing():
    c = claim()
    lines = tuple(
        PriorLine(ln.code, ln.modifiers, ln.charge, D("0"), (adj("PR", "1", str(ln.charge)),))
        for ln in c.lines
    )
    prior = PriorAdjudication(date(2024, 3, 20), c.total_charge, D("0"), "PCN9", lines=lines)
    text = write(build_cob_claim(c, [prior]))
    assert_valid(text)
    primary = loops_2320(segs(text))[0]
    assert ["AMT", "D", "0"] in primary
    assert ["AMT", "EAF", "255"] in primary


def test_claim_level_denial_without_lines():
    c = claim()
    prior = PriorAdjudication(
        date(2024, 3, 20),
        c.total_charge,
        D("0"),
        "PCN9",
        adjustments=(adj("CO", "27", str(c.total_charge)),),
        status="4",
    )
    text = write(build_cob_claim(c, [prior]))
    assert_valid(text)
    s = segs(text)
    primary = loops_2320(s)[0]
    assert ["CAS", "CO", "27", "255"] in primary and ["AMT", "D", "0"] in primary
    assert not [x for x in s if x[0] == "SVD"]


def test_cas_groups_and_more_than_six_reasons():
    c = claim(make_coded(coverages=[coverage(), MEDICAID]))
    base = primary_paid(c)
    first = base.lines[0]
    # CO 45 split over seven reasons of one cent... and the rest: one group, two CAS segments.
    pieces = [adj("CO", str(r), "0.01") for r in (4, 16, 18, 22, 23, 45, 97)]
    rest = first.charge - first.paid - D("0.07")
    first = replace(first, adjustments=(*pieces, adj("PR", "2", str(rest))))
    prior = replace(base, lines=(first, *base.lines[1:]))
    text = write(build_cob_claim(c, [prior]))
    assert_valid(text)
    [loop] = lines_2430(segs(text))["1"]
    cas = [x for x in loop if x[0] == "CAS"]
    assert [x[1] for x in cas] == ["CO", "CO", "PR"]
    assert len(cas[0]) == 1 + 18 and cas[1][1:3] == ["CO", "97"]


def test_medicare_as_secondary_names_the_msp_type():
    medicare = coverage(
        payer_id="MCR01",
        payer_name="Medicare Part B",
        member_id="1EG4TE5MK72",
        group_number=None,
        sequence="secondary",
        filing_indicator="MB",
    )
    c = claim(make_coded(coverages=[coverage(), medicare]))
    text = write(build_cob_claim(c, [primary_paid(c)]))
    assert_valid(text)
    sbr = next(x for x in segs(text) if x[0] == "SBR")
    assert (sbr[1], sbr[5], sbr[9]) == ("S", "12", "MB")


def test_secondary_institutional_claim():
    c = claim(make_institutional(coverages=[coverage(), MEDICAID]))
    text = write(build_cob_claim(c, [primary_paid(c)]))
    assert_valid(text)
    s = segs(text)
    svd = [x for x in s if x[0] == "SVD"]
    revenue = [x[1] for x in s if x[0] == "SV2"]
    assert [x[4] for x in svd] == revenue  # SVD04: the line's revenue code (837I)
    assert svd[3][5] == "2"  # the J-code's two units


# --------------------------------------------------------------------------- tertiary


def test_tertiary_claim_carries_both_prior_payers():
    c = claim()
    primary = primary_paid(c)
    secondary_lines = tuple(
        PriorLine(
            pl.code,
            pl.modifiers,
            pl.charge,
            paid=D(sum(a.amount for a in pl.adjustments if a.group == "PR")) - D("1.00"),
            adjustments=(
                adj(
                    "CO",
                    "45",
                    str(pl.charge - sum(a.amount for a in pl.adjustments if a.group == "PR")),
                ),
                adj("PR", "3", "1.00"),
            ),
        )
        for pl in primary.lines
    )
    secondary = PriorAdjudication(
        date(2024, 3, 28),
        c.total_charge,
        sum((pl.paid for pl in secondary_lines), D("0")),
        "PCN-SECONDARY-2",
        lines=secondary_lines,
        status="2",
    )
    cob = build_cob_claim(c, [primary, secondary])
    assert cob.payer == BLUE
    text = write(cob)
    assert_valid(text)
    s = segs(text)
    sbr = next(x for x in s if x[0] == "SBR")
    assert (sbr[1], sbr[2]) == ("T", "")  # the patient is the spouse's dependent on Blue Lakes
    first, second = loops_2320(s)
    assert first[0][1] == "P" and ["AMT", "D", amount(primary.paid)] in first
    assert second[0][1] == "S" and ["AMT", "D", amount(secondary.paid)] in second
    assert ["REF", "F8", "PCN-PRIMARY-1"] in first and ["REF", "F8", "PCN-SECONDARY-2"] in second
    assert ["DTP", "573", "D8", "20240328"] in second
    sv1 = [D(x[2]) for x in s if x[0] == "SV1"]
    for loops, charge in zip(lines_2430(s).values(), sv1, strict=True):
        assert [loop[0][1] for loop in loops] == ["SAMPLE-COMMERCIAL", "MCD01"]
        for loop in loops:
            assert D(loop[0][2]) + cas_total(loop) == charge


# --------------------------------------------------------------------------- refusals


def test_a_line_that_does_not_balance_is_refused_with_the_reason():
    c = claim()
    prior = primary_paid(c)
    bad = replace(prior.lines[1], paid=prior.lines[1].paid + D("5.00"))
    prior = replace(prior, lines=(prior.lines[0], bad, prior.lines[2]), paid=prior.paid + D("5.00"))
    with pytest.raises(CobRefused) as e:
        build_cob_claim(c, [prior])
    assert e.value.reasons == [
        "primary payer: line 2 (73610) does not balance: charge 85.00 != paid 59.40 + adjustments 30.60"
    ]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            lambda p: replace(p, paid=p.paid + D("1")),
            "primary payer: paid 164.20 != line payments 163.20 - claim adjustments 0.00",
        ),
        (
            lambda p: replace(p, charge=D("300.00")),
            "primary payer: charged 300.00 but the claim totals 255.00",
        ),
        (
            lambda p: replace(p, lines=p.lines[:2], paid=p.lines[0].paid + p.lines[1].paid),
            "primary payer: no adjudicated service line for line 3 (29540)",
        ),
        (
            lambda p: replace(p, lines=(*p.lines, replace(p.lines[0], code="99999"))),
            "primary payer: 1 adjudicated service line(s) match no claim line",
        ),
        (
            lambda p: replace(
                p, lines=(replace(p.lines[0], charge=D("100.00"), paid=D("75.00")), *p.lines[1:])
            ),
            "primary payer: line 1 (99213) adjudicated at 100.00, billed at 125.00",
        ),
        (
            lambda p: replace(p, status="22"),
            "primary payer: the claim payment is a reversal (CLP02 22), not an adjudication",
        ),
        (
            lambda p: replace(p, lines=(), adjustments=(adj("CO", "27", "200"),), paid=D("0")),
            "primary payer: charge 255.00 - paid 0.00 != claim adjustments 200.00",
        ),
    ],
)
def test_refusals_name_the_payer_line_and_amounts(change, reason):
    c = claim()
    with pytest.raises(CobRefused) as e:
        build_cob_claim(c, [change(primary_paid(c))])
    assert reason in e.value.reasons
    assert "DOE" not in str(e.value) and "W123456789" not in str(e.value)


def test_refused_without_a_next_coverage_or_from_a_cob_claim():
    only = claim(make_coded(coverages=[coverage()]))
    with pytest.raises(CobRefused, match="no secondary coverage on file to bill"):
        build_cob_claim(only, [primary_paid(only)])
    two = claim(make_coded(coverages=[coverage(), MEDICAID]))
    with pytest.raises(CobRefused, match="no tertiary coverage on file to bill"):
        build_cob_claim(two, [primary_paid(two), primary_paid(two)])
    cob = build_cob_claim(two, [primary_paid(two)])
    with pytest.raises(CobRefused, match="must be the one billed to the primary payer"):
        build_cob_claim(cob, [primary_paid(two)])
    with pytest.raises(CobRefused, match="1 or 2 prior adjudications are needed, got 0"):
        build_cob_claim(two, [])


def test_lines_with_the_same_code_match_by_charge_then_in_order():
    c = claim()
    twin = replace(c.lines[2], line_number=4, charge=D("90.00"), units=D("2"))
    c = replace(c, lines=(*c.lines, twin))
    prior = primary_paid(c)
    # The payer lists the two 29540 lines the other way round.
    prior = replace(prior, lines=(*prior.lines[:2], prior.lines[3], prior.lines[2]))
    cob = build_cob_claim(c, [prior])
    [adjudication] = cob.prior_adjudications
    assert [(pl.line_number, pl.charge) for pl in adjudication.lines] == [
        (1, D("125.00")),
        (2, D("85.00")),
        (3, D("45.00")),
        (4, D("90.00")),
    ]
    assert_valid(write(cob))


# --------------------------------------------------------------------------- real 835s


def _claim_for_real_era(codes: list[tuple[str, tuple[str, ...], str]], total: str) -> Claim:
    c = claim(make_coded(coverages=[coverage(), MEDICAID]))
    first = c.lines[0]
    lines = tuple(
        replace(
            first, line_number=i, code=code, modifiers=mods, charge=D(charge), unit_price=D(charge)
        )
        for i, (code, mods, charge) in enumerate(codes, start=1)
    )
    c = replace(c, lines=lines)
    assert c.total_charge == D(total)
    return c


def _real_prior(name: str, clp01: str) -> PriorAdjudication:
    era = parse_835((ERA / name).read_text())
    [(tx, cp)] = [
        (t, x) for t in era.transactions for x in t.claims if x.patient_control_number == clp01
    ]
    # These files put the date in BPR15, not BPR16: the production date (DTM*405) stands in.
    return prior_from_835(cp, tx.payment.date or tx.production_date)


def test_secondary_from_a_real_835():
    """LinuxForHealth's secondary-payment.835, claim 0001000053: two lines, PR deductible
    and coinsurance, CO 42, OA 23 (the prior payer's impact)."""
    prior = _real_prior("secondary-payment.835", "0001000053")
    c = _claim_for_real_era([("12345", ("26",), "166.50"), ("66543", ("26",), "585.00")], "751.50")
    cob = build_cob_claim(c, [prior])
    text = write(cob)
    assert_valid(text)
    s = segs(text)
    primary = loops_2320(s)[0]
    assert ["AMT", "D", "310"] in primary
    assert ["AMT", "EAF", "220"] in primary
    assert ["REF", "F8", "05630626430"] in primary
    assert ["DTP", "573", "D8", "20050412"] in primary
    loops = lines_2430(s)
    assert loops["1"][0][:2] == [
        ["SVD", "SAMPLE-COMMERCIAL", "30", "HC:12345:26", "", "1"],
        ["CAS", "OA", "23", "136.5"],
    ]
    assert loops["2"][0][:3] == [
        ["SVD", "SAMPLE-COMMERCIAL", "280", "HC:66543:26", "", "1"],
        ["CAS", "PR", "1", "150", "", "2", "70"],
        ["CAS", "CO", "42", "85"],
    ]


def test_secondary_from_a_real_835_with_a_negative_adjustment():
    prior = _real_prior("cob-contractural-adjustment.835", "0001000055")
    c = _claim_for_real_era([("55669", (), "541.00")], "541.00")
    text = write(build_cob_claim(c, [prior]))
    assert_valid(text)
    [loop] = lines_2430(segs(text))["1"]
    assert loop[1] == ["CAS", "OA", "23", "516", "", "94", "-9"]


def test_a_real_835_that_does_not_match_the_claim_is_refused():
    prior = _real_prior("tertiary-payment.835", "0001000054")
    c = _claim_for_real_era([("24599", (), "1766.50")], "1766.50")
    with pytest.raises(CobRefused) as e:
        build_cob_claim(c, [prior])
    # SVC*HC*24599.00: the payer's procedure composite is "HC" alone, code "24599.00".
    assert e.value.reasons == [
        "primary payer: no adjudicated service line for line 1 (24599)",
        "primary payer: 1 adjudicated service line(s) match no claim line",
    ]


# --------------------------------------------------------------------------- the simulator


def _adjudicated_by_simulator(c: Claim, day: int) -> PriorAdjudication:
    """The payer simulator adjudicates ``c``'s 837 and remits an 835; payments' parser reads it."""
    sub = read_837(write(c))
    [sc] = sub.claims
    rules = AdjudicationRules(seed=4, denial_rate=D("0"), ack_reject_rate=D("0"))
    decision = adjudicate(sc, rules, FeeSchedule.from_csv(), date(2024, 3, day))
    text = build_835(
        [decision],
        payer=PayerInfo(
            sc.payer_id,
            sc.payer_name,
            Address(line1="PO BOX 1", city="HARTFORD", state="CT", postal_code="06101"),
        ),
        payee=PayeeInfo(
            sc.billing_provider_name,
            sc.billing_provider_npi or "",
            sc.billing_provider_tax_id or "",
        ),
        trace_number=f"TR{day}",
        payment_date=date(2024, 3, day),
        interchange_control_number=day,
        group_control_number=day,
        created_at=datetime(2024, 3, day, 12, 0),
    )
    era = parse_835(text)
    [tx] = era.transactions
    [cp] = tx.claims
    return prior_from_835(cp, tx.payment.date)


@pytest.mark.parametrize("kind", ["professional", "institutional"])
def test_primary_then_secondary_then_tertiary_through_the_simulators_835s(kind):
    coverages = [coverage(), MEDICAID, BLUE]
    c = claim(make_institutional(coverages=coverages) if kind == "institutional" else None)
    primary = _adjudicated_by_simulator(c, 20)
    secondary_claim = build_cob_claim(c, [primary])
    assert_valid(write(secondary_claim))
    secondary = _adjudicated_by_simulator(secondary_claim, 27)
    tertiary_claim = build_cob_claim(c, [primary, secondary])
    text = write(tertiary_claim)
    assert_valid(text)
    s = segs(text)
    assert next(x for x in s if x[0] == "SBR")[1] == "T"
    assert [loop[0][1] for loop in loops_2320(s)] == ["P", "S"]
    assert all(len(loops) == 2 for loops in lines_2430(s).values())


def test_the_primary_claim_is_unchanged():
    s = segs(write(claim()))
    assert next(x for x in s if x[0] == "SBR")[1] == "P"
    assert not [x for x in s if x[0] in ("SVD", "AMT", "CAS")]
    assert [x[1] for x in s if x[0] == "SBR"] == ["P", "S", "T"]
