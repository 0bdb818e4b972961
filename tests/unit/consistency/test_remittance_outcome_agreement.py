"""One rule per fact: payments decides a remittance's outcome, billing and followup read it.

Every claim payment of every sample 835 (real payer files and the project's own) goes through
payments' remittance.received builder; billing's claim status and followup's claim state after it
must be the same, and each follows from the outcome payments carried.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from services.billing.handlers import remittance_status
from services.followup.handlers import remittance_outcome
from services.payments.domain.era import parse_835
from services.payments.posting import Posting, received_event

SAMPLES = sorted((Path(__file__).parents[2] / "fixtures" / "x12" / "835").rglob("*.835")) + sorted(
    (Path(__file__).parents[2] / "fixtures" / "x12" / "835").rglob("*.txt")
)


def _events():
    for path in SAMPLES:
        try:
            era = parse_835(path.read_text())
        except ValueError:
            continue  # the deliberately broken samples have no claims to classify
        for tx in era.transactions:
            for n, cp in enumerate(tx.claims):
                posting = Posting(
                    f"{path.name}:{n}",
                    cp.patient_control_number,
                    cp,
                    "P1",
                    1,
                    None,
                    None,
                    None,
                    None,
                )
                yield path.name, received_event(posting, "s1", "e1").payload


def test_the_samples_hold_claim_payments():
    assert len(SAMPLES) >= 10
    assert sum(1 for _ in _events()) >= 15


@pytest.mark.parametrize(
    "name,payload", list(_events()), ids=lambda v: v if isinstance(v, str) else ""
)
def test_billing_and_followup_agree(name, payload):
    assert payload.outcome in ("paid", "partially_paid", "denied", "reversed")
    assert remittance_status(payload) == remittance_outcome(payload)


def test_an_event_without_an_outcome_is_refused_not_guessed():
    payload = next(p for _, p in _events()).model_copy(update={"outcome": None})
    with pytest.raises(ValueError, match="outcome"):
        remittance_status(payload)
    with pytest.raises(ValueError, match="outcome"):
        remittance_outcome(payload)
