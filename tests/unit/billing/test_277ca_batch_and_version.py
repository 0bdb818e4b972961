"""277CA: a rejection above the claims, and the version check (issue 21 item 5).

Built from imsweb's real 277CA files (BSD 3-clause, tests/fixtures/x12/billing/imsweb/LICENSE):
the payer's rejection is moved from the patient loop up to the information receiver (HL 21)
or billing provider (HL 19) loop, with no patient loop left, as payers send it when they
refuse a whole batch; the file on disk is never edited.
"""

from __future__ import annotations

import pytest

from services.billing.domain.acks import parse_277ca, parse_277ca_file
from shared.x12 import X12Error
from tests.unit.billing.acks_277ca_support import (
    ACCEPTED,
    REJECTED,
    rebuilt,
    status_at,
    without_claims,
)


def test_a_receiver_level_rejection_with_no_claims_is_a_batch_rejection():
    text = rebuilt(REJECTED, status_at("21", "A3|24|41"))
    assert "*PT~" not in text and "STC*A3|24|41*" in text
    ack = parse_277ca_file(text)
    assert ack.claims == []  # nothing claim by claim: the batch is what was refused
    (batch,) = ack.batches
    assert (batch.level, batch.batch_reference, batch.provider_id) == ("receiver", "11200001", None)
    assert [(s.category, s.code, s.entity, s.level) for s in batch.statuses] == [
        ("A3", "24", "41", "receiver")
    ]
    assert batch.message  # in words, from ack_codes


def test_a_provider_level_rejection_names_the_provider_and_the_batch():
    text = rebuilt(REJECTED, status_at("19", "A3|562|85"))
    (batch,) = parse_277ca_file(text).batches
    # NM1*85 ... XX*123456789 in the real file; TRN*2 of its receiver loop names the 837
    assert (batch.level, batch.batch_reference, batch.provider_id) == (
        "provider",
        "11200001",
        "123456789",
    )
    assert batch.statuses[0].code == "562"


def test_a_payer_level_rejection_takes_the_receiver_loops_reference():
    text = rebuilt(REJECTED, status_at("20", "A3|24|PR"))
    (batch,) = parse_277ca_file(text).batches
    assert (batch.level, batch.batch_reference) == ("payer", "11200001")


def test_a_rejection_above_listed_claims_stays_on_those_claims():
    # The real rejected file: the provider loop rejects and the claim is listed under it.
    def edit(segments):
        hl19 = next(i for i, s in enumerate(segments) if s[0] == "HL" and s[3] == "19")
        segments.insert(hl19 + 3, ["STC", "A3|562|85", "20110311", "U"])
        return segments

    ack = parse_277ca_file(rebuilt(REJECTED, edit))
    assert ack.batches == []
    (claim,) = ack.claims
    assert claim.rejected and [s.level for s in claim.statuses] == ["claim", "provider"]


def test_accepted_batches_are_no_rejection():
    ack = parse_277ca_file(rebuilt(ACCEPTED, without_claims))
    assert ack.claims == [] and ack.batches == []
    assert parse_277ca_file(ACCEPTED).batches == []


@pytest.mark.parametrize(
    "old, new, element",
    [
        ("*X*005010X214~", "*X*005010X212~", "GS08"),
        ("*005010X214~BHT", "*005010X212~BHT", "ST03"),
        ("*X*005010X214~", "*X*004010X093A1~", "GS08"),
    ],
)
def test_a_277_that_is_not_a_277ca_is_refused_with_its_version(old, new, element):
    assert old in ACCEPTED.replace("\n", "")
    text = ACCEPTED.replace("\n", "").replace(old, new)
    with pytest.raises(X12Error) as err:
        parse_277ca(text)
    version = new.strip("*X~BHT")
    assert str(err.value).startswith(f"segment {2 if element == 'GS08' else 3} (")
    assert f"{element} is {version}, not 005010X214: not a 277CA claim acknowledgement" in str(
        err.value
    )


def test_a_version_that_is_no_version_is_not_quoted():
    text = ACCEPTED.replace("*X*005010X214~", "*X*DOE JOHN~")
    with pytest.raises(X12Error) as err:
        parse_277ca(text)
    assert "DOE" not in str(err.value) and "GS08 is (a 8-character value" in str(err.value)


def test_the_real_files_pass_the_version_check():
    assert parse_277ca(ACCEPTED) and parse_277ca(REJECTED)
