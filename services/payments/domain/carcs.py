"""Which adjustment reasons (CARCs) are the contract working as agreed: one table for the
remittance outcome, the ledger posting and the decision carried on each adjustment of
``remittance.received`` (followup works the others as denials and does not keep its own list).

An adjustment is one of three things:

- **contractual**: group CO with a CARC of ``CONTRACTUAL_CARCS``. Posted to
  ``contractual_adjustment``; never a reason to chase the payer.
- **beyond the contract**: any other payer adjustment (CO with another CARC, such as CO-50
  not medically necessary or CO-97 bundled; OA, PI and CR ones). These are what make a
  remittance ``partially_paid`` and what followup works. A CO one is still a write-off the
  provider may not bill to the patient (the CO group says so), but it is a denial of a service,
  not the contract: the ledger posts it to ``other_adjustment``, with OA/PI/CR, until an appeal
  reverses it.
- **neither**: the patient's share (group PR), and the prior payer's adjudication (CARC 23,
  on a secondary or tertiary payment), which is the prior payer's, posted by its own entry.

The group decides the ledger account; the CARC decides whether the payer reduced anything
beyond what was agreed. So an OA or PI adjustment with a contractual CARC (OA-94 on a
crossover, PI-45) goes to ``other_adjustment`` (there is no contract behind an OA/PI group)
yet is not beyond the contract: the payer paid what it agreed to.
"""

from __future__ import annotations

# CARC -> why it is the contract, not a denial (our own short words; X12 owns the wording).
CONTRACTUAL_REASONS = {
    "24": "capitation: covered by the capitation or managed-care agreement",
    "42": "above the fee schedule (retired; payers now send 45)",
    "45": "above the fee schedule or contracted/legislated fee arrangement",
    "59": "multiple or concurrent procedure rules",
    "94": "processed in excess of charges",
    "104": "managed-care withholding",
    "131": "claim-specific negotiated discount",
    "144": "incentive adjustment",
    "172": "payment adjusted for the provider's specialty",
    "253": "sequestration (mandated reduction of federal payments)",
    "A2": "contractual adjustment (retired; payers now send 45)",
    "W1": "workers' compensation jurisdictional fee schedule",
}
CONTRACTUAL_CARCS = frozenset(CONTRACTUAL_REASONS)
PRIOR_PAYER_IMPACT = "23"  # impact of prior payer(s) adjudication, incl. payments/adjustments
CONTRACTUAL_GROUP = "CO"
PATIENT_GROUP = "PR"


def is_contractual(group: str, reason: str) -> bool:
    """CO with a contractual CARC: posted to ``contractual_adjustment``."""
    return group == CONTRACTUAL_GROUP and reason in CONTRACTUAL_CARCS


def is_beyond_contract(group: str, reason: str) -> bool:
    """A payer reduction beyond what was agreed: not the patient's share, not a contractual
    CARC, not the prior payer's adjudication."""
    return (
        group != PATIENT_GROUP and reason not in CONTRACTUAL_CARCS and reason != PRIOR_PAYER_IMPACT
    )
