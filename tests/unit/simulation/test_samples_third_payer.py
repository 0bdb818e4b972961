"""The demo's third payer: a seeded share of Medicare + Medigap samples get a tertiary plan,
carried in their FHIR bundle; every other sample is the one ``generate_samples`` made."""

from __future__ import annotations

from datetime import date

from rcm.simulation.samples import generate_samples, with_third_payer
from services.intake.mapping import parse

START = date(2026, 10, 1)


def test_medigap_samples_get_a_tertiary_plan_that_intake_reads_from_the_bundle():
    plain = generate_samples(60, 7, start_date=START)
    demo = with_third_payer(generate_samples(60, 7, start_date=START), 7)

    changed = [(a, b) for a, b in zip(plain, demo, strict=True) if a.encounter != b.encounter]
    assert len(changed) == 2  # of the three Medicare + Blue Lakes patients of seed 7
    for before, after in changed:
        assert [c.payer_id for c in before.encounter.coverages] == ["MCR01", "BCBS01"]
        third = after.encounter.coverages[2]
        assert (third.payer_id, third.sequence, third.filing_indicator) == (
            "UHC001",
            "tertiary",
            "CI",
        )
        assert third.member_id and third.member_id.isdigit()
        (read,) = parse(after.bundle).encounters
        assert read.encounter == after.encounter
        assert after.encounter.model_copy(update={"coverages": before.encounter.coverages}) == (
            before.encounter
        )
    unchanged = [b for a, b in zip(plain, demo, strict=True) if a.encounter == b.encounter]
    assert len(unchanged) == 58 and all(
        b.bundle == a.bundle for a, b in zip(plain, demo, strict=True) if b in unchanged
    )
    # Same seed, same third payers; the samples' own content is not drawn again.
    again = with_third_payer(generate_samples(60, 7, start_date=START), 7)
    assert [s.encounter for s in again] == [s.encounter for s in demo]
    assert [s.bundle for s in generate_samples(60, 7, start_date=START)] == [
        s.bundle for s in plain
    ]
