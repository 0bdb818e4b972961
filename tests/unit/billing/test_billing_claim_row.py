"""services.billing.submission.claim_row: the one mapping of a built claim to its row, used when
a claim is billed (submission.bill) and when it is rebuilt from newer data (release.rebuild)."""

import json
from datetime import date
from decimal import Decimal

from services.billing.domain.chargemaster import load_sample_chargemaster
from services.billing.domain.claim import build_claim
from services.billing.submission import claim_row
from tests.unit.billing.billing_support import make_coded

CM = load_sample_chargemaster("north-clinic")
TRACE = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_an_original_claim_row():
    coded = make_coded(encounter_id="ENC-R1")
    claim = build_claim(coded, claim_id="C-R1", chargemaster=CM)
    row = claim_row(claim, coded, TRACE)
    assert row[:10] == (
        "C-R1",
        "ENC-R1",
        "north-clinic",
        claim.payer.payer_id,
        "professional",
        "1",
        None,
        None,
        claim.total_charge,
        date(2024, 3, 5),
    )
    assert claim.total_charge > Decimal(0) and claim.payer.payer_id
    assert json.loads(row.coded)["encounter"]["encounter_id"] == "ENC-R1"
    assert (row.traceparent, row.cob_sequence, row.primary_claim_id) == (TRACE, "primary", None)


def test_a_replacement_keeps_what_it_replaces():
    coded = make_coded(encounter_id="ENC-R2")
    claim = build_claim(
        coded,
        claim_id="C-R2-7",
        chargemaster=CM,
        frequency_code="7",
        original_claim_id="C-R2",
        payer_claim_control_number="PCN-1",
    )
    row = claim_row(claim, coded, None)
    assert (row.frequency_code, row.original_claim_id, row.payer_claim_control_number) == (
        "7",
        "C-R2",
        "PCN-1",
    )
    assert row.traceparent is None
