"""Write adjudications as one 835 remittance advice (005010X221A1).

One transaction per call: BPR/TRN header, payer (1000A) and payee (1000B), one LX group
of CLP claim payments with their SVC service lines, and optional PLB provider-level
adjustments. BPR02 = sum(CLP04) - sum(PLB amounts), so the file balances by construction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Literal, NamedTuple

from shared.events import Address
from shared.x12 import Interchange, Transaction, amount, clean, x12_date

from .model import AdjudicatedLine, Adjudication, Adjustment

ZERO = Decimal("0.00")
CAS_TRIPLETS = 6  # a CAS segment holds at most six reason/amount/quantity triplets
PLB_PAIRS = 6
# CLP06 allows fewer codes than SBR09: commercial and Blue plans report as PPO (12).
_CLP06 = {
    "12",
    "13",
    "14",
    "15",
    "16",
    "17",
    "AM",
    "CH",
    "DS",
    "HM",
    "LM",
    "MA",
    "MB",
    "MC",
    "OF",
    "TV",
    "VA",
    "WC",
}
_CLP06_ALIASES = {"CI": "12", "BL": "12", "11": "ZZ"}
# Simulated bank accounts (routing numbers with valid ABA check digits).
_PAYER_BANK = ("011000015", "7700012345")
_PAYEE_BANK = ("021000021", "4400098765")


class PayerInfo(NamedTuple):
    payer_id: str
    name: str
    address: Address
    tax_id: str = "990000001"  # for TRN03/BPR10 "1" + EIN
    phone: str = "8005550199"  # PER*BL technical contact


class PayeeInfo(NamedTuple):
    name: str
    npi: str
    tax_id: str


@dataclass(frozen=True, slots=True)
class ProviderAdjustment:
    """A PLB entry. Positive reduces the payment (e.g. WO recoupment); negative adds (L6 interest)."""

    reason: str  # PLB03-1, e.g. L6 interest, WO overpayment recovery, FB forwarding balance
    reference: str  # PLB03-2, e.g. the claim or payer claim control number it concerns
    amount: Decimal


def cas_segments(tx: Transaction, adjustments: Iterable[Adjustment]) -> None:
    """Add CAS segments: one group code per segment, same reasons merged, <= 6 triplets."""
    by_group: dict[str, dict[str, Decimal]] = {}
    for adj in adjustments:
        if adj.amount:
            reasons = by_group.setdefault(adj.group, {})
            reasons[adj.reason] = reasons.get(adj.reason, ZERO) + adj.amount
    for group, reasons in by_group.items():
        items = [(r, a) for r, a in reasons.items() if a]
        for start in range(0, len(items), CAS_TRIPLETS):
            elements: list[object] = ["CAS", group]
            for reason, amt in items[start : start + CAS_TRIPLETS]:
                elements += [reason, amount(amt), ""]
            tx.add(*elements)


def _procedure(line: AdjudicatedLine, sep: str) -> str:
    ln = line.line
    if not ln.code:
        return f"NU{sep}{clean(ln.revenue_code)}"
    return sep.join(["HC", clean(ln.code), *(clean(m) for m in ln.modifiers[:4])])


def _claim(tx: Transaction, adj: Adjudication, sep: str) -> None:
    claim = adj.claim
    filing = (
        claim.filing_indicator
        if claim.filing_indicator in _CLP06
        else _CLP06_ALIASES.get(claim.filing_indicator, "ZZ")
    )
    responsibility = adj.patient_responsibility
    tx.add(
        "CLP",
        clean(claim.claim_id, 38),
        adj.status,
        amount(adj.charge),
        amount(adj.paid),
        amount(responsibility) if responsibility else "",
        filing,
        clean(adj.payer_claim_control_number, 50),
        clean(claim.facility_code),
        claim.frequency_code,
    )
    cas_segments(tx, adj.adjustments)
    same_person = (claim.patient_last_name, claim.patient_first_name) == (
        claim.subscriber_last_name,
        claim.subscriber_first_name,
    )
    member = clean(claim.member_id, 80) if claim.member_id else ""
    patient_id = member if same_person else None
    tx.add_person("QC", claim.patient_last_name, claim.patient_first_name, patient_id)
    if member and not same_person:
        tx.add_person("IL", claim.subscriber_last_name, claim.subscriber_first_name, member)
    if adj.crossover_to is not None:  # the payer the claim was forwarded to
        to = adj.crossover_to
        tx.add("NM1", "TT", "2", clean(to.name, 60), "", "", "", "", "PI", clean(to.payer_id, 80))
    if adj.remarks:
        tx.add("MOA", "", "", *adj.remarks[:5])
    if claim.claim_type == "institutional":
        tx.add("DTM", "232", x12_date(claim.service_date))
        tx.add("DTM", "233", x12_date(claim.service_end_date))
    tx.add("DTM", "050", x12_date(adj.received_date))
    for line in adj.lines:
        ln = line.line
        revenue = clean(ln.revenue_code) if ln.revenue_code and ln.code else ""
        tx.add(
            "SVC",
            _procedure(line, sep),
            amount(ln.charge),
            amount(line.paid),
            revenue,
            amount(ln.units),
        )
        tx.add("DTM", "472", x12_date(ln.service_date))
        cas_segments(tx, line.adjustments)
        if ln.line_control_number:
            tx.add("REF", "6R", clean(ln.line_control_number, 50))
        tx.add("AMT", "B6", amount(line.allowed))
        for remark in line.remarks:
            tx.add("LQ", "HE", remark)


def _plb(
    tx: Transaction,
    payee: PayeeInfo,
    payment_date: date,
    items: Sequence[ProviderAdjustment],
    sep: str,
) -> None:
    fiscal_year_end = date(payment_date.year, 12, 31)
    for start in range(0, len(items), PLB_PAIRS):
        elements: list[object] = ["PLB", payee.npi, x12_date(fiscal_year_end)]
        for item in items[start : start + PLB_PAIRS]:
            elements += [
                f"{clean(item.reason, 2)}{sep}{clean(item.reference, 50)}",
                amount(item.amount),
            ]
        tx.add(*elements)


@dataclass(frozen=True, slots=True)
class Remittance:
    """One payment (one 835 transaction set): ``payer`` pays ``adjudications`` to ``payee``."""

    adjudications: Sequence[Adjudication]
    payer: PayerInfo
    payee: PayeeInfo
    trace_number: str
    payment_date: date
    method: Literal["ACH", "CHK"] = "ACH"
    provider_adjustments: Sequence[ProviderAdjustment] = ()


def build_835(
    adjudications: Sequence[Adjudication],
    *,
    payer: PayerInfo,
    payee: PayeeInfo,
    trace_number: str,
    payment_date: date,
    interchange_control_number: int,
    group_control_number: int,
    created_at: datetime,
    method: Literal["ACH", "CHK"] = "ACH",
    provider_adjustments: Sequence[ProviderAdjustment] = (),
    usage: str = "P",
) -> str:
    """Render one 835 interchange, from ``payer`` to ``payee``, paying ``adjudications``.

    Raises ``ValueError`` as ``build_era_file`` does.
    """
    remittance = Remittance(
        adjudications, payer, payee, trace_number, payment_date, method, provider_adjustments
    )
    return build_era_file(
        [remittance],
        sender_id=payer.payer_id,
        receiver_id=payee.npi,
        interchange_control_number=interchange_control_number,
        group_control_number=group_control_number,
        created_at=created_at,
        usage=usage,
    )


def build_era_file(
    remittances: Sequence[Remittance],
    *,
    sender_id: str,
    receiver_id: str,
    interchange_control_number: int,
    group_control_number: int,
    created_at: datetime,
    usage: str = "P",
) -> str:
    """Render one 835 interchange with a transaction set per remittance: what a clearinghouse
    delivers to a provider's mailbox, the payments of several payers in one file.

    Raises ``ValueError`` when there is no remittance or one has nothing to remit, when a
    claim belongs to another billing provider than its remittance's payee, when the method
    is unknown, or when provider adjustments would make a payment negative (a real payer
    carries that balance forward instead).
    """
    if not remittances:
        raise ValueError("an 835 file needs at least one remittance")
    ix = Interchange(
        sender_id=clean(sender_id, 15),
        receiver_id=clean(receiver_id, 15),
        control_number=interchange_control_number,
        group_control_number=group_control_number,
        functional_id="HP",
        version="005010X221A1",
        transaction_type="835",
        created_at=created_at,
        usage=usage,
    )
    for n, remittance in enumerate(remittances, start=1):
        _transaction(ix, remittance, f"{n:04d}", created_at)
    return ix.render()


def _transaction(ix: Interchange, r: Remittance, control_number: str, created_at: datetime) -> None:
    adjudications, payer, payee, method = r.adjudications, r.payer, r.payee, r.method
    provider_adjustments, payment_date = r.provider_adjustments, r.payment_date
    if not adjudications and not provider_adjustments:
        raise ValueError("an 835 needs at least one claim payment or provider adjustment")
    if method not in {"ACH", "CHK"}:
        raise ValueError(f"payment method {method!r} is not ACH or CHK")
    for adj in adjudications:
        npi = adj.claim.billing_provider_npi
        if npi and npi != payee.npi:
            raise ValueError(f"claim {adj.claim_id} was billed by another provider than the payee")
    total = sum((a.paid for a in adjudications), ZERO) - sum(
        (p.amount for p in provider_adjustments), ZERO
    )
    if total < 0:
        raise ValueError(
            "provider adjustments exceed the claim payments: net payment would be negative"
        )
    sep = ix.seps.component
    tx = ix.new_transaction(control_number)
    # X221A1 marks ST03 "not used" (pyx12 rejects it), unlike the 837/999/277CA guides.
    tx.segments[0] = ["ST", "835", tx.control_number]
    paid_on = x12_date(payment_date)
    company_id = f"1{payer.tax_id}"
    if total == 0:
        tx.add("BPR", "H", "0", "C", "NON", *[""] * 11, paid_on)
    elif method == "ACH":
        tx.add(
            "BPR",
            "I",
            amount(total),
            "C",
            "ACH",
            "CCP",
            "01",
            _PAYER_BANK[0],
            "DA",
            _PAYER_BANK[1],
            company_id,
            "",
            "01",
            _PAYEE_BANK[0],
            "DA",
            _PAYEE_BANK[1],
            paid_on,
        )
    else:
        tx.add("BPR", "I", amount(total), "C", "CHK", *[""] * 11, paid_on)
    tx.add("TRN", "1", clean(r.trace_number, 50), company_id)
    tx.add("DTM", "405", x12_date(created_at))
    addr = payer.address
    tx.add("N1", "PR", clean(payer.name, 60))
    tx.add("N3", clean(addr.line1, 55), clean(addr.line2, 55) if addr.line2 else "")
    tx.add("N4", clean(addr.city, 30), clean(addr.state), clean(addr.postal_code).replace("-", ""))
    tx.add("REF", "2U", clean(payer.payer_id, 50))
    tx.add("PER", "BL", "EDI SUPPORT", "TE", payer.phone)
    tx.add("N1", "PE", clean(payee.name, 60), "XX", payee.npi)
    tx.add("REF", "TJ", clean(payee.tax_id).replace("-", ""))
    if adjudications:
        tx.add("LX", "1")
        for adj in adjudications:
            _claim(tx, adj, sep)
    if provider_adjustments:
        _plb(tx, payee, payment_date, provider_adjustments, sep)
