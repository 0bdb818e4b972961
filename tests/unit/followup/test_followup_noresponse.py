from datetime import date
from decimal import Decimal as D

from services.billing.domain.payer_rules import load_sample_payer_rules
from services.followup.domain.noresponse import ClaimTrack, find_no_response

AS_OF = date(2024, 6, 30)
BILLING_RULES = load_sample_payer_rules()  # the filing limits: billing's, carried on the event


def track(claim, payer="AETNA1", submitted=date(2024, 6, 1), **kw):
    service = kw.pop("service", date(2024, 5, 20))
    deadline = BILLING_RULES.filing_deadline(payer, kw.get("filing_indicator"), service)
    return ClaimTrack(
        claim,
        payer,
        service,
        submitted,
        kw.pop("charge", D("100.00")),
        filing_deadline=kw.pop("filing_deadline", deadline),
        **kw,
    )


def test_no_ack_after_n_days_and_no_payment_after_m_days():
    claims = [
        track("ACK-DUE", submitted=date(2024, 6, 27)),  # 3 days, no 277CA: AETNA N=3
        track("ACK-WAIT", submitted=date(2024, 6, 28)),  # 2 days: not yet
        track("PAY-DUE", submitted=date(2024, 5, 31), acknowledged_on=date(2024, 6, 1)),  # 30 d
        track("PAY-WAIT", submitted=date(2024, 6, 1), acknowledged_on=date(2024, 6, 2)),  # 29 d
        track("PAID", submitted=date(2024, 1, 2), remitted_on=date(2024, 2, 1)),
        track("ASKED", submitted=date(2024, 1, 2), last_inquiry_on=date(2024, 6, 20)),
        track(
            "ASKED-LONG-AGO",
            submitted=date(2024, 5, 1),
            acknowledged_on=date(2024, 5, 2),
            last_inquiry_on=date(2024, 6, 1),
        ),
    ]
    found = {n.claim_id: n for n in find_no_response(claims, AS_OF)}
    assert set(found) == {"ACK-DUE", "PAY-DUE", "ASKED-LONG-AGO"}
    assert (found["ACK-DUE"].reason, found["ACK-DUE"].days_waiting) == ("no_277ca", 3)
    assert found["ACK-DUE"].threshold_days == 3
    assert (found["PAY-DUE"].reason, found["PAY-DUE"].days_waiting) == ("no_835", 30)
    # Aster Health (AETNA1): 180 days from 2024-05-20 by billing's payer rules -> 2024-11-16,
    # 139 days left (followup's own 120-day AETNA* limit gave 2024-09-17, 79 days, before)
    assert found["PAY-DUE"].filing_deadline == date(2024, 11, 16)
    assert found["PAY-DUE"].days_to_filing_deadline == 139
    assert found["PAY-DUE"].escalation == "normal"


def test_per_payer_thresholds_and_priority_order():
    claims = [
        # Medicaid waits 45 days for an 835; 40 days is not overdue yet
        track(
            "MCD", payer="MCD-OH", submitted=date(2024, 5, 21), acknowledged_on=date(2024, 5, 22)
        ),
        # near its filing deadline (billing's default, 90 days): urgent, ranks first
        track("OLD", payer="X1", service=date(2024, 4, 5), submitted=date(2024, 6, 20)),
        track(
            "BIG",
            payer="X1",
            service=date(2024, 6, 1),
            submitted=date(2024, 6, 20),
            charge=D("900.00"),
        ),
    ]
    found = find_no_response(claims, AS_OF)
    assert [n.claim_id for n in found] == ["OLD", "BIG"]
    assert found[0].escalation == "urgent" and found[0].days_to_filing_deadline == 4
    assert found[0].priority > found[1].priority


def test_a_claim_without_a_filing_deadline_is_chased_without_one():
    # projected before claim.submitted carried billing's deadline: still chased, no escalation
    [n] = find_no_response(
        [track("OLD-ROW", submitted=date(2024, 5, 1), filing_deadline=None)], AS_OF
    )
    assert (n.reason, n.filing_deadline, n.days_to_filing_deadline) == ("no_277ca", None, None)
    assert (n.escalation, n.priority) == ("normal", 100)
