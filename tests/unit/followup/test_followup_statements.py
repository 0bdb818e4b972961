from datetime import date
from decimal import Decimal as D

import pytest
from pypdf import PdfReader

from services.followup.domain.statements import (
    CYCLE_MESSAGES,
    StatementLine,
    build_statement,
    needs_statement,
    render_pdf,
)

LINES = [
    StatementLine(
        date(2024, 3, 4),
        "99213",
        "Office visit, established",
        D("150.00"),
        D("80.00"),
        D("40.00"),
        D("30.00"),
    ),
    StatementLine(
        date(2024, 3, 4), "29540", "Ankle strapping", D("60.00"), D("20.00"), D("15.00"), D("25.00")
    ),
]


def make(cycle=0, paid=D("0.00")):
    return build_statement(
        "ST-000123",
        "ACCT-77",
        "Springfield Urgent Care",
        "Jane Q Patient",
        ["12 Elm St", "Springfield, ZZ 00000"],
        LINES,
        date(2024, 4, 1),
        cycle,
        payments_received=paid,
        claim_ids=["CLM001"],
    )


def test_totals_amount_due_and_due_date():
    s = make()
    assert s.totals == {
        "billed": D("210.00"),
        "insurance_paid": D("100.00"),
        "adjustments": D("55.00"),
        "patient_due": D("55.00"),
    }
    assert s.amount_due == D("55.00")
    assert s.due_date == date(2024, 4, 22)
    assert make(paid=D("20.00")).amount_due == D("35.00")


def test_messages_escalate_by_cycle():
    assert make(0).message == CYCLE_MESSAGES[0]
    assert "Reminder" in make(1).message
    assert "PAST DUE" in make(2).message
    assert "FINAL NOTICE" in make(3).message and "collection" in make(3).message


def test_bad_statement_names_statement_and_line_not_the_guarantor():
    bad = [StatementLine(date(2024, 3, 4), "99213", "x", D("10"), D("5"), D("1"), D("1"))]
    with pytest.raises(ValueError, match="statement ST-9 line 1: patient due") as e:
        build_statement("ST-9", "A", "P", "Jane Q Patient", [], bad, date(2024, 4, 1), 0)
    assert "Jane" not in str(e.value)
    with pytest.raises(ValueError, match="cycle"):
        build_statement("ST-9", "A", "P", "G", [], LINES, date(2024, 4, 1), 4)
    with pytest.raises(ValueError, match="no service lines"):
        build_statement("ST-9", "A", "P", "G", [], [], date(2024, 4, 1), 0)


def test_pdf_is_written_and_reads_back_with_amount_due(tmp_path):
    s = make(cycle=2, paid=D("5.00"))
    path = render_pdf(s, tmp_path / "out" / "ST-000123.pdf")
    assert path.exists() and path.read_bytes().startswith(b"%PDF")
    text = "\n".join(page.extract_text() for page in PdfReader(str(path)).pages)
    assert "Amount due: $50.00" in text
    assert "Please pay by 2024-04-22" in text
    assert "PAST DUE" in text
    for expected in ("99213", "29540", "$150.00", "$210.00", "$80.00", "-$5.00", "ST-000123"):
        assert expected in text, expected
    assert "How to pay" in text and "pay.example.com" in text
    # deterministic output: same statement, same bytes
    again = render_pdf(s, tmp_path / "again.pdf")
    assert again.read_bytes() == path.read_bytes()


T = D("5.00")


@pytest.mark.parametrize(
    ("balance", "last", "cycle", "as_of", "expected"),
    [
        ("55.00", None, None, date(2024, 4, 1), 0),  # first statement at once
        ("5.00", None, None, date(2024, 4, 1), None),  # not above the threshold
        ("0.00", None, None, date(2024, 4, 1), None),
        ("55.00", date(2024, 4, 1), 0, date(2024, 4, 30), None),  # 29 days: not yet
        ("55.00", date(2024, 4, 1), 0, date(2024, 5, 1), 1),  # 30 days: reminder
        ("55.00", date(2024, 5, 1), 1, date(2024, 5, 31), 2),  # 60 days: past due
        ("55.00", date(2024, 5, 31), 2, date(2024, 6, 30), 3),  # 90 days: final notice
        ("55.00", date(2024, 6, 30), 3, date(2024, 12, 31), None),  # no cycle after final
        ("0.00", date(2024, 5, 1), 1, date(2024, 6, 30), None),  # paid: stop
        ("-3.00", date(2024, 5, 1), 1, date(2024, 6, 30), None),  # credit: stop
    ],
)
def test_dunning_schedule(balance, last, cycle, as_of, expected):
    assert needs_statement(D(balance), T, last, cycle, as_of) == expected


def test_dunning_walk_30_60_90_from_first_statement():
    issued = []
    last, cycle = None, None
    day = date(2024, 4, 1)
    for offset in range(0, 200):
        as_of = date.fromordinal(day.toordinal() + offset)
        nxt = needs_statement(D("55.00"), T, last, cycle, as_of)
        if nxt is not None:
            issued.append(((as_of - day).days, nxt))
            last, cycle = as_of, nxt
    assert issued == [(0, 0), (30, 1), (60, 2), (90, 3)]


def test_impossible_cycle_raises():
    with pytest.raises(ValueError, match="cycle"):
        needs_statement(D("10"), T, date(2024, 1, 1), 7, date(2024, 3, 1))
