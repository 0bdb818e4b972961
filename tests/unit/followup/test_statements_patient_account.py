"""Statements after patient payments and payment plans (issue 21 item 4): dunning pauses while
a plan is current, payments received reduce the amount due, the plan's status is shown."""

from datetime import date, timedelta
from decimal import Decimal as D

from services.followup.domain.statements import (
    StatementLine,
    build_statement,
    needs_statement,
    plan_line,
    render_pdf,
)

DAY = date(2026, 6, 1)


def test_a_current_plan_pauses_dunning_and_a_defaulted_one_resumes_it():
    later = DAY + timedelta(days=31)
    assert needs_statement(D("90"), D("5"), DAY, 0, later) == 1
    assert needs_statement(D("90"), D("5"), DAY, 0, later, plan_current=True) is None
    assert needs_statement(D("90"), D("5"), DAY, 1, later, plan_current=True) is None
    # the first statement still goes out (it shows the plan)
    assert needs_statement(D("90"), D("5"), None, None, DAY, plan_current=True) == 0


def test_payments_received_reduce_the_amount_due_and_the_plan_line_is_printed(tmp_path):
    from pypdf import PdfReader

    line = StatementLine(DAY, "99213", "Services (claim C1)", D("150"), D("60"), D("0"), D("90"))
    plan = plan_line("active", D("30.00"), "weekly", DAY + timedelta(days=7))
    assert plan == "Payment plan: active, $30.00 a week; next instalment due 2026-06-08"
    st = build_statement(
        "ST1",
        "A1",
        "Clinic",
        "Pat Tester",
        ["1 Main St"],
        [line],
        DAY,
        0,
        payments_received=D("30.00"),
        plan=plan,
    )
    assert st.amount_due == D("60.00")
    text = "".join(p.extract_text() for p in PdfReader(render_pdf(st, tmp_path / "s.pdf")).pages)
    assert "Amount due: $60.00" in text and "Your payments" in text and "-$30.00" in text
    assert "Payment plan: active, $30.00 a week" in text


def test_plan_lines_per_status():
    assert plan_line(None, None, None, None) is None
    assert plan_line("defaulted", D("25.00"), "monthly", None).startswith("Payment plan: defaulted")
    assert (
        plan_line("completed", D("25.00"), "monthly", None) == "Payment plan: completed, thank you"
    )
