"""`rcm claim FILE` and `rcm claim FILE --after ERA.835` price and scrub the encounter with one
piece of code (rcm.cli.eligibility_cmds.priced_claim / scrubbed), judging a code billable as the
billing service does (``icd10cm.billable_on``): the two commands cannot disagree on a claim."""

from __future__ import annotations

from shared import icd10cm
from tests.unit.tooling.test_cli_claim_after import _answer, _run, encounter_file  # noqa: F401


def test_primary_and_next_payer_claims_are_scrubbed_by_the_billing_rule(
    encounter_file,  # noqa: F811
    capsys,
    tmp_path,
    monkeypatch,
):
    path, _ = encounter_file
    rc, primary, _ = _run(capsys, path)
    assert rc == 0 and "~CLM*" in primary
    era = tmp_path / "primary.835"
    _answer(primary, era, 31)
    # The billing service's question says every code is a header; the older date-window variant
    # would still say billable: both commands must follow the billing service.
    monkeypatch.setattr(icd10cm, "billable_on", lambda code, on: False)
    monkeypatch.setattr(icd10cm, "is_billable_on", lambda code, on: True)
    for argv in ([path], [path, "--after", era]):
        rc, out, err = _run(capsys, *argv)
        assert (rc, out) == (2, ""), argv
        assert "held by the scrubber" in err and "rcm: scrub " in err, argv
