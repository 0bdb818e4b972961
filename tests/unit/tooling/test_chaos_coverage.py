"""The chaos run's encounters beyond the primary payer: which get a second (or third) coverage,
fixed by the seed, each a coverage billing and the payer simulator know."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date
from pathlib import Path

from rcm.bench.bench import render
from rcm.bench.chaos import Chaos
from rcm.simulation.samples import generate_samples
from services.intake.domain.fhir import parse_intake
from shared.settings import ServiceSettings


def _encounters(seed: int):
    chaos = Chaos(seed=seed, settings=ServiceSettings(), endpoints={})
    encs = [parse_intake(s.bundle) for s in generate_samples(300, 11, start_date=date(2026, 10, 1))]
    return encs, [chaos.with_other_coverage(e) for e in encs]


def test_a_seeded_share_gets_another_coverage_of_every_kind():
    before, after = _encounters(3)
    assert after == _encounters(3)[1]  # a function of the seed
    assert after != _encounters(4)[1]
    changed = [(b, a) for b, a in zip(before, after, strict=True) if b != a]
    single = [
        b for b in before if len(b.coverages) == 1 and b.coverages[0].filing_indicator != "MC"
    ]
    assert 0.2 * len(single) <= len(changed) <= 0.5 * len(single)
    kinds = Counter(
        (a.coverages[0].filing_indicator == "MB", tuple(c.payer_id for c in a.coverages[1:]))
        for _, a in changed
    )
    assert kinds[(True, ("BCBS01",))] and kinds[(True, ("MCD01",))]  # Medigap; Medicaid crossover
    assert kinds[(True, ("BCBS01", "UHC001"))]  # a tertiary claim
    assert any(not medicare for medicare, _ in kinds)  # commercial with a spouse's plan
    assert any(not medicare and len(others) == 2 for medicare, others in kinds)  # and a third
    assert not any("MCD01" in others[:-1] for _, others in kinds)  # nothing after Medicaid
    for b, a in changed:
        assert a.coverages[0] == b.coverages[0]  # the primary stays as documented
        assert [c.sequence for c in a.coverages] == ["primary", "secondary", "tertiary"][
            : len(a.coverages)
        ]
        assert len({c.payer_id for c in a.coverages}) == len(a.coverages)
        assert all(c.member_id for c in a.coverages)
        assert a.model_copy(update={"coverages": b.coverages}) == b  # nothing else changed
    # Medicaid is the payer of last resort: never given a plan after it; two plans stay two.
    for b, a in zip(before, after, strict=True):
        if b.coverages[0].filing_indicator == "MC" or len(b.coverages) > 1:
            assert a == b


def test_the_report_names_secondary_claims_and_patient_payments():
    # A result as the bench leaves it (the file test_cli_bench_report reads), with a chaos verdict.
    result = json.loads((Path(__file__).parent / "bench_result.json").read_text())
    result["chaos"] = {
        "faults": 3,
        "violations": [],
        "cob": {
            "with_next_payer": 9,
            "secondary": 6,
            "tertiary": 2,
            "crossovers": 3,
            "crossovers_received": 2,
        },
        "patient_payments": {"asked": 5, "taken": 4, "refused": 1, "attempts": 9},
    }
    text = render(result)
    assert "6 secondary and 2 tertiary claim(s), 3 crossover(s) (2 answered)" in text
    assert "patient payments 4 taken, 1 refused" in text
