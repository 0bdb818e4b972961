from datetime import date
from decimal import Decimal

import pytest

from services.billing.domain.chargemaster import load_sample_chargemaster
from services.billing.domain.claim import build_claim
from services.billing.domain.ncci import load_sample_ncci
from services.billing.domain.scrubber import parse_mue, parse_ncci_ptp, scrub
from shared.events import CodedProcedure as P
from tests.unit.billing.billing_support import make_coded

CM = load_sample_chargemaster("north-clinic")
NCCI = load_sample_ncci()


def findings(procs, **kw):
    claim = build_claim(make_coded(procedures=procs, **kw), claim_id="C-1", chargemaster=CM)
    return [(r.code, r.field) for r in scrub(claim, is_billable=lambda c, d: True, ncci=NCCI)]


def test_sample_tables_load_in_cms_layouts():
    assert len(NCCI.mue) == 13
    (edit,) = NCCI.ptp_edits("80048", "80053")
    assert (edit.column1, edit.column2, edit.modifier_indicator) == ("80053", "80048", "0")
    assert edit.effective == date(1996, 1, 1) and edit.deleted is None
    assert NCCI.mue["20610"].adjudication_indicator == "1"
    assert NCCI.mue["36415"].max_units == Decimal(2)


def test_ptp_pair_not_bypassable_flags_column_two_line():
    procs = [
        P(code="80048", diagnosis_pointers=[1]),
        P(code="80053", modifiers=["59"], diagnosis_pointers=[1]),
    ]
    assert findings(procs) == [("NCCI_PTP", "lines[0].code")]


def test_ptp_modifier_indicator_1_is_bypassed_by_59_or_xu():
    procs = [P(code="20610", diagnosis_pointers=[1]), P(code="96372", diagnosis_pointers=[1])]
    assert findings(procs) == [("NCCI_PTP", "lines[1].code")]
    procs[1] = P(code="96372", modifiers=["XU"], diagnosis_pointers=[1])
    assert findings(procs) == []


def test_ptp_pairs_on_different_dates_or_deleted_edits_do_not_fire():
    procs = [
        P(code="80053", diagnosis_pointers=[1]),
        P(code="80048", diagnosis_pointers=[1], service_date=date(2024, 3, 6)),
    ]
    assert findings(procs) == []
    deleted = [P(code="99213", diagnosis_pointers=[1]), P(code="94640", diagnosis_pointers=[1])]
    assert findings(deleted) == []  # edit deleted 2021-01-01; service in 2024
    assert findings(deleted, service_date=date(2020, 6, 1)) == [("NCCI_PTP", "lines[1].code")]


def test_mue_per_date_of_service_sums_lines_and_per_line_checks_each():
    procs = [
        P(code="36415", units=Decimal(2), diagnosis_pointers=[1]),
        P(code="36415", units=Decimal(1), diagnosis_pointers=[1]),
    ]
    assert findings(procs) == [("MUE_EXCEEDED", "lines[0].units")]
    line_edit = [
        P(code="20610", units=Decimal(2), diagnosis_pointers=[1]),
        P(code="20610", modifiers=["LT"], units=Decimal(2), diagnosis_pointers=[1]),
    ]
    assert findings(line_edit) == []
    line_edit[1] = P(code="20610", units=Decimal(3), diagnosis_pointers=[1])
    assert findings(line_edit) == [("MUE_EXCEEDED", "lines[1].units")]


def test_parsers_accept_csv_ptp_and_skip_notice_lines():
    t = parse_ncci_ptp(
        '"notice"\n"Column 1","Column 2"\n"93000","93005","*","19960101","*","0","x"\n'
    )
    assert list(t.ptp) == [("93000", "93005")]
    t = parse_mue("99213\t1\t2 Date of Service Edit: Policy\n", t)
    assert t.mue["99213"].max_units == 1 and ("93000", "93005") in t.ptp


@pytest.mark.parametrize(
    "text, message",
    [
        ("93000\t93005\t*\t1996-01-01\t*\t0\n", "PTP line 1, column 4"),
        ("93000\t93005\t*\t19960101\t*\t5\n", "PTP line 1, column 6"),
        ("93000\t93005\t*\n", "PTP line 1: expected at least 6 columns"),
    ],
)
def test_ptp_parse_errors_name_the_line(text, message):
    with pytest.raises(ValueError, match=message):
        parse_ncci_ptp(text)


def test_mue_parse_error_names_the_line():
    with pytest.raises(ValueError, match="MUE line 2, column 3"):
        parse_mue('"HCPCS","MUE"\n"99213","1","Line"\n')
