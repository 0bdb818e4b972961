"""Write the acknowledgements a clearinghouse returns for an 837 file.

- 999 (005010X231A1): did each transaction set pass syntax (AK2/IK5), and the group (AK9).
- 277CA (005010X214): per claim, accepted into adjudication (STC A2:20 + REF*1K payer claim
  control number) or rejected at the front door (STC A6/A7 with a status code). One 277
  transaction per 837 transaction, HL levels: information source (payer) / receiver
  (the submitter) / billing provider / patient (one claim each).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from shared.x12 import Interchange, Transaction, X12Error, amount, clean, x12_date

from .envelope import read_envelope
from .model import AckDecision, Submission, SubmittedClaim

ZERO = Decimal("0.00")


@dataclass(frozen=True, slots=True)
class SegmentError:
    """One IK3 entry of a 999: which segment of a transaction set was wrong."""

    segment_id: str
    position: int  # 1-based position within the transaction set (ST is 1)
    loop_id: str | None = None
    code: str = "8"  # IK304: 8 segment has data element errors, 3 required segment missing, ...


def _reply(
    submission: Submission,
    *,
    icn: int,
    gcn: int,
    created_at: datetime,
    fid: str,
    version: str,
    tx_type: str,
    usage: str,
) -> Interchange:
    # An acknowledgement travels back: the 837's receiver is its sender.
    return Interchange(
        sender_id=clean(submission.receiver_id or "PAYERSIM", 15),
        receiver_id=clean(submission.sender_id or "SUBMITTER", 15),
        control_number=icn,
        group_control_number=gcn,
        functional_id=fid,
        version=version,
        transaction_type=tx_type,
        created_at=created_at,
        usage=usage,
    )


def build_999(
    submission: Submission,
    accepted: bool = True,
    *,
    interchange_control_number: int,
    group_control_number: int,
    created_at: datetime,
    rejected_transactions: Collection[str] = (),
    errors: Mapping[str, Sequence[SegmentError]] | None = None,
    usage: str = "P",
) -> str:
    """Render a 999 for ``submission``.

    ``accepted=False`` rejects every transaction set; otherwise only the ST control
    numbers in ``rejected_transactions`` (or with ``errors``) are rejected, giving AK9 P
    (partially accepted) or R. Raises ``ValueError`` when the submission has no
    transaction sets (there is nothing to acknowledge).
    """
    if not submission.transactions:
        raise ValueError("submission has no transaction sets to acknowledge")
    errors = errors or {}
    ix = _reply(
        submission,
        icn=interchange_control_number,
        gcn=group_control_number,
        created_at=created_at,
        fid="FA",
        version="005010X231A1",
        tx_type="999",
        usage=usage,
    )
    tx = ix.new_transaction("0001")
    tx.add("AK1", "HC", submission.group_control_number, submission.version)
    ok_count = 0
    for st in submission.transactions:
        tx.add("AK2", "837", st.control_number, st.implementation)
        st_errors = errors.get(st.control_number, ())
        for err in st_errors:
            tx.add("IK3", clean(err.segment_id, 3), str(err.position), err.loop_id or "", err.code)
        if accepted and st.control_number not in rejected_transactions and not st_errors:
            tx.add("IK5", "A")
            ok_count += 1
        else:
            tx.add("IK5", "R", "5")  # 5: one or more segments in error
    total = len(submission.transactions)
    status = "A" if ok_count == total else ("R" if ok_count == 0 else "P")
    tx.add("AK9", status, str(total), str(total), str(ok_count))
    return ix.render()


def build_999_rejection(
    text: str,
    error: X12Error,
    *,
    interchange_control_number: int,
    group_control_number: int,
    created_at: datetime,
    usage: str = "P",
) -> str:
    """Render the 999 rejecting a file ``read_837`` refused with ``error``.

    Every transaction set is rejected (the file was not read past the error); the one
    holding the bad segment gets an IK3 naming it. Raises ``X12Error`` when the file has
    no usable ISA/GS to reply to (a real clearinghouse would send a TA1 instead).
    """
    submission, starts = read_envelope(text)
    if not submission.transactions:
        raise X12Error("no transaction set to acknowledge", error.segment, error.segment_id)
    errors: dict[str, list[SegmentError]] = {}
    if error.segment is not None:
        holder = [(start, cn) for cn, start in starts.items() if start <= error.segment]
        if holder:
            start, cn = max(holder)
            code = "8" if error.segment_id not in {None, "SE"} else "3"
            errors[cn] = [
                SegmentError(error.segment_id or "SE", error.segment - start + 1, None, code)
            ]
    return build_999(
        submission,
        False,
        interchange_control_number=interchange_control_number,
        group_control_number=group_control_number,
        created_at=created_at,
        errors=errors,
        usage=usage,
    )


def _stc(decision: AckDecision) -> str:
    parts = [decision.category, decision.status_code]
    if decision.entity_code:
        parts.append(decision.entity_code)
    return ":".join(parts)


def _counts(
    tx: Transaction, decided: list[tuple[SubmittedClaim, AckDecision]], qty: tuple[str, str]
) -> None:
    accepted = [c for c, d in decided if d.accepted]
    rejected = [c for c, d in decided if not d.accepted]
    if accepted:
        tx.add("QTY", qty[0], str(len(accepted)))
    if rejected:
        tx.add("QTY", qty[1], str(len(rejected)))
    if accepted:
        tx.add("AMT", "YU", amount(sum((c.total_charge for c in accepted), ZERO)))
    if rejected:
        tx.add("AMT", "YY", amount(sum((c.total_charge for c in rejected), ZERO)))


def _service_dates(claim: SubmittedClaim) -> tuple[str, str]:
    if claim.service_end_date != claim.service_date:
        return "RD8", f"{x12_date(claim.service_date)}-{x12_date(claim.service_end_date)}"
    return "D8", x12_date(claim.service_date)


def build_277ca(
    submission: Submission,
    decisions: Mapping[str, AckDecision],
    *,
    interchange_control_number: int,
    group_control_number: int,
    created_at: datetime,
    received_date: date | None = None,
    usage: str = "P",
) -> str:
    """Render a 277CA with one STC verdict per claim of ``submission``.

    ``decisions`` maps CLM01 to ``acknowledge(...)``'s result. Raises ``ValueError``
    naming the claim id when a claim has no decision.
    """
    for claim in submission.claims:
        if claim.claim_id not in decisions:
            raise ValueError(f"no acknowledgement decision for claim {claim.claim_id}")
    if not submission.claims:
        raise ValueError("submission has no claims to acknowledge")
    ix = _reply(
        submission,
        icn=interchange_control_number,
        gcn=group_control_number,
        created_at=created_at,
        fid="HN",
        version="005010X214",
        tx_type="277",
        usage=usage,
    )
    today = x12_date(created_at)
    received = x12_date(received_date or created_at)
    for n, st in enumerate(submission.transactions, start=1):
        claims = [c for c in submission.claims if c.st_control_number == st.control_number]
        if not claims:
            continue
        tx = ix.new_transaction(f"{n:04d}")
        tx.add(
            "BHT",
            "0085",
            "08",
            f"{interchange_control_number}{n:04d}",
            today,
            created_at.strftime("%H%M%S"),
            "TH",
        )
        hl = 0
        for payer_id in dict.fromkeys(c.payer_id for c in claims):
            payer_claims = [(c, decisions[c.claim_id]) for c in claims if c.payer_id == payer_id]
            hl += 1
            source_hl = hl
            tx.add("HL", str(hl), "", "20", "1")
            tx.add(
                "NM1",
                "PR",
                "2",
                clean(payer_claims[0][0].payer_name or payer_id, 60),
                "",
                "",
                "",
                "",
                "PI",
                clean(payer_id, 80),
            )
            tx.add("TRN", "1", f"{interchange_control_number}")
            tx.add("DTP", "050", "D8", received)
            tx.add("DTP", "009", "D8", today)
            hl += 1
            receiver_hl = hl
            tx.add("HL", str(hl), str(source_hl), "21", "1")
            submitter_id = st.submitter_id or submission.sender_id or "UNKNOWN"
            tx.add(
                "NM1",
                "41",
                "2",
                clean(st.submitter_name or submitter_id, 60),
                "",
                "",
                "",
                "",
                "46",
                clean(submitter_id, 80),
            )
            tx.add("TRN", "2", clean(st.reference or submission.interchange_control_number, 50))
            total = sum((c.total_charge for c, _ in payer_claims), ZERO)
            tx.add("STC", "A1:19", today, "WQ", amount(total))
            _counts(tx, payer_claims, ("90", "AA"))
            for npi in dict.fromkeys(c.billing_provider_npi or "" for c, _ in payer_claims):
                provider_claims = [
                    (c, d) for c, d in payer_claims if (c.billing_provider_npi or "") == npi
                ]
                first = provider_claims[0][0]
                hl += 1
                provider_hl = hl
                tx.add("HL", str(hl), str(receiver_hl), "19", "1")
                qual, ident = (
                    ("XX", npi)
                    if npi
                    else ("FI", clean(first.billing_provider_tax_id or "UNKNOWN").replace("-", ""))
                )
                tx.add(
                    "NM1",
                    "85",
                    "2",
                    clean(first.billing_provider_name or "UNKNOWN", 60),
                    "",
                    "",
                    "",
                    "",
                    qual,
                    ident,
                )
                tx.add("TRN", "1", "0")
                total = sum((c.total_charge for c, _ in provider_claims), ZERO)
                tx.add("STC", "A1:19", "", "WQ", amount(total))  # STC02 is not used at 2200C
                _counts(tx, provider_claims, ("QA", "QC"))
                for claim, decision in provider_claims:
                    hl += 1
                    tx.add("HL", str(hl), str(provider_hl), "PT")
                    member = clean(claim.member_id, 80) if claim.member_id else "UNKNOWN"
                    tx.add_person("QC", claim.patient_last_name, claim.patient_first_name, member)
                    tx.add("TRN", "2", clean(claim.claim_id, 50))
                    tx.add(
                        "STC",
                        _stc(decision),
                        today,
                        "WQ" if decision.accepted else "U",
                        amount(claim.total_charge),
                    )
                    if decision.accepted and decision.payer_claim_control_number:
                        tx.add("REF", "1K", decision.payer_claim_control_number)
                    if claim.claim_type == "institutional":
                        tx.add("REF", "BLT", f"{clean(claim.facility_code)}{claim.frequency_code}")
                    tx.add("DTP", "472", *_service_dates(claim))
    return ix.render()
