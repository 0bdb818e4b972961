"""Patient statements: what the patient owes after insurance, and the dunning cycle.

Cycle 0 is the first statement; reminders follow every 30 days (cycles 1, 2, 3 at
30/60/90 days after the first), each with a firmer message, until the balance is
paid. After cycle 3 (final notice) no more statements go out: the account is
for a collections decision, which is not made here. While the patient keeps to a payment plan
(an active plan) dunning pauses: no further cycle goes out until the plan defaults.

The guarantor's name and address are PHI: they appear in the PDF only, never in
exceptions, logs or events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

CENT = Decimal("0.01")
DUNNING_INTERVAL_DAYS = 30
FINAL_CYCLE = 3
DUE_DAYS = 21  # days from the statement date to the due date

CYCLE_MESSAGES = {
    0: "This statement shows the balance left after your insurance processed your claim.",
    1: "Reminder: we have not received payment for the balance below. "
    "Please pay by the due date or call us to set up a payment plan.",
    2: "PAST DUE: your balance is 60 days past the first statement. "
    "Please pay now or call us today to discuss payment options.",
    3: "FINAL NOTICE: your balance is 90 days past due. If it is not paid or a payment "
    "plan arranged by the due date, the account may be referred to a collection agency.",
}

# Fictitious payment channels; a site supplies its own text in production.
DEFAULT_HOW_TO_PAY = (
    "Online: https://pay.example.com (enter your statement number)",
    "Phone: (555) 010-0199, Monday to Friday, 8am to 5pm",
    "Mail: a check payable to the practice, with the remittance stub, "
    "to PO Box 0000, Springfield, ZZ 00000",
)


@dataclass(frozen=True, slots=True)
class StatementLine:
    service_date: date
    code: str
    description: str
    billed: Decimal
    insurance_paid: Decimal
    adjustments: Decimal
    patient_due: Decimal


@dataclass(frozen=True)
class Statement:
    statement_id: str
    account_key: str  # opaque patient account number (not PHI by itself)
    practice_name: str
    guarantor_name: str  # PHI: PDF only
    guarantor_address: tuple[str, ...]  # PHI: PDF only
    statement_date: date
    due_date: date
    cycle: int
    lines: tuple[StatementLine, ...]
    payments_received: Decimal = Decimal("0.00")  # patient payments taken, less refunds issued
    plan: str | None = None  # the payment plan's status line, when the account has one
    how_to_pay: tuple[str, ...] = DEFAULT_HOW_TO_PAY
    claim_ids: tuple[str, ...] = field(default=())

    @property
    def message(self) -> str:
        return CYCLE_MESSAGES[self.cycle]

    @property
    def totals(self) -> dict[str, Decimal]:
        keys = ("billed", "insurance_paid", "adjustments", "patient_due")
        return {k: sum((getattr(ln, k) for ln in self.lines), Decimal("0.00")) for k in keys}

    @property
    def amount_due(self) -> Decimal:
        return amount_due(self.totals["patient_due"], self.payments_received)


def amount_due(patient_due: Decimal, payments_received: Decimal) -> Decimal:
    """What a patient account owes: what the payers left to the patient less the patient's
    payments (less refunds issued); negative is a credit. The one rule for statements and the
    A/R aging's patient row."""
    return (patient_due - payments_received).quantize(CENT)


def build_statement(
    statement_id: str,
    account_key: str,
    practice_name: str,
    guarantor_name: str,
    guarantor_address: Sequence[str],
    lines: Sequence[StatementLine],
    statement_date: date,
    cycle: int,
    payments_received: Decimal = Decimal("0.00"),
    how_to_pay: Sequence[str] = DEFAULT_HOW_TO_PAY,
    claim_ids: Sequence[str] = (),
    plan: str | None = None,
) -> Statement:
    """Assemble a statement; the due date is ``DUE_DAYS`` after the statement date.

    Raises ``ValueError`` (naming the statement id and line number, never the
    guarantor) for an unknown cycle, no lines, a float amount or a line whose
    patient due differs from billed - insurance paid - adjustments.
    """
    where = f"statement {statement_id}"
    if cycle not in CYCLE_MESSAGES:
        raise ValueError(f"{where}: cycle must be 0..{FINAL_CYCLE}, not {cycle!r}")
    if not lines:
        raise ValueError(f"{where}: no service lines")
    clean_lines = []
    for n, ln in enumerate(lines, start=1):
        amounts = (ln.billed, ln.insurance_paid, ln.adjustments, ln.patient_due)
        if any(not isinstance(a, Decimal) for a in amounts):
            raise ValueError(f"{where} line {n}: amounts must be Decimal")
        billed, paid, adj, due = (a.quantize(CENT) for a in amounts)
        if billed - paid - adj != due:
            raise ValueError(
                f"{where} line {n}: patient due {due} != billed {billed} - insurance paid "
                f"{paid} - adjustments {adj}"
            )
        clean_lines.append(
            StatementLine(ln.service_date, ln.code, ln.description, billed, paid, adj, due)
        )
    return Statement(
        statement_id=statement_id,
        account_key=account_key,
        practice_name=practice_name,
        guarantor_name=guarantor_name,
        guarantor_address=tuple(guarantor_address),
        statement_date=statement_date,
        due_date=statement_date + timedelta(days=DUE_DAYS),
        cycle=cycle,
        lines=tuple(clean_lines),
        payments_received=payments_received.quantize(CENT),
        how_to_pay=tuple(how_to_pay),
        claim_ids=tuple(claim_ids),
        plan=plan,
    )


def needs_statement(
    balance: Decimal,
    threshold: Decimal,
    last_statement_date: date | None,
    cycle: int | None,
    as_of: date,
    plan_current: bool = False,
) -> int | None:
    """The cycle of the statement due on ``as_of``, or None when none is due.

    ``cycle`` is the last cycle issued (None if none yet). Nothing is due when
    the balance is paid (<= 0) or not above ``threshold``; the first statement
    (cycle 0) is due at once; each later cycle 30 days after the previous one,
    up to the final notice (cycle 3), unless ``plan_current`` (the patient keeps to
    a payment plan): dunning then pauses where it is. Raises ``ValueError`` for an
    impossible cycle.
    """
    if balance <= 0 or balance <= threshold:
        return None
    if cycle is None or last_statement_date is None:
        return 0
    if not 0 <= cycle <= FINAL_CYCLE:
        raise ValueError(f"cycle must be 0..{FINAL_CYCLE} or None, not {cycle!r}")
    if cycle == FINAL_CYCLE or plan_current:
        return None
    if (as_of - last_statement_date).days >= DUNNING_INTERVAL_DAYS:
        return cycle + 1
    return None


PERIOD_WORDS = {"weekly": "a week", "biweekly": "every two weeks", "monthly": "a month"}


def plan_line(
    status: str | None, instalment: Decimal | None, period: str | None, next_due: date | None
) -> str | None:
    """The statement's line about the account's payment plan (None without one)."""
    if status is None:
        return None
    terms = f"{_money(instalment)} {PERIOD_WORDS.get(period, period)}" if instalment else ""
    text = {
        "active": f"Payment plan: active, {terms}",
        "defaulted": f"Payment plan: defaulted (an instalment was missed), was {terms}",
        "completed": "Payment plan: completed, thank you",
    }.get(status, f"Payment plan: {status}")
    if status == "active" and next_due is not None:
        text += f"; next instalment due {next_due.isoformat()}"
    return text


def _money(d: Decimal) -> str:
    return f"${d:,.2f}" if d >= 0 else f"-${-d:,.2f}"


def render_pdf(statement: Statement, path: str | Path) -> Path:
    """Render the statement to a PDF file at ``path`` (parent directories created).

    Output is deterministic for the same statement (reportlab invariant mode).
    """
    from xml.sax.saxutils import escape

    from reportlab.lib import colors
    from reportlab.lib.pagesizes import LETTER
    from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
    from reportlab.lib.units import inch
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    styles = getSampleStyleSheet()
    body = styles["BodyText"]
    due_style = ParagraphStyle("due", parent=styles["Heading1"], textColor=colors.darkred)
    s = statement
    story = [
        Paragraph(escape(s.practice_name), styles["Title"]),
        Paragraph(
            f"Patient statement {escape(s.statement_id)} &nbsp; | &nbsp; "
            f"Account {escape(s.account_key)} &nbsp; | &nbsp; "
            f"Statement date {s.statement_date.isoformat()}",
            body,
        ),
        Spacer(1, 0.2 * inch),
        Paragraph("<br/>".join(escape(x) for x in (s.guarantor_name, *s.guarantor_address)), body),
        Spacer(1, 0.2 * inch),
        Paragraph(f"Amount due: {_money(s.amount_due)}", due_style),
        Paragraph(f"<b>Please pay by {s.due_date.isoformat()}</b>", body),
        Spacer(1, 0.1 * inch),
        Paragraph(escape(s.message), body),
        *([Paragraph(f"<b>{escape(s.plan)}</b>", body)] if s.plan else []),
        Spacer(1, 0.2 * inch),
    ]
    head = ["Date", "Code", "Description", "Billed", "Insurance paid", "Adjustments", "You owe"]
    rows = [head]
    for ln in s.lines:
        rows.append(
            [
                ln.service_date.isoformat(),
                ln.code,
                Paragraph(escape(ln.description), body),
                _money(ln.billed),
                _money(ln.insurance_paid),
                _money(ln.adjustments),
                _money(ln.patient_due),
            ]
        )
    t = s.totals
    rows.append(
        [
            "",
            "",
            "Totals",
            _money(t["billed"]),
            _money(t["insurance_paid"]),
            _money(t["adjustments"]),
            _money(t["patient_due"]),
        ]
    )
    if s.payments_received:
        rows.append(["", "", "Your payments", "", "", "", _money(-s.payments_received)])
    rows.append(["", "", "Amount due", "", "", "", _money(s.amount_due)])
    widths = [0.9, 0.6, 2.0, 0.8, 1.0, 0.9, 0.8]
    table = Table(rows, colWidths=[w * inch for w in widths], repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, 0), colors.lightgrey),
                ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
                ("FONTSIZE", (0, 0), (-1, -1), 8),
                ("ALIGN", (3, 0), (-1, -1), "RIGHT"),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("GRID", (0, 0), (-1, len(s.lines)), 0.25, colors.grey),
                ("LINEABOVE", (0, len(s.lines) + 1), (-1, len(s.lines) + 1), 1, colors.black),
                ("FONTNAME", (0, -1), (-1, -1), "Helvetica-Bold"),
            ]
        )
    )
    story += [table, Spacer(1, 0.3 * inch), Paragraph("<b>How to pay</b>", body)]
    story += [Paragraph(escape(x), body) for x in s.how_to_pay]
    doc = SimpleDocTemplate(
        str(path),
        pagesize=LETTER,
        title=f"Statement {s.statement_id}",
        invariant=1,
        leftMargin=0.6 * inch,
        rightMargin=0.6 * inch,
    )
    doc.build(story)
    return path
