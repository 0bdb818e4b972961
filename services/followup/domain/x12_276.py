"""Build X12 276 claim-status inquiries (005010X212).

One transaction holds every inquiry: a payer level (2000A) per payer, an
information receiver (2000B, us, by ETIN) and a service provider (2000C, by NPI)
under it, then a subscriber level (2000D) per claim and, when the patient is a
dependent, a dependent level (2000E). The claim id travels as the trace number
(TRN02) and as the patient control number (REF*EJ), so the payer's 277 echoes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from shared.events import Organization, Person
from shared.npi import is_valid_npi
from shared.x12 import Interchange, Transaction, amount, clean, x12_date

VERSION = "005010X212"
_GENDER = {"M": "M", "F": "F", "U": "U"}


@dataclass(frozen=True, slots=True)
class StatusInquiry:
    claim_id: str  # patient control number (CLM01) of the original claim
    payer_id: str
    payer_name: str
    provider: Organization  # billing provider: name and NPI required
    subscriber: Person
    member_id: str
    service_date: date
    total_charge: Decimal
    patient: Person | None = None  # set when the patient is a dependent of the subscriber
    service_end_date: date | None = None
    payer_claim_control_number: str | None = None
    bill_type: str | None = None  # institutional claims: type of bill (REF*BLT)


def _check(inq: StatusInquiry, n: int) -> None:
    # Names the claim and field, never the person's data (PHI).
    where = f"inquiry {n} (claim {inq.claim_id})"
    if not inq.claim_id or len(inq.claim_id) > 50:
        raise ValueError(f"inquiry {n}: claim_id must be 1..50 characters")
    for name in ("payer_id", "payer_name", "member_id"):
        if not getattr(inq, name):
            raise ValueError(f"{where}: {name} is required")
    if not inq.provider.npi or not is_valid_npi(inq.provider.npi):
        raise ValueError(f"{where}: provider.npi must be 10 digits with a valid check digit")
    if not isinstance(inq.total_charge, Decimal) or inq.total_charge < 0:
        raise ValueError(f"{where}: total_charge must be a non-negative Decimal")
    if inq.service_end_date and inq.service_end_date < inq.service_date:
        raise ValueError(f"{where}: service_end_date is before service_date")


def _person_nm1(tx: Transaction, qualifier: str, p: Person, member_id: str | None) -> None:
    tx.add_person(qualifier, p.last_name, p.first_name, member_id)


def _claim_loop(tx: Transaction, inq: StatusInquiry) -> None:
    tx.add("TRN", "1", clean(inq.claim_id, 50))
    if inq.payer_claim_control_number:
        tx.add("REF", "1K", clean(inq.payer_claim_control_number, 50))
    if inq.bill_type:
        tx.add("REF", "BLT", clean(inq.bill_type)[-3:])  # 0131 -> 131 (facility + frequency)
    tx.add("REF", "EJ", clean(inq.claim_id, 50))
    tx.add("AMT", "T3", amount(inq.total_charge))
    end = inq.service_end_date or inq.service_date
    tx.add("DTP", "472", "RD8", f"{x12_date(inq.service_date)}-{x12_date(end)}")


def build_276(
    inquiries: Sequence[StatusInquiry],
    interchange_control_number: int,
    group_control_number: int,
    created_at: datetime,
    sender_id: str = "RCM",
    receiver_id: str = "CLEARINGHOUSE",
    usage: str = "P",
) -> str:
    """Render a 276 interchange asking the status of each claim in ``inquiries``.

    ``sender_id`` is our submitter id (ISA06/GS02, and the ETIN in 2100B).
    Raises ``ValueError`` naming the inquiry number, claim id and field at fault.
    """
    if not inquiries:
        raise ValueError("no inquiries: a 276 needs at least one claim")
    for n, inq in enumerate(inquiries, start=1):
        _check(inq, n)
    ix = Interchange(
        sender_id=sender_id,
        receiver_id=receiver_id,
        control_number=interchange_control_number,
        group_control_number=group_control_number,
        functional_id="HR",
        version=VERSION,
        transaction_type="276",
        created_at=created_at,
        usage=usage,
    )
    tx = ix.new_transaction()
    tx.add(
        "BHT",
        "0010",
        "13",
        f"{interchange_control_number:09d}",
        x12_date(created_at),
        created_at.strftime("%H%M"),
    )

    # payer -> provider -> claims, in first-seen order so output is stable
    tree: dict[tuple[str, str], dict[tuple[str, str], list[StatusInquiry]]] = {}
    for inq in inquiries:
        payer = tree.setdefault((inq.payer_id, inq.payer_name), {})
        payer.setdefault((inq.provider.npi or "", inq.provider.name), []).append(inq)

    hl = 0
    for (payer_id, payer_name), providers in tree.items():
        hl += 1
        payer_hl = hl
        tx.add("HL", payer_hl, "", "20", "1")
        tx.add("NM1", "PR", "2", clean(payer_name, 60), "", "", "", "", "PI", clean(payer_id, 80))
        hl += 1
        receiver_hl = hl
        tx.add("HL", receiver_hl, payer_hl, "21", "1")
        tx.add("NM1", "41", "2", clean(sender_id, 60), "", "", "", "", "46", clean(sender_id, 80))
        for (npi, name), claims in providers.items():
            hl += 1
            provider_hl = hl
            tx.add("HL", provider_hl, receiver_hl, "19", "1")
            tx.add("NM1", "1P", "2", clean(name, 60), "", "", "", "", "XX", npi)
            for inq in claims:
                hl += 1
                subscriber_hl = hl
                dependent = inq.patient is not None
                tx.add("HL", subscriber_hl, provider_hl, "22", "1" if dependent else "0")
                if not dependent:
                    s = inq.subscriber
                    tx.add("DMG", "D8", x12_date(s.birth_date), _GENDER[s.gender])
                _person_nm1(tx, "IL", inq.subscriber, inq.member_id)
                if not dependent:
                    _claim_loop(tx, inq)
                    continue
                hl += 1
                p = inq.patient
                tx.add("HL", hl, subscriber_hl, "23")
                tx.add("DMG", "D8", x12_date(p.birth_date), _GENDER[p.gender])
                _person_nm1(tx, "QC", p, None)
                _claim_loop(tx, inq)
    return ix.render()
