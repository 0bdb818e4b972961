"""Bounds a claim payment must stay within before it posts (issue 18 item 6).

A payment that balances arithmetically can still be implausible: a negative payment on
an original claim (only a reversal, CLP02 22, takes money back), or a payment larger
than what was billed. Such a claim payment is held for a biller to review, never posted.
"""

from __future__ import annotations

from decimal import Decimal

from .remittance import ClaimPayment

_ZERO = Decimal(0)


def check_bounds(cp: ClaimPayment, billed: Decimal | None, st: str | None = None) -> list[str]:
    """Problems with a claim payment's amounts against the claim it matched (empty when plausible).

    ``billed`` is the matched claim's total charge as billing submitted it (None when the
    claim is not known): the payment may exceed neither it nor the 835's own CLP03.
    Reasons name the transaction and claim and carry amounts only, never patient data.
    """
    where = (f"transaction {st} " if st else "") + f"claim {cp.patient_control_number}"
    if cp.is_reversal:
        return []
    problems = []
    if cp.paid < _ZERO:
        problems.append(
            f"{where}: paid {cp.paid} is negative on an original claim"
            f" (CLP02 {cp.status_code}, not a reversal)"
        )
    limit = min(b for b in (billed, abs(cp.charge)) if b is not None)
    if cp.paid > limit:
        problems.append(f"{where}: paid {cp.paid} exceeds billed charge {limit}")
    return problems
