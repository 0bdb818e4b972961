"""Payments posting pieces that need neither Kafka nor Postgres: events, the unmatched-queue copy,
and how reversals pick the payment they undo (the repository read is stubbed)."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal as D
from pathlib import Path

from services.payments.domain.era import parse_835
from services.payments.domain.ledger import entry_for_claim_payment
from services.payments.domain.remittance import Adjustment, ClaimPayment
from services.payments.posting import (
    Posting,
    from_detail,
    ledger_entries,
    received_event,
    to_detail,
)
from shared.events import RemittanceReceived, parse_event

AUTHORED = Path(__file__).resolve().parents[1] / "fixtures" / "x12" / "835" / "authored"


def _claims(name: str) -> list[ClaimPayment]:
    return parse_835((AUTHORED / name).read_text()).claims


def _posting(cp: ClaimPayment, rid: str = "P1:T1:1", claim_id: str = "CLM1") -> Posting:
    return Posting(rid, claim_id, cp, "P1", 7, "ACME HEALTH PLAN", "T1", date(2024, 3, 15), "a.835")


def _cp(
    status: str, charge: str, paid: str, *cas: tuple[str, str, str], pr: str | None = None
) -> ClaimPayment:
    return ClaimPayment(
        "CLM1",
        status,
        D(charge),
        D(paid),
        None if pr is None else D(pr),
        "12",
        adjustments=[Adjustment(g, r, D(a), None, "claim") for g, r, a in cas],
    )


class StubConn:
    """Answers ``repository.unreversed_payments`` with the given payment entries, and
    ``repository.transferred_claims`` with none (no claim here is a next payer's)."""

    def __init__(self, entries: dict[str, list]):
        self.rows = [
            {
                "entry_claim": claim_id,
                "source": source,
                "account": ln.account,
                "amount": ln.amount,
                "claim_id": ln.claim_id,
                "payer_id": ln.payer_id,
            }
            for claim_id, items in entries.items()
            for source, lines in items
            for ln in lines
        ]
        self.queries = 0

    async def fetch(self, query: str, *args):
        self.queries += 1
        if "kind = 'transfer'" in query:
            return []
        return [r for r in self.rows if r["entry_claim"] in args[0]]


def test_received_event_json_is_the_envelope_json():
    for cp in _claims("claim-and-line-cas.835") + _claims("reversal-corrected.835"):
        event = received_event(_posting(cp), "SITE1", "ENC1")
        plain = RemittanceReceived(
            site_id="SITE1",
            encounter_id="ENC1",
            event_id=event.event_id,
            occurred_at=event.occurred_at,
            payload=event.payload,
        )
        assert json.loads(event.to_json()) == json.loads(plain.to_json())
        again = parse_event(event.to_json())
        assert again == plain and again.payload.paid == cp.paid
        assert again.payload.is_reversal is (cp.status_code == "22")


def test_received_event_carries_claim_and_line_adjustments():
    cp = _claims("claim-and-line-cas.835")[0]
    p = received_event(_posting(cp), "S", "E").payload
    claim_level = [(a.group, a.reason, a.amount) for a in cp.adjustments]
    line_level = [(a.group, a.reason, a.amount) for sl in cp.service_lines for a in sl.adjustments]
    assert [(a.group, a.reason, a.amount) for a in p.adjustments] == claim_level + line_level
    assert [sl.code for sl in p.service_lines] == [sl.billed_code for sl in cp.service_lines]
    assert p.patient_responsibility == (cp.patient_responsibility or 0)


def test_unmatched_copy_round_trips_without_phi():
    for cp in _claims("claim-and-line-cas.835") + _claims("denied-lq.835"):
        detail = to_detail(cp)
        text = json.dumps(detail)
        assert "TESTPATIENT" not in text and "MEM0" not in text  # no names or member ids
        back = from_detail(text)
        assert back.patient is None
        assert entry_for_claim_payment(back, "C", "P") == entry_for_claim_payment(cp, "C", "P")
        assert [sl.adjustments for sl in back.service_lines] == [
            sl.adjustments for sl in cp.service_lines
        ]


async def test_reversal_undoes_the_earlier_payment_not_the_correction_beside_it():
    paid = _cp("1", "150", "80", ("CO", "45", "50"), ("PR", "1", "20"), pr="20")
    earlier = entry_for_claim_payment(paid, "CLM1", "P1")
    conn = StubConn({"CLM1": [("remit:P1:T0:1", earlier)]})
    reversal = _cp("22", "-150", "-80", ("CO", "45", "-50"), ("PR", "1", "-20"), pr="-20")
    correction = _cp("1", "150", "80", ("CO", "45", "60"), ("PR", "1", "10"), pr="10")
    entries, failed = await ledger_entries(
        conn, [_posting(reversal, "P1:T1:1"), _posting(correction, "P1:T1:2")]
    )
    # One lookup of earlier payments and one of COB transfers for the whole batch, not per claim.
    assert failed == {} and conn.queries == 2
    (k1, s1, *_, lines1), (k2, s2, *_, lines2) = entries
    assert (k1, s1) == ("reversal", "reversal-of:P1:T0:1")
    assert lines1 == [ln._replace(amount=-ln.amount) for ln in earlier]
    assert (k2, s2) == ("payment", "remit:P1:T1:2")


async def test_reversal_finds_a_payment_earlier_in_the_same_batch():
    paid = _cp("1", "100", "60", ("CO", "45", "40"))
    reversal = _cp("22", "-100", "-60", ("CO", "45", "-40"))
    entries, failed = await ledger_entries(
        StubConn({}), [_posting(paid, "P1:T1:1"), _posting(reversal, "P1:T2:1")]
    )
    assert failed == {}
    assert [(e[0], e[1]) for e in entries] == [
        ("payment", "remit:P1:T1:1"),
        ("reversal", "reversal-of:P1:T1:1"),
    ]
    assert sum(ln.amount for e in entries for ln in e[5] if ln.account == "payer_receivable") == 0


async def test_reversal_without_a_matching_payment_posts_its_own_negative_amounts():
    other = entry_for_claim_payment(_cp("1", "100", "55", ("CO", "45", "45")), "CLM1", "P1")
    reversal = _cp("22", "-100", "-60", ("CO", "45", "-40"))
    entries, failed = await ledger_entries(
        StubConn({"CLM1": [("remit:P1:T0:1", other)]}), [_posting(reversal, "P1:T9:1")]
    )
    assert failed == {}
    ((kind, source, *_, lines),) = entries
    assert (kind, source) == ("reversal", "remit:P1:T9:1")
    assert {ln.account: ln.amount for ln in lines} == {
        "cash_clearing": D("-60.00"),
        "contractual_adjustment": D("-40.00"),
        "payer_receivable": D("100.00"),
    }


def test_a_placed_claim_payment_keeps_its_copy_only_while_it_waits():
    """A posted CLP's claim_payment row has its posting time and no copy; a held or unmatched one
    keeps a copy (to be posted when it can be) and no posting time."""
    from datetime import UTC, datetime

    from services.payments.posting import Placement

    now = datetime(2024, 3, 15, 12, 0, tzinfo=UTC)
    cp = _claims("claim-and-line-cas.835")[0]
    posted = Placement("P1:T1:1", 7, 1, "CLM1", cp, "P1", "posted", "claim_id", None).row(now)
    waiting = Placement("P1:T1:2", 7, 2, None, cp, "P1", "unmatched", "unmatched", "no match")
    row = waiting.row(now)
    assert (posted.state, posted.posted_at, posted.detail) == ("posted", now, None)
    assert (posted.claim_id, posted.match_method, posted.position) == ("CLM1", "claim_id", 1)
    assert (row.state, row.posted_at, row.claim_id, row.reason) == (
        "unmatched",
        None,
        None,
        "no match",
    )
    assert json.loads(row.detail) == to_detail(cp)  # the PHI-free copy it is posted from later
    assert (row.patient_control_number, row.charge, row.paid) == (
        cp.patient_control_number,
        cp.charge,
        cp.paid,
    )
