"""remittance.received names the crossover carrier (835 loop 2100 NM1*TT), by id or else by
name, so that billing waits for that payer's 835 instead of billing it (its ``is_crossover``)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from rcm.simulation.payer.domain import AdjudicationRules, FeeSchedule, adjudicate, read_837
from rcm.simulation.payer.domain.write_835 import PayeeInfo, PayerInfo, build_835
from services.payments.domain.era import parse_835
from services.payments.posting import Posting, received_event
from shared.events import Address
from tests.unit.billing.billing_support import coverage
from tests.unit.billing.test_billing_cob import MEDICAID, claim, write

ON = date(2024, 4, 10)
MEDICARE = coverage(
    payer_id="MCR01",
    payer_name="Medicare Part B",
    member_id="1EG4TE5MK73",
    group_number=None,
    filing_indicator="MB",
)
RULES = AdjudicationRules(seed=7, denial_rate=Decimal("0"), crossover_lost_rate=Decimal("0"))


def _era(coverages) -> str:
    sub = read_837(write(claim(coverages=coverages))).claims[0]
    decided = adjudicate(sub, RULES, FeeSchedule.from_csv(), ON)
    return build_835(
        [decided],
        payer=PayerInfo(
            "MCR01",
            "Medicare Part B",
            Address(line1="1 Payer Way", city="Columbus", state="OH", postal_code="43215"),
        ),
        payee=PayeeInfo(sub.billing_provider_name, sub.billing_provider_npi or "", "123456789"),
        trace_number="T1",
        payment_date=ON,
        interchange_control_number=1,
        group_control_number=1,
        created_at=datetime(2024, 4, 10, 9, tzinfo=UTC),
    )


def _event(text: str):
    cp = parse_835(text).transactions[0].claims[0]
    posting = Posting("R1", cp.patient_control_number, cp, "MCR01", 1, None, None, None, None)
    return received_event(posting, "s1", "e1").payload


def test_the_crossover_carrier_is_named_by_its_id():
    text = _era([MEDICARE, MEDICAID])
    assert "NM1*TT*2*" in text and "*PI*MCD01~" in text
    p = _event(text)
    assert p.status_code == "19" and p.crossover_carrier == "MCD01"


def test_by_its_name_when_the_835_gives_no_id():
    text = _era([MEDICARE, MEDICAID])
    start = text.index("NM1*TT*")
    seg = text[start : text.index("~", start)]
    name = seg.split("*")[3]
    text = text.replace(seg, f"NM1*TT*2*{name}")
    assert _event(text).crossover_carrier == name


def test_none_without_nm1_tt():
    text = _era([MEDICARE])
    assert "NM1*TT" not in text
    assert _event(text).crossover_carrier is None
