"""Double-entry postings for charges, ERA claim payments and PLB adjustments.

Pure functions: each returns the journal lines of one entry, already checked to
sum to zero. Sign convention: debit positive, credit negative. Receivables
(payer_receivable, patient_receivable, cash_clearing) carry debit balances;
gross_charges and interest_income carry credit balances; adjustment and
write-off accounts are contra-revenue / expense and carry debit balances.

Adjustment accounts (``carcs`` is the one table): CO with a contractual CARC goes to
contractual_adjustment; CO with another CARC (CO-50, CO-97...: a denial the provider may
not bill to the patient, not the contract) and OA/PI/CR go to other_adjustment; PR to
patient_receivable.

Coordination of benefits: the encounter's gross charge is recognised once, on the
primary claim. The primary payer's claim payment (CLP02 1/19) settles the whole charge
out of payer_receivable: paid to cash, adjustments to their accounts (above), PR moved
to patient_receivable. When billing then bills the next payer on a claim of its own (a
secondary or tertiary claim), what the prior payers left to the patient moves to that
payer's receivable on the new claim (``entry_for_cob_transfer``: a transfer, not a
charge), and that payer's claim payment settles payer_receivable by the primary rules
(``next_payer=True``) except its OA 23 (impact of prior payer adjudication: never on
this payer's receivable); its PR goes back to patient_receivable. Both lines of the
transfer are on the new claim (every claim's lines sum to zero), so an encounter's
patient balance is the sum over its claims: the primary's PR less what was moved on. A
replacement (frequency 7) of a next payer's claim is not charged either: what that payer
still owed on the original moves back to the patient there and on to the replacement's payer
receivable by a transfer (``entries_for_next_payer_replacement``; a void only moves it back).
A secondary payment (CLP02 2/3/20/21) on a claim not billed to that payer (a
crossover: the primary payer forwarded its own claim) settles patient_receivable
instead: paid and the secondary's own CO/OA/PI/CR adjustments reduce what the patient
owes, its PR stays with the patient, and its OA 23 is not posted. A denial (CLP02 4) moves
PR to the patient and leaves everything else on payer_receivable for followup
(appeal or an explicit ``entry_for_writeoff``) rather than writing it off
silently (likewise CLP02 23, not our claim); a predetermination (CLP02 25)
posts nothing but its payment, normally zero. A reversal (CLP02 22) is the exact negation of the original entry.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import NamedTuple

from .carcs import PATIENT_GROUP, PRIOR_PAYER_IMPACT, is_contractual
from .remittance import REVERSAL, SECONDARY_STATUSES, ClaimPayment, ProviderAdjustment

PAYER_RECEIVABLE = "payer_receivable"
PATIENT_RECEIVABLE = "patient_receivable"
GROSS_CHARGES = "gross_charges"
CONTRACTUAL_ADJUSTMENT = "contractual_adjustment"
OTHER_ADJUSTMENT = "other_adjustment"
CASH_CLEARING = "cash_clearing"
INTEREST_INCOME = "interest_income"
PROVIDER_ADJUSTMENT = "provider_adjustment"
BAD_DEBT_WRITEOFF = "bad_debt_writeoff"
ACCOUNTS = frozenset(
    {
        PAYER_RECEIVABLE,
        PATIENT_RECEIVABLE,
        GROSS_CHARGES,
        CONTRACTUAL_ADJUSTMENT,
        OTHER_ADJUSTMENT,
        CASH_CLEARING,
        INTEREST_INCOME,
        PROVIDER_ADJUSTMENT,
        BAD_DEBT_WRITEOFF,
    }
)

_CENT = Decimal("0.01")
_ZERO = Decimal("0.00")

# CLP02 4 denied, 23 not our claim: only PR moves; the rest waits for followup.
_HELD_STATUSES = frozenset({"4", "23"})
PRICING_ONLY = "25"  # predetermination: nothing was paid or adjusted for real


class LedgerError(ValueError):
    """An entry that does not balance or names an unknown account."""


class JournalLine(NamedTuple):
    account: str
    amount: Decimal  # debit positive, credit negative, quantized to 0.01
    claim_id: str | None
    payer_id: str | None


JournalEntry = list[JournalLine]


def _line(account: str, amount: Decimal, claim_id: str | None, payer_id: str | None) -> JournalLine:
    return JournalLine(account, amount.quantize(_CENT), claim_id, payer_id)


def assert_balanced(lines: Iterable[JournalLine]) -> None:
    """Raise ``LedgerError`` unless the lines sum to zero and use known accounts."""
    total = _ZERO
    for ln in lines:
        if ln.account not in ACCOUNTS:
            raise LedgerError(f"unknown ledger account {ln.account!r}")
        total += ln.amount
    if total != 0:
        raise LedgerError(f"journal entry does not balance: debits - credits = {total}")


def _entry(lines: list[JournalLine]) -> JournalEntry:
    # Zero lines carry no information; dropping them keeps the ledger readable.
    out = [ln for ln in lines if ln.amount != 0]
    assert_balanced(out)
    return out


def reverse(lines: Iterable[JournalLine]) -> JournalEntry:
    """The exact negation of an entry (same accounts, claim, payer; opposite amounts)."""
    return _entry([ln._replace(amount=-ln.amount) for ln in lines])


def entry_for_claim_charge(claim_id: str, payer_id: str | None, charge: Decimal) -> JournalEntry:
    """Claim billed: Dr payer_receivable / Cr gross_charges."""
    return _entry(
        [
            _line(PAYER_RECEIVABLE, charge, claim_id, payer_id),
            _line(GROSS_CHARGES, -charge, claim_id, payer_id),
        ]
    )


def entry_for_cob_transfer(claim_id: str, payer_id: str | None, amount: Decimal) -> JournalEntry:
    """A next payer billed for what the prior payers left to the patient: Dr payer_receivable /
    Cr patient_receivable, both on that payer's claim (empty when nothing was left)."""
    return _entry(
        [
            _line(PAYER_RECEIVABLE, amount, claim_id, payer_id),
            _line(PATIENT_RECEIVABLE, -amount, claim_id, payer_id),
        ]
    )


def entries_for_next_payer_replacement(
    original_id: str, claim_id: str | None, payer_id: str | None, open_payer: Decimal
) -> tuple[JournalEntry, JournalEntry]:
    """A next payer's claim replaced (7) or voided (``claim_id`` None): what its payer still
    owed on the original (``open_payer``, what the transfer put there less what that payer
    settled) goes back to the patient receivable on the original, and a replacement takes it
    over by a transfer of its own. Nothing is charged or taken off gross charges: the
    encounter's charge is the primary claim's. Both entries keep their claim's lines at zero;
    a void's second entry is empty (the patient owes it again)."""
    back = entry_for_cob_transfer(original_id, payer_id, -open_payer)
    forward = entry_for_cob_transfer(claim_id, payer_id, open_payer) if claim_id else []
    return back, forward


def adjustment_account(group: str, reason: str) -> str:
    """The account debited when an adjustment leaves the receivable (see the module doc)."""
    if group == PATIENT_GROUP:
        return PATIENT_RECEIVABLE
    return CONTRACTUAL_ADJUSTMENT if is_contractual(group, reason) else OTHER_ADJUSTMENT


def _all_adjustments(cp: ClaimPayment):
    yield from cp.adjustments
    for sl in cp.service_lines:
        yield from sl.adjustments


def entry_for_claim_payment(
    cp: ClaimPayment,
    claim_id: str,
    payer_id: str | None,
    original: Iterable[JournalLine] | None = None,
    next_payer: bool = False,
) -> JournalEntry:
    """Post one ERA claim payment (see the module doc for the COB rules).

    ``next_payer``: the claim is a next payer's claim whose receivable came from a COB
    transfer, so the payment settles payer_receivable (whatever its CLP02) and its OA 23 is
    left out.

    For a reversal (CLP02 22) pass the ``original`` entry when known: the result
    is then exactly ``reverse(original)``; raises ``LedgerError`` if the reversal's
    paid amount is not the negation of the original cash. Without ``original``
    the reversal's negative amounts are posted by the primary rules, which is
    the same negation for a primary payment.
    """
    if cp.status_code == REVERSAL and original is not None:
        original = list(original)
        cash = sum((ln.amount for ln in original if ln.account == CASH_CLEARING), _ZERO)
        if cash != -cp.paid:
            raise LedgerError(
                f"reversal of claim {claim_id} pays {cp.paid}, original entry paid {cash}"
            )
        return reverse(original)
    secondary = cp.status_code in SECONDARY_STATUSES and not next_payer
    settles = PATIENT_RECEIVABLE if secondary else PAYER_RECEIVABLE
    lines = [_line(CASH_CLEARING, cp.paid, claim_id, payer_id)]
    settled = cp.paid
    for adj in _all_adjustments(cp):
        account = adjustment_account(adj.group, adj.reason)
        if secondary and (account == PATIENT_RECEIVABLE or adj.reason == PRIOR_PAYER_IMPACT):
            continue  # stays with the patient / already posted by the prior payer
        if next_payer and adj.reason == PRIOR_PAYER_IMPACT:
            continue  # the prior payers' part: only what they left was transferred here
        if cp.status_code == PRICING_ONLY:
            continue
        if cp.status_code in _HELD_STATUSES and account != PATIENT_RECEIVABLE:
            continue  # left on payer_receivable for followup to appeal or write off
        lines.append(_line(account, adj.amount, claim_id, payer_id))
        settled += adj.amount
    lines.append(_line(settles, -settled, claim_id, payer_id))
    return _entry(lines)


# PLB03-1 reasons whose counter-account is not provider_adjustment.
_PLB_ACCOUNT = {
    "L6": INTEREST_INCOME,  # interest owed by the payer for late payment
    "BD": BAD_DEBT_WRITEOFF,  # Medicare bad debt reimbursement offsets bad debt expense
}


def entry_for_plb(adj: ProviderAdjustment, payer_id: str | None) -> JournalEntry:
    """Post one PLB adjustment pair against cash.

    835 TR3 sign rule: BPR02 = sum(CLP04) - sum(PLB amounts). A POSITIVE PLB
    amount reduces the money received (WO overpayment recovery, FB forward
    balance withheld, 72 authorized return, ...); a NEGATIVE one increases it
    (L6 interest is normally negative). Claim payments already debited
    cash_clearing with CLP04, so the PLB line is cash_clearing = -amount and the
    counter-account takes +amount: interest -5.00 gives Dr cash 5.00 /
    Cr interest_income 5.00; a 100.00 recoupment gives Cr cash 100.00 /
    Dr provider_adjustment 100.00 (cleared when the matching reversal posts).
    """
    counter = _PLB_ACCOUNT.get(adj.reason, PROVIDER_ADJUSTMENT)
    return _entry(
        [
            _line(CASH_CLEARING, -adj.amount, None, payer_id),
            _line(counter, adj.amount, None, payer_id),
        ]
    )


def entry_for_writeoff(
    claim_id: str,
    amount: Decimal,
    account: str,
    payer_id: str | None = None,
    from_account: str | None = None,
) -> JournalEntry:
    """Write ``amount`` off a claim balance: Dr ``account`` / Cr the receivable.

    The receivable defaults to patient_receivable for bad_debt_writeoff (only
    patient balances go to bad debt) and payer_receivable otherwise.
    """
    if account not in ACCOUNTS:
        raise LedgerError(f"unknown ledger account {account!r}")
    if from_account is None:
        from_account = PATIENT_RECEIVABLE if account == BAD_DEBT_WRITEOFF else PAYER_RECEIVABLE
    return _entry(
        [
            _line(account, amount, claim_id, payer_id),
            _line(from_account, -amount, claim_id, payer_id),
        ]
    )


def claim_balance(lines: Iterable[JournalLine], claim_id: str) -> tuple[Decimal, Decimal]:
    """(payer_due, patient_due) for one claim, derived from its journal lines."""
    payer = patient = _ZERO
    for ln in lines:
        if ln.claim_id == claim_id:
            if ln.account == PAYER_RECEIVABLE:
                payer += ln.amount
            elif ln.account == PATIENT_RECEIVABLE:
                patient += ln.amount
    return payer, patient
