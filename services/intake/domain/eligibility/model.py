"""What a 270 asks and what a 271 answers, as plain frozen dataclasses.

PHI (names, birth dates, member ids) rides in the requests and in ``member_id`` of a
result for writing the 270 and for registration work; it is kept out of ``repr`` and never
put into an error message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Literal

from shared.events import Person

from .codes import (
    ACTIVE,
    INACTIVE,
    NETWORK,
    PAYER_ROLES,
    REMAINING_PERIODS,
    TIME_PERIODS,
    TOTAL_PERIODS,
)

Relationship = Literal["self", "spouse", "child", "other"]
Status = Literal["active", "inactive", "rejected", "unknown"]
Level = Literal["subscriber", "dependent", "information_receiver", "information_source"]
Action = Literal["retry", "registration", "review"]


@dataclass(frozen=True, slots=True)
class EligibilityRequest:
    """One coverage to check: a 2000C subscriber loop (plus 2000D when the patient is a
    dependent) with its own TRN trace number, for one date of service."""

    trace_number: str  # TRN02, unique per request: the 271 echoes it
    payer_id: str
    payer_name: str
    provider_npi: str  # 2100B information receiver
    provider_name: str
    member_id: str | None = field(repr=False)
    subscriber: Person = field(repr=False)
    service_date: date
    relationship: Relationship = "self"
    patient: Person | None = field(default=None, repr=False)  # the dependent, unless self
    group_number: str | None = None
    service_types: tuple[str, ...] = ("30",)  # EQ01: 30 = health benefit plan coverage
    place_of_service: str | None = None  # III*ZZ in 2110C/D


@dataclass(frozen=True, slots=True)
class RelatedEntity:
    """A 2120C/D benefit related entity (NM1 between LS*2120 and LE*2120)."""

    entity_code: str  # NM101: PRP primary payer, P5 plan sponsor, Y2 managed care org, ...
    role: str  # the code's name, or the code itself when rcm does not name it
    name: str | None  # NM103 (an organisation, or a person's last name)
    id_qualifier: str | None  # NM108: PI payer id, XX NPI, ...
    identifier: str | None  # NM109
    benefit_code: str  # EB01 of the EB it belongs to (R = other or additional payer)
    insurance_type: str | None = None  # EB04 of that EB (MB Medicare B, C1 commercial, ...)

    @property
    def is_payer(self) -> bool:
        if self.entity_code == "IL":  # the other plan's insured person, not a payer
            return False
        # EB01 R: the EB names another or additional payer, whatever NM101 says.
        return self.benefit_code == "R" or self.entity_code in PAYER_ROLES


@dataclass(frozen=True, slots=True)
class Benefit:
    """One 2110C/D EB segment with the REF/DTP/2120 loops that qualify it."""

    code: str  # EB01
    kind: str  # active, inactive, copay, coinsurance, deductible, out_of_pocket, ...
    coverage_level: str | None  # EB02: IND, FAM, ...
    service_types: tuple[str, ...]  # EB03 (repeats)
    insurance_type: str | None  # EB04
    plan: str | None  # EB05 plan coverage description
    time_period: str | None  # EB06 code: 23 calendar year, 29 remaining, 27 visit, ...
    amount: Decimal | None  # EB07
    percent: Decimal | None  # EB08, a fraction (0.2 = 20 %)
    quantity_qualifier: str | None  # EB09
    quantity: Decimal | None  # EB10
    authorization_required: str | None  # EB11: Y, N, U
    network: str | None  # EB12: Y in network, N out of network, W both, U unknown
    plan_number: str | None = None  # REF*18 in 2110
    group_number: str | None = None  # REF*6P in 2110
    begin: date | None = None  # DTP 346/348/356/292 (or the start of an RD8 range)
    end: date | None = None  # DTP 347/349/357 (or the end of an RD8 range)
    entities: tuple[RelatedEntity, ...] = ()

    @property
    def in_network(self) -> bool | None:
        """True in network, False out of network, None when it applies to both or is unknown."""
        return NETWORK.get(self.network or "")

    @property
    def period(self) -> str | None:
        """EB06 by name: calendar_year, remaining, visit, lifetime, ..."""
        return TIME_PERIODS.get(self.time_period or "", self.time_period)

    @property
    def remaining(self) -> bool:
        return self.time_period in REMAINING_PERIODS


@dataclass(frozen=True, slots=True)
class Rejection:
    """An AAA segment: the payer could not (fully) answer."""

    loop: str  # 2000A, 2100A, 2100B, 2100C, 2100D, 2110C, 2110D
    segment: int  # position of the AAA in the file
    valid_request: bool  # AAA01 Y/N
    reason: str  # AAA03
    follow_up: str | None  # AAA04: C correct and resubmit, R resubmission allowed, ...
    description: str
    action: Action  # retry, registration or review


@dataclass(frozen=True, slots=True)
class CostShare:
    """The patient's share as one 271 states it for one network and coverage level."""

    copay: Decimal | None = None
    coinsurance: Decimal | None = None  # a fraction
    deductible: Decimal | None = None
    deductible_remaining: Decimal | None = None
    out_of_pocket: Decimal | None = None
    out_of_pocket_remaining: Decimal | None = None


@dataclass(frozen=True, slots=True)
class EligibilityResult:
    """What a 271 says about one request (matched by ``trace_number``), or a rejection of
    the whole inquiry at the information source or receiver level (``trace_number`` None:
    it answers every request of the 270 it replies to)."""

    trace_number: str | None  # TRN*2 TRN02, the 270's TRN*1 echoed
    level: Level
    status: Status
    payer_id: str | None
    payer_name: str | None
    member_id: str | None = field(default=None, repr=False)  # as the payer knows it (PHI)
    plan_name: str | None = None
    plan_number: str | None = None
    group_number: str | None = None
    coverage_begin: date | None = None
    coverage_end: date | None = None
    benefits: tuple[Benefit, ...] = ()
    rejections: tuple[Rejection, ...] = ()
    warnings: tuple[str, ...] = ()
    # Every TRN*2 of the loop: the 270's trace, and one a clearinghouse may have added.
    trace_numbers: tuple[str, ...] = ()
    # BHT03 of the 271's transaction set: the 270's BHT03 echoed (X279A1 asks the source to
    # return it). A rejection of the whole inquiry has no TRN; this names which 270 it answers.
    inquiry_reference: str | None = None

    @property
    def inquiry_interchange(self) -> int | None:
        """The 270 interchange this answers, read from the echoed BHT03 as rcm's 270 writer
        forms it ("<ISA13>-<ST02>", build_270 with GS06 = ISA13); None for any other form."""
        head, dash, _ = (self.inquiry_reference or "").partition("-")
        return int(head) if dash and head.isdigit() else None

    @property
    def active(self) -> bool:
        return self.status == "active"

    @property
    def entities(self) -> tuple[RelatedEntity, ...]:
        return tuple(e for b in self.benefits for e in b.entities)

    @property
    def other_payers(self) -> tuple[RelatedEntity, ...]:
        """Other payers and managed-care plans the 271 names in 2120 loops."""
        return tuple(e for e in self.entities if e.is_payer)

    @property
    def other_primary_payer(self) -> RelatedEntity | None:
        """The payer the 271 says is primary (NM1*PRP), when it names one."""
        return next((e for e in self.entities if e.entity_code == "PRP"), None)

    def actions(self) -> tuple[Action, ...]:
        """What to do about the rejections, most urgent first, each once."""
        order = ("registration", "review", "retry")
        found = {r.action for r in self.rejections}
        return tuple(a for a in order if a in found)

    def cost_share(
        self, *, in_network: bool = True, coverage_level: str = "IND", service_type: str = "30"
    ) -> CostShare:
        """Copay, coinsurance, deductible and out-of-pocket (total and remaining) for one
        network, coverage level and service type.

        A benefit that names no network, level or service type applies to all; one that names
        the service type is preferred over a general one.
        """
        chosen: dict[str, list[Benefit]] = {}
        for b in self.benefits:
            if b.in_network not in (None, in_network):
                continue
            if b.coverage_level not in (None, coverage_level):
                continue
            if (
                b.service_types
                and service_type not in b.service_types
                and "30" not in (b.service_types)
            ):
                continue
            chosen.setdefault(b.kind, []).append(b)

        def best(kind: str, attr: str, periods: tuple[str, ...] | None = None):
            items = [b for b in chosen.get(kind, []) if getattr(b, attr) is not None]
            if periods is not None:
                items = [b for b in items if (b.time_period or "") in periods]
                items.sort(key=lambda b: periods.index(b.time_period or ""))
            # Specific to the service type before general, then the network-specific one.
            items.sort(key=lambda b: (service_type not in b.service_types, b.in_network is None))
            return getattr(items[0], attr) if items else None

        totals = (*TOTAL_PERIODS, "")
        remaining = tuple(sorted(REMAINING_PERIODS))
        return CostShare(
            copay=best("copay", "amount"),
            coinsurance=best("coinsurance", "percent"),
            deductible=best("deductible", "amount", totals),
            deductible_remaining=best("deductible", "amount", remaining),
            out_of_pocket=best("out_of_pocket", "amount", totals),
            out_of_pocket_remaining=best("out_of_pocket", "amount", remaining),
        )


def coverage_status(benefits: tuple[Benefit, ...], rejected: bool) -> Status:
    """Active or inactive from the EB01 codes, preferring health benefit plan coverage (30).

    A rejection at the patient's level wins; no EB 1-8 at all is "unknown".
    """
    if rejected:
        return "rejected"
    plan_level = [b for b in benefits if not b.service_types or "30" in b.service_types]
    for group in (plan_level, list(benefits)):
        codes = {b.code for b in group}
        if codes & ACTIVE:
            return "active"
        if codes & INACTIVE:
            return "inactive"
    return "unknown"
