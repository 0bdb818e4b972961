"""`rcm claim FILE --after ERA.835 [--after ERA2.835]` (issue 21's command line): the next
payer's 837 from the prior payers' 835s, offline. The 835s are the payer simulator's answers
to the 837s the command printed before, so each step is what a payer would send back."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from rcm.cli.main import main
from rcm.simulation.payer.domain import AdjudicationRules, FeeSchedule, adjudicate, read_837
from rcm.simulation.payer.domain.write_835 import PayeeInfo, PayerInfo, build_835
from services.billing.domain.cob_remit import cob_claim_id
from shared.claim_ids import claim_id_for
from shared.events import Address
from shared.x12 import split_segments
from tests.integration.cob_support import MEDICARE, SUPPLEMENT, TERTIARY, medicare_encounters
from tests.unit.billing.test_billing_cob import lines_2430, loops_2320
from tests.x12_support import pyx12_validate

RULES = AdjudicationRules(seed=7, denial_rate=0, deductible_rate=0)
ON = date(2026, 11, 20)
PAYER_ADDRESS = Address(line1="1 Payer Way", city="Columbus", state="OH", postal_code="43215")


@pytest.fixture(scope="module")
def encounter_file(tmp_path_factory):
    sample = medicare_encounters(21601, [MEDICARE, SUPPLEMENT, TERTIARY], "cli")[0]
    path = tmp_path_factory.mktemp("cob") / "encounter.json"
    path.write_text(json.dumps(sample.bundle))
    return path, claim_id_for(sample.encounter.encounter_id)


def _run(capsys, *argv) -> tuple[int, str, str]:
    rc = main(["claim", *map(str, argv)])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _answer(text: str, path, n: int) -> str:
    """The payer's 835 for the 837 ``text``, written to ``path``; its CLP07."""
    (sub,) = read_837(text).claims
    decided = adjudicate(sub, RULES, FeeSchedule.from_csv(), ON)
    path.write_text(
        build_835(
            [decided],
            payer=PayerInfo(sub.payer_id, sub.payer_name, PAYER_ADDRESS),
            payee=PayeeInfo(sub.billing_provider_name, sub.billing_provider_npi or "", "1"),
            trace_number=f"CLI{n}",
            payment_date=ON,
            interchange_control_number=n,
            group_control_number=n,
            created_at=datetime(2026, 11, 20, 9, tzinfo=UTC),
        )
    )
    return decided.payer_claim_control_number


def _claim(text: str):
    segs = split_segments(text)[0]
    sbr = next(s for s in segs if s[0] == "SBR")
    clm = segs[next(i for i, s in enumerate(segs) if s[0] == "CLM") :]
    return sbr, clm


def test_secondary_then_tertiary_from_the_prior_payers_835s(encounter_file, capsys, tmp_path):
    path, primary = encounter_file
    rc, first, _ = _run(capsys, path)
    assert rc == 0 and _claim(first)[0][1] == "P"
    medicare_icn = _answer(first, tmp_path / "medicare.835", 11)

    rc, second, _ = _run(capsys, path, "--after", tmp_path / "medicare.835")
    assert rc == 0
    sbr, clm = _claim(second)
    assert (sbr[1], sbr[9]) == ("S", "BL") and clm[0][1] == primary
    others = {loop[0][1]: loop for loop in loops_2320(clm)}
    assert set(others) == {"P", "T"}  # Medicare with its answer; the third plan, not yet asked
    prior = others["P"]
    assert ["REF", "F8", medicare_icn] in prior and any(x[:2] == ["AMT", "D"] for x in prior)
    assert not any(x[:2] == ["AMT", "D"] for x in others["T"])
    ok, errors = pyx12_validate(second)
    assert ok, errors[:5]
    # The service's secondary claim has its own id; the command keeps the encounter's, which
    # the payer answers on: the tertiary below is built from both answers to it.
    assert cob_claim_id(primary, "secondary") != primary
    plan_icn = _answer(second, tmp_path / "plan.835", 12)

    rc, third, _ = _run(
        capsys, path, "--after", tmp_path / "medicare.835", "--after", tmp_path / "plan.835"
    )
    assert rc == 0
    sbr, clm = _claim(third)
    assert (sbr[1], sbr[9]) == ("T", "CI")
    first_prior, second_prior = loops_2320(clm)
    assert first_prior[0][1] == "P" and ["REF", "F8", medicare_icn] in first_prior
    assert second_prior[0][1] == "S" and ["REF", "F8", plan_icn] in second_prior
    for loops in lines_2430(clm).values():
        assert [loop[0][1] for loop in loops] == ["MCR01", "BCBS01"]
    ok, errors = pyx12_validate(third)
    assert ok, errors[:5]


def test_an_835_that_does_not_match_the_claim_is_refused_with_the_reasons(
    encounter_file, capsys, tmp_path
):
    path, _ = encounter_file
    _, first, _ = _run(capsys, path)
    (sub,) = read_837(first).claims
    line = sub.lines[0]
    # The payer adjudicated line 1 at 10.00 less than billed (its own lines still balance).
    changed = replace(
        sub,
        lines=(replace(line, charge=line.charge - 10), *sub.lines[1:]),
        total_charge=sub.total_charge - 10,
    )
    decided = adjudicate(changed, RULES, FeeSchedule.from_csv(), ON)
    era = tmp_path / "changed.835"
    era.write_text(
        build_835(
            [decided],
            payer=PayerInfo(sub.payer_id, sub.payer_name, PAYER_ADDRESS),
            payee=PayeeInfo(sub.billing_provider_name, sub.billing_provider_npi or "", "1"),
            trace_number="CLI14",
            payment_date=ON,
            interchange_control_number=14,
            group_control_number=14,
            created_at=datetime(2026, 11, 20, 9, tzinfo=UTC),
        )
    )
    rc, out, err = _run(capsys, path, "--after", era)
    assert rc != 0 and out == ""  # no 837
    assert f"line 1 ({line.code}) adjudicated at {line.charge - 10:.2f}, billed at" in err
    assert "no claim for the next payer" in err
