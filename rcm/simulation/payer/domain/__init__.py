"""Payer simulator domain: read 837s, acknowledge (999/277CA), adjudicate, remit (835 ERA files).

Pure functions over data; deterministic given a seed. A stand-in for the external
clearinghouse and payer in demo, tests and benchmarks, never part of production.
"""

from .acknowledge import acknowledge, npi_is_valid
from .adjudicate import DENIALS, AdjudicationRules, adjudicate
from .draw import payer_claim_control_number
from .envelope import read_envelope
from .fees import FeeSchedule
from .model import (
    AckDecision,
    AdjudicatedLine,
    Adjudication,
    Adjustment,
    Submission,
    SubmittedClaim,
    SubmittedLine,
    SubmittedTransaction,
)
from .read_837 import read_837
from .write_835 import (
    PayeeInfo,
    PayerInfo,
    ProviderAdjustment,
    Remittance,
    build_835,
    build_era_file,
)
from .write_acks import SegmentError, build_277ca, build_999, build_999_rejection

__all__ = [
    "DENIALS",
    "AckDecision",
    "AdjudicatedLine",
    "Adjudication",
    "AdjudicationRules",
    "Adjustment",
    "FeeSchedule",
    "PayeeInfo",
    "PayerInfo",
    "ProviderAdjustment",
    "Remittance",
    "SegmentError",
    "Submission",
    "SubmittedClaim",
    "SubmittedLine",
    "SubmittedTransaction",
    "acknowledge",
    "adjudicate",
    "build_277ca",
    "build_835",
    "build_999",
    "build_era_file",
    "build_999_rejection",
    "npi_is_valid",
    "payer_claim_control_number",
    "read_837",
    "read_envelope",
]
