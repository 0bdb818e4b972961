"""X12 837 writer: 837P (005010X222A1) and 837I (005010X223A2) batches.

One interchange (ISA/IEA) with one functional group (GS/GE) holding one or more
transactions (ST/SE) of at most ``max_claims_per_transaction`` claims each. Inside a
transaction, claims are grouped under one 2000A billing-provider HL per billing provider
(so one file can carry several sites), then one 2000B subscriber HL (+ 2000C patient HL
when the patient is not the subscriber) and one 2300 claim per claim. CLM01 = claim_id.

The caller owns the control numbers (it persists them); ``Batch837.transactions`` maps
each ST02 to its claim ids, and ``Batch837.claim_at`` maps a 999 IK3 segment position
back to the claim it falls in.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import datetime

from shared.x12 import Interchange, Transaction, clean, x12_date

from .claim import Claim
from .x12_837_claim import address, unwritable_reason, write_claim

__all__ = ["Batch837", "ClaimSpan", "build_837", "unwritable_reason"]

VERSIONS = {"professional": "005010X222A1", "institutional": "005010X223A2"}
MAX_CONTROL_NUMBER = 999_999_999


@dataclass(frozen=True, slots=True)
class ClaimSpan:
    """Segment positions (ST = 1, as in 999 IK301/IK302) a claim occupies in its transaction."""

    claim_id: str
    first_segment: int  # its 2000B subscriber HL
    last_segment: int


@dataclass(frozen=True)
class Batch837:
    text: str
    interchange_control_number: int
    group_control_number: int
    claim_type: str
    transactions: dict[str, list[str]]  # ST02 -> claim ids, in file order
    spans: dict[str, list[ClaimSpan]] = field(default_factory=dict)

    @property
    def claim_ids(self) -> list[str]:
        return [cid for ids in self.transactions.values() for cid in ids]

    def claim_at(self, st_control_number: str, segment_position: int) -> str | None:
        """The claim containing a segment position, or None (envelope/billing-provider HL)."""
        spans = self.spans.get(st_control_number, [])
        i = bisect_right([s.first_segment for s in spans], segment_position) - 1
        if i >= 0 and spans[i].first_segment <= segment_position <= spans[i].last_segment:
            return spans[i].claim_id
        return None


def build_837(
    claims: list[Claim],
    *,
    interchange_control_number: int,
    group_control_number: int,
    created_at: datetime,
    sender_id: str = "RCMSUBMITTER",
    receiver_id: str = "CLEARINGHOUSE",
    submitter_name: str = "RCM BILLING",
    usage: str = "P",
    submitter_contact: str = "BILLING OFFICE",
    submitter_phone: str = "8005550100",
    receiver_name: str | None = None,
    max_claims_per_transaction: int = 5000,
) -> Batch837:
    """Write claims (all professional or all institutional) as one 837 interchange.

    Claims should have passed ``scrub``. Raises ValueError for an empty list, mixed claim
    types, bad control numbers, duplicate claim ids, or a claim missing data the 837
    cannot be written without (named by claim id and field).
    """
    if not claims:
        raise ValueError("build_837: no claims")
    kinds = {c.claim_type for c in claims}
    if len(kinds) != 1:
        raise ValueError(
            f"build_837: claims mix claim types {sorted(kinds)}; write one file per type"
        )
    for name, value in (
        ("interchange_control_number", interchange_control_number),
        ("group_control_number", group_control_number),
    ):
        if not 1 <= value <= MAX_CONTROL_NUMBER:
            raise ValueError(f"build_837: {name} must be 1..{MAX_CONTROL_NUMBER}")
    if usage not in ("P", "T"):
        raise ValueError("build_837: usage must be 'P' or 'T'")
    if max_claims_per_transaction < 1:
        raise ValueError("build_837: max_claims_per_transaction must be positive")
    seen: set[str] = set()
    for c in claims:
        if c.claim_id in seen:
            raise ValueError(f"build_837: duplicate claim id {c.claim_id}")
        seen.add(c.claim_id)
        problem = unwritable_reason(c)
        if problem:
            raise ValueError(problem)
    claim_type = kinds.pop()
    version = VERSIONS[claim_type]

    ix = Interchange(
        sender_id=clean(sender_id, 15),
        receiver_id=clean(receiver_id, 15),
        control_number=interchange_control_number,
        group_control_number=group_control_number,
        functional_id="HC",
        version=version,
        transaction_type="837",
        created_at=created_at,
        usage=usage,
    )
    transactions: dict[str, list[str]] = {}
    spans: dict[str, list[ClaimSpan]] = {}
    for start in range(0, len(claims), max_claims_per_transaction):
        chunk = claims[start : start + max_claims_per_transaction]
        tx = ix.new_transaction()
        header = _Header(submitter_name, submitter_contact, submitter_phone, receiver_name)
        spans[tx.control_number] = _write_transaction(tx, ix, chunk, header)
        transactions[tx.control_number] = [c.claim_id for c in chunk]
    return Batch837(
        text=ix.render(),
        interchange_control_number=interchange_control_number,
        group_control_number=group_control_number,
        claim_type=claim_type,
        transactions=transactions,
        spans=spans,
    )


@dataclass(frozen=True, slots=True)
class _Header:
    submitter_name: str
    contact: str
    phone: str
    receiver_name: str | None


def _write_transaction(
    tx: Transaction, ix: Interchange, claims: list[Claim], h: _Header
) -> list[ClaimSpan]:
    ts = ix.created_at
    # BHT03 (originator's batch reference) must be unique per transaction: group + ST02.
    tx.add(
        "BHT",
        "0019",
        "00",
        f"{ix.group_control_number}-{tx.control_number}",
        x12_date(ts),
        ts.strftime("%H%M"),
        "CH",
    )
    tx.add(
        "NM1", "41", "2", clean(h.submitter_name, 60), "", "", "", "", "46", ix.sender_id.strip()
    )
    tx.add("PER", "IC", clean(h.contact, 60), "TE", "".join(ch for ch in h.phone if ch.isdigit()))
    receiver = clean(h.receiver_name or ix.receiver_id, 60)
    tx.add("NM1", "40", "2", receiver, "", "", "", "", "46", ix.receiver_id.strip())

    groups: dict[tuple, list[Claim]] = {}
    for c in claims:
        bp = c.billing_provider
        groups.setdefault((bp.npi, bp.tax_id, bp.name, bp.address), []).append(c)

    hl = 0
    spans: list[ClaimSpan] = []
    for group in groups.values():
        hl += 1
        provider_hl = hl
        _billing_provider(tx, group[0], provider_hl)
        for c in group:
            first = len(tx.segments) + 1
            hl = write_claim(tx, c, hl, provider_hl, ix.seps.component)
            spans.append(ClaimSpan(c.claim_id, first, len(tx.segments)))
    return spans


def _billing_provider(tx: Transaction, c: Claim, hl: int) -> None:
    bp = c.billing_provider
    assert bp.address is not None and bp.tax_id and bp.name  # checked by unwritable_reason
    tx.add("HL", hl, "", "20", "1")
    if bp.taxonomy:
        tx.add("PRV", "BI", "PXC", clean(bp.taxonomy, 50))
    tx.add("NM1", "85", "2", clean(bp.name, 60), "", "", "", "", "XX", bp.npi)
    address(tx, bp.address)
    tx.add("REF", "EI", bp.tax_id.replace("-", ""))
