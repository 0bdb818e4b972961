"""Write the 271 eligibility response (005010X279A1) the simulated payer returns for a 270.

A transaction set answers the inquiries of one 270 transaction set, payer and provider
(see ``_transaction_sets``): a 2000A information source, a 2000B receiver, and per inquiry a 2000C subscriber loop (plus 2000D when the patient is a
dependent) echoing the 270's trace number as TRN*2. A rejected inquiry answers in the
subscriber loop: its TRN, its NM1 as received and AAA*Y**<reason>*<follow-up>.

Every benefit is one EB segment with one service type code (EB03 is repeatable, but
pyx12, which the tests validate with, reads a repeated simple element as one value).
Another payer that is primary is named in a 2120 loop (LS*2120, NM1*PRP, LE*2120) under an
EB*R (other or additional payer).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from shared.x12 import Interchange, Transaction, amount, clean, x12_date

from .eligibility import CostShare, EligibilityDecision
from .read_270 import Inquiry, InquiryFile, Person270

VERSION = "005010X279A1"
_INS_RELATIONSHIP = frozenset({"01", "19", "34"})


def build_271(
    inquiries: InquiryFile,
    decisions: Mapping[str, EligibilityDecision],
    *,
    interchange_control_number: int,
    group_control_number: int,
    created_at: datetime,
    usage: str = "P",
) -> str:
    """The 271 answering ``inquiries``; ``decisions`` maps each trace number to its answer.

    Raises ``KeyError`` when an inquiry has no decision, ``ValueError`` when the file has
    no inquiry.
    """
    if not inquiries.inquiries:
        raise ValueError("the 270 holds no traced inquiry to answer")
    ix = Interchange(
        sender_id=clean(inquiries.receiver_id or "PAYERSIM", 15),
        receiver_id=clean(inquiries.sender_id or "SUBMITTER", 15),
        control_number=interchange_control_number,
        group_control_number=group_control_number,
        functional_id="HB",
        version=VERSION,
        transaction_type="271",
        created_at=created_at,
        usage=usage,
    )
    for chunk in _transaction_sets(inquiries.inquiries):
        q0 = chunk[0]
        tx = ix.new_transaction()
        tx.add(
            "BHT",
            "0022",
            "11",
            clean(q0.reference or str(group_control_number), 50),
            x12_date(created_at),
            created_at.strftime("%H%M"),
        )
        tx.add("HL", 1, "", "20", "1")
        tx.add(
            "NM1", "PR", "2", clean(q0.payer_name, 60), "", "", "", "", "PI", clean(q0.payer_id, 80)
        )
        tx.add("HL", 2, 1, "21", "1")
        tx.add("NM1", "1P", "2", clean(q0.provider_name, 60), "", "", "", "", "XX", q0.provider_npi)
        hl = 2
        for q in chunk:
            hl = _answer(tx, q, decisions[q.trace_number], hl, 2)
    return ix.render()


def _transaction_sets(inquiries: Sequence[Inquiry]) -> list[list[Inquiry]]:
    """A transaction set per 270 transaction set, payer and provider, subscribers first and
    at most one dependent (last): pyx12's 005010X279A1 map reads the HL levels as
    consecutive tables and refuses a 2000A after a 2000C or a 2000C after a 2000D."""
    groups: dict[tuple[str, str, str, str, str], list[Inquiry]] = {}
    for q in inquiries:
        key = (q.reference, q.payer_id, q.payer_name, q.provider_npi, q.provider_name)
        groups.setdefault(key, []).append(q)
    out: list[list[Inquiry]] = []
    for items in groups.values():
        subscribers = [q for q in items if q.dependent is None]
        dependents = [q for q in items if q.dependent is not None]
        out.append(subscribers + dependents[:1])
        out.extend([q] for q in dependents[1:])
    return [chunk for chunk in out if chunk]


def _answer(tx: Transaction, q: Inquiry, d: EligibilityDecision, hl: int, parent: int) -> int:
    rejected = d.rejection is not None
    dependent = q.dependent is not None and not rejected
    hl += 1
    tx.add("HL", hl, parent, "22", "1" if dependent else "0")
    if not dependent:
        tx.add("TRN", "2", q.trace_number, q.originator)
    _name(tx, "IL", q.subscriber, q.member_id)
    if d.rejection is not None:
        reason, follow_up = d.rejection
        tx.add("AAA", "Y", "", reason, follow_up)
        return hl
    if d.plan_number:
        tx.add("REF", "18", d.plan_number)
    if q.group_number:
        tx.add("REF", "6P", clean(q.group_number, 50))
    if not dependent:
        _demographics(tx, q.subscriber)
        _benefits(tx, q, d)
        return hl
    hl += 1
    tx.add("HL", hl, hl - 1, "23", "0")
    tx.add("TRN", "2", q.trace_number, q.originator)
    assert q.dependent is not None
    _name(tx, "03", q.dependent, None)
    _demographics(tx, q.dependent)
    if q.relationship in _INS_RELATIONSHIP:
        tx.add("INS", "N", q.relationship)
    _benefits(tx, q, d)
    return hl


def _name(tx: Transaction, entity: str, p: Person270, member_id: str | None) -> None:
    tx.add_person(entity, p.last_name, p.first_name, member_id)


def _demographics(tx: Transaction, p: Person270) -> None:
    if p.birth_date is not None:
        tx.add("DMG", "D8", x12_date(p.birth_date), p.gender if p.gender in ("M", "F") else "")


def _benefits(tx: Transaction, q: Inquiry, d: EligibilityDecision) -> None:
    if d.plan_begin is not None:
        tx.add("DTP", "346", "D8", x12_date(d.plan_begin))
    if d.outcome == "inactive":
        tx.add("EB", "6", "IND", "30", "", d.plan_name or "")
        if d.coverage_end is not None:
            tx.add("DTP", "357", "D8", x12_date(d.coverage_end))
        return
    tx.add("EB", "1", "IND", "30", "", d.plan_name or "")
    for service_type in q.service_types:
        for network, share in (("Y", d.in_network), ("N", d.out_of_network)):
            if share is not None:
                _cost_share(tx, service_type, network, share)
    other = d.other_payer
    if other is not None:
        tx.add("EB", "R", "", "30", other.insurance_type)
        tx.add("LS", "2120")
        tx.add("NM1", "PRP", "2", clean(other.name, 60), "", "", "", "", "PI", other.payer_id)
        tx.add("LE", "2120")


def _cost_share(tx: Transaction, service_type: str, network: str, c: CostShare) -> None:
    def eb(code: str, period: str = "", money=None, percent=None) -> None:
        tx.add(
            "EB",
            code,
            "IND",
            service_type,
            "",
            "",
            period,
            amount(money) if money is not None else "",
            _fraction(percent) if percent is not None else "",
            "",
            "",
            "",
            network,
        )

    if c.copay is not None:
        eb("B", "27", money=c.copay)  # per visit
    eb("A", percent=c.coinsurance)
    eb("C", "23", money=c.deductible)  # calendar year
    eb("C", "29", money=c.deductible_remaining)  # remaining
    if c.out_of_pocket is not None and c.out_of_pocket_remaining is not None:
        eb("G", "23", money=c.out_of_pocket)
        eb("G", "29", money=c.out_of_pocket_remaining)


def _fraction(value) -> str:
    text = format(value.normalize(), "f")
    return text if text != "0" else "0"
