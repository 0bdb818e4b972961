"""What followup asks of a biller for a claim billing's scrubber held: the fields to fill
(named, no value), a timely-filing write-off when the filing limit is all that holds it, or a
correction for anything else."""

from services.followup.domain.missing_info import missing_fields, timely_filing_label
from shared.events import Reason

LATE = Reason(
    code="TIMELY_FILING_EXCEEDED",
    message="past the payer's 90-day filing limit",
    field="service_date",
)
BAD_RENDERING_NPI = Reason(
    code="RENDERING_NPI_INVALID",
    message="rendering provider NPI fails the check digit",
    field="rendering_provider.npi",
)


def test_an_invalid_rendering_npi_is_a_field_the_biller_fills():
    assert missing_fields([BAD_RENDERING_NPI, LATE]) == ["rendering_provider.npi"]


def test_the_filing_limit_alone_is_a_timely_filing_write_off():
    label = timely_filing_label([LATE])
    assert label is not None and label.startswith("Timely filing: past the payer's 90-day")
    assert "write it off" in label
    assert missing_fields([LATE]) == []


def test_anything_else_beside_the_limit_is_not_a_write_off_yet():
    assert timely_filing_label([LATE, BAD_RENDERING_NPI]) is None
    assert timely_filing_label([]) is None
