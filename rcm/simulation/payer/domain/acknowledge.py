"""The 277CA front door: accept a claim into adjudication or reject it.

Claims with obviously bad data are always rejected (missing member id, a billing NPI
that fails its check digit, lines that do not add up to the claim total); a small
deterministic share of the rest is rejected as a real payer's eligibility and provider
files would. Accepted claims get the payer claim control number the 835 will carry.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from shared.npi import is_valid_npi

from .draw import draw, payer_claim_control_number, pick
from .model import AckDecision, SubmittedClaim

if TYPE_CHECKING:
    from .adjudicate import AdjudicationRules

# (category, status code, entity, message): 277CA STC01 composites.
_RANDOM_REJECTIONS = (
    ("A7", "33", "IL", "subscriber and subscriber id not found"),
    ("A7", "562", "85", "billing provider NPI not on file with the payer"),
    ("A7", "164", "IL", "subscriber contract/member number invalid"),
)


def npi_is_valid(npi: str | None) -> bool:
    """10 digits, leading 1 or 2, Luhn check digit over 80840 + the first 9 digits."""
    return bool(npi) and is_valid_npi(npi)


def _reject(category: str, code: str, entity: str | None, message: str) -> AckDecision:
    return AckDecision(False, category, code, message, entity)


def acknowledge(claim: SubmittedClaim, rules: AdjudicationRules | None = None) -> AckDecision:
    """Decide whether ``claim`` enters adjudication (277CA). Deterministic; never raises.

    Without ``rules`` the seed is 0 and the random rejection share 2%.
    """
    seed = rules.seed if rules is not None else 0
    share = rules.ack_reject_rate if rules is not None else None
    if not claim.member_id:
        return _reject("A6", "164", "IL", "subscriber member id missing")
    if not claim.billing_provider_npi:
        return _reject("A6", "562", "85", "billing provider NPI missing")
    if not npi_is_valid(claim.billing_provider_npi):
        return _reject("A7", "562", "85", "billing provider NPI fails the check digit")
    if claim.line_charge_total != claim.total_charge:
        return _reject("A7", "400", None, "claim is out of balance: lines do not sum to CLM02")
    if claim.frequency_code not in {"1", "7", "8"}:
        return _reject(
            "A7", "535", None, f"claim frequency code {claim.frequency_code!r} not accepted"
        )
    threshold = share if share is not None else Decimal("0.02")
    if draw(seed, claim.claim_id, "ack") < threshold:
        cat, code, entity, message = _RANDOM_REJECTIONS[
            pick(seed, claim.claim_id, "ack-reason", len(_RANDOM_REJECTIONS))
        ]
        return _reject(cat, code, entity, message)
    return AckDecision(
        accepted=True,
        category="A2",
        status_code="20",
        message="accepted for processing",
        payer_claim_control_number=payer_claim_control_number(seed, claim.claim_id),
    )
