"""835 balancing checks (005010X221A1 section 1.10.2).

Three identities must hold; each problem found is returned as one readable line
naming the transaction (ST02), claim (CLP01) and service line (1-based) at
fault. Reversals (CLP02=22) carry negative amounts and balance by the same
arithmetic, so they need no special case.

- claim:       CLP03 - CLP04 = sum of claim- and line-level CAS amounts (all groups)
- line:        SVC02 - SVC03 = sum of that line's CAS amounts
- transaction: BPR02 (signed by BPR03) = sum of CLP04 - sum of PLB amounts
"""

from __future__ import annotations

from decimal import Decimal

from .remittance import ClaimPayment, Era835, RemitTransaction

_ZERO = Decimal(0)


def check_claim(cp: ClaimPayment, st: str = "?") -> list[str]:
    """Problems with one claim payment's arithmetic (empty when it balances)."""
    problems = []
    line_adj = _ZERO
    for i, line in enumerate(cp.service_lines, 1):
        adj = sum((a.amount for a in line.adjustments), _ZERO)
        line_adj += adj
        if line.charge - line.paid != adj:
            problems.append(
                f"transaction {st} claim {cp.patient_control_number} line {i}: "
                f"charge {line.charge} - paid {line.paid} = {line.charge - line.paid} "
                f"but line adjustments total {adj}"
            )
    adj = sum((a.amount for a in cp.adjustments), _ZERO) + line_adj
    if cp.charge - cp.paid != adj:
        problems.append(
            f"transaction {st} claim {cp.patient_control_number}: "
            f"charge {cp.charge} - paid {cp.paid} = {cp.charge - cp.paid} "
            f"but claim and line adjustments total {adj}"
        )
    return problems


def check_transaction(tx: RemitTransaction) -> list[str]:
    """Problems with one 835 transaction: every claim and line, then the payment total."""
    st = tx.st_control_number
    problems = [p for cp in tx.claims for p in check_claim(cp, st)]
    paid = sum((cp.paid for cp in tx.claims), _ZERO)
    plb = sum((a.amount for a in tx.provider_adjustments), _ZERO)
    if tx.payment.signed_amount != paid - plb:
        problems.append(
            f"transaction {st}: payment BPR02 {tx.payment.signed_amount} != "
            f"claims paid {paid} - provider adjustments {plb} = {paid - plb}"
        )
    return problems


def check_era(era: Era835) -> list[str]:
    """All balancing problems in a file, in file order; empty when everything balances."""
    return [p for tx in era.transactions for p in check_transaction(tx)]
