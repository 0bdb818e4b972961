"""Payments pure domain: 835 parsing, balancing, ledger postings, claim matching."""

from .balancing import check_claim, check_era, check_transaction
from .era import parse_835
from .era_json import era_to_json
from .remittance import (
    Adjustment,
    ClaimPayment,
    Era835,
    Party,
    Payment,
    ProviderAdjustment,
    RemitTransaction,
    ServiceLine,
)

__all__ = [
    "Adjustment",
    "ClaimPayment",
    "Era835",
    "Party",
    "Payment",
    "ProviderAdjustment",
    "RemitTransaction",
    "ServiceLine",
    "check_claim",
    "check_era",
    "check_transaction",
    "era_to_json",
    "parse_835",
]
