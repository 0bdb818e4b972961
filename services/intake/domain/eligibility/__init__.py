"""Eligibility and benefits (X12 270/271, 005010X279A1): pure domain for intake.

``build_270`` writes the inquiry for one or more coverages (``requests_for_encounter``
makes the requests of an encounter), ``parse_271`` reads the payer's answer into one
``EligibilityResult`` per request (matched by TRN trace number, ``match_results``).
"""

from .model import (
    Benefit,
    CostShare,
    EligibilityRequest,
    EligibilityResult,
    Rejection,
    RelatedEntity,
)
from .x12_270 import build_270, requests_for_encounter
from .x12_271 import Response271, match_results, parse_271, read_271

__all__ = [
    "Benefit",
    "CostShare",
    "EligibilityRequest",
    "EligibilityResult",
    "Rejection",
    "RelatedEntity",
    "Response271",
    "build_270",
    "match_results",
    "parse_271",
    "read_271",
    "requests_for_encounter",
]
