"""Remittance (835 ERA) domain model.

Plain slotted dataclasses for the things payments posts (claims, service lines)
and tuples for the small repeated items (adjustments, provider adjustments), so
parsing a large ERA stays cheap. Patient and subscriber names are PHI: they are
kept (posting and statements may need them) but excluded from ``repr`` so a
logged object never leaks them.

Claims and lines from the 835 parser hold the shared read-only ``EMPTY_LIST``
/ ``EMPTY_DICT`` in the containers they have nothing for (most lines have no
LQ or QTY, most claims no claim-level CAS, REF or AMT): they compare, print
and serialize like ``[]`` / ``{}``, but mutating one raises ``TypeError``
instead of leaking an item into every other claim. Replace such a field
rather than appending to it; objects built with the constructors get fresh
containers as before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from datetime import date
from decimal import Decimal
from typing import Any, NamedTuple

# CLP02 claim status codes (005010X221A1).
CLAIM_STATUS = {
    "1": "processed as primary",
    "2": "processed as secondary",
    "3": "processed as tertiary",
    "4": "denied",
    "19": "processed as primary, forwarded to additional payer(s)",
    "20": "processed as secondary, forwarded to additional payer(s)",
    "21": "processed as tertiary, forwarded to additional payer(s)",
    "22": "reversal of previous payment",
    "23": "not our claim, forwarded to additional payer(s)",
    "25": "predetermination pricing only, no payment",
}
REVERSAL = "22"
DENIED = "4"
SECONDARY_STATUSES = frozenset({"2", "3", "20", "21"})

# CAS01 claim adjustment group codes.
ADJUSTMENT_GROUPS = frozenset({"CO", "CR", "OA", "PI", "PR"})


def _read_only(self: object, *args: object, **kwargs: object) -> None:
    raise TypeError("shared empty container of a parsed 835 object; assign a new list/dict instead")


class _EmptyList(list):
    """``EMPTY_LIST``'s type: a list that refuses every in-place change.

    Like an immutable value, it stays itself through ``copy`` and ``pickle``
    (a plain copy would be one list shared by every field that held the
    sentinel); calling the class, as ``dataclasses.asdict`` does, gives a
    plain list.
    """

    __slots__ = ()
    append = extend = insert = remove = pop = clear = sort = reverse = _read_only
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _read_only

    def __new__(cls, *args: Any) -> list:  # type: ignore[misc]
        return list(*args)

    def __copy__(self) -> list:
        return self

    def __deepcopy__(self, memo: dict) -> list:
        return self

    def __reduce__(self) -> str:
        return "EMPTY_LIST"


class _EmptyDict(dict):
    """``EMPTY_DICT``'s type: a dict that refuses every in-place change (see ``_EmptyList``)."""

    __slots__ = ()
    __setitem__ = __delitem__ = __ior__ = _read_only
    clear = pop = popitem = setdefault = update = _read_only

    def __new__(cls, *args: Any, **kwargs: Any) -> dict:  # type: ignore[misc]
        return dict(*args, **kwargs)

    def __copy__(self) -> dict:
        return self

    def __deepcopy__(self, memo: dict) -> dict:
        return self

    def __reduce__(self) -> str:
        return "EMPTY_DICT"


# One instance each, shared by every parsed object that has nothing to hold.
EMPTY_LIST: list = list.__new__(_EmptyList)
EMPTY_DICT: dict = dict.__new__(_EmptyDict)


class Adjustment(NamedTuple):
    """One CAS reason/amount/quantity triplet."""

    group: str  # CO contractual, PR patient responsibility, OA, PI, CR
    reason: str  # CARC
    amount: Decimal
    quantity: Decimal | None
    level: str  # "claim" or "line"


class ProviderAdjustment(NamedTuple):
    """One PLB adjustment pair.

    Sign as in the 835: a positive amount reduces the payment (recoupment,
    withholding, forward balance), a negative one increases it (interest).
    """

    provider_id: str  # PLB01
    fiscal_period_date: date | None  # PLB02
    reason: str  # PLB03-1, e.g. L6 interest, WO overpayment recovery, FB forward balance
    reference: str | None  # PLB03-2, e.g. the payer claim control number recovered
    amount: Decimal


class PersonName(NamedTuple):
    """NM1 individual or organisation name with its identifier. PHI for QC/IL/74."""

    last_or_org: str
    first: str
    middle: str
    id_qualifier: str
    id: str


@dataclass(slots=True)
class ServiceLine:
    """Loop 2110 service payment information (SVC and its children)."""

    qualifier: str  # SVC01-1: HC (CPT/HCPCS), NU (revenue code), AD, ER, HP, IV, N4, WK
    code: str  # SVC01-2
    modifiers: tuple[str, ...]
    charge: Decimal  # SVC02
    paid: Decimal  # SVC03
    revenue_code: str | None = None  # SVC04
    units: Decimal = Decimal(1)  # SVC05: paid units, "1" when absent (TR3)
    original_qualifier: str | None = None  # SVC06 when the payer changed the billed code
    original_code: str | None = None
    original_modifiers: tuple[str, ...] = ()
    original_units: Decimal | None = None  # SVC07
    service_date: date | None = None  # DTM*472, or DTM*150 (period start)
    service_end_date: date | None = None  # DTM*151
    adjustments: list[Adjustment] = field(default_factory=list)
    remarks: list[str] = field(default_factory=list)  # LQ*HE RARCs ("RX:" prefix for NCPDP)
    line_control_number: str | None = None  # REF*6R, echoes the 837 line item control number
    refs: dict[str, str] = field(default_factory=dict)
    amounts: dict[str, Decimal] = field(default_factory=dict)  # AMT, e.g. B6 allowed
    quantities: dict[str, Decimal] = field(default_factory=dict)

    @property
    def billed_code(self) -> str:
        """The code as billed: SVC06 when the payer changed it, else SVC01."""
        return self.original_code or self.code

    @property
    def billed_modifiers(self) -> tuple[str, ...]:
        return self.original_modifiers if self.original_code else self.modifiers


@dataclass(slots=True)
class ClaimPayment:
    """Loop 2100 claim payment information (CLP and its children)."""

    patient_control_number: str  # CLP01, the claim id we sent in CLM01
    status_code: str  # CLP02
    charge: Decimal  # CLP03
    paid: Decimal  # CLP04
    patient_responsibility: Decimal | None  # CLP05
    filing_indicator: str  # CLP06
    payer_claim_control_number: str | None = None  # CLP07
    facility_type: str | None = None  # CLP08
    frequency: str | None = None  # CLP09
    drg_code: str | None = None  # CLP11
    adjustments: list[Adjustment] = field(default_factory=list)
    remarks: list[str] = field(default_factory=list)  # MOA/MIA remark codes
    patient: PersonName | None = field(default=None, repr=False)  # NM1*QC, PHI
    subscriber: PersonName | None = field(default=None, repr=False)  # NM1*IL, PHI
    corrected_patient: PersonName | None = field(default=None, repr=False)  # NM1*74, PHI
    rendering_provider: PersonName | None = None  # NM1*82
    crossover_carrier: PersonName | None = None  # NM1*TT
    corrected_priority_payer: PersonName | None = None  # NM1*PR
    statement_from: date | None = None  # DTM*232
    statement_to: date | None = None  # DTM*233
    received_date: date | None = None  # DTM*050
    coverage_expiration: date | None = None  # DTM*036
    refs: dict[str, str] = field(default_factory=dict)
    amounts: dict[str, Decimal] = field(default_factory=dict)  # AMT, e.g. AU coverage, I interest
    quantities: dict[str, Decimal] = field(default_factory=dict)
    service_lines: list[ServiceLine] = field(default_factory=list)

    @property
    def is_reversal(self) -> bool:
        return self.status_code == REVERSAL


@dataclass(slots=True)
class Party:
    """Payer (loop 1000A) or payee (loop 1000B)."""

    entity: str  # PR or PE
    name: str
    id_qualifier: str | None = None  # N103: XV/PI payer id; XX NPI, FI tax id for payees
    id: str | None = None  # N104
    address: tuple[str, ...] = ()  # N301, N302, N401 city, N402 state, N403 zip
    refs: dict[str, str] = field(default_factory=dict)

    @property
    def payer_id(self) -> str | None:
        """Payer identifier: N104, else REF*2U (additional payer identification)."""
        return self.id or self.refs.get("2U")

    @property
    def npi(self) -> str | None:
        return self.id if self.id_qualifier == "XX" else None

    @property
    def tax_id(self) -> str | None:
        if self.id_qualifier == "FI":
            return self.id
        return self.refs.get("TJ")


@dataclass(slots=True)
class Payment:
    """BPR financial information and TRN reassociation trace."""

    handling_code: str  # BPR01: C payment+advice, I remittance only, H notification only, ...
    amount: Decimal  # BPR02, always >= 0; see credit_debit
    credit_debit: str  # BPR03: C credit to the provider, D debit
    method: str  # BPR04: ACH, BOP, CHK, FWT, NON
    date: date | None  # BPR16 check issue / EFT effective date
    trace_number: str = ""  # TRN02 check or EFT trace number
    originator: str | None = None  # TRN03 payer's originating company id
    currency: str | None = None  # CUR02

    @property
    def signed_amount(self) -> Decimal:
        """BPR02 with its direction: negative when the provider is debited."""
        return -self.amount if self.credit_debit == "D" else self.amount


@dataclass(slots=True)
class RemitTransaction:
    """One 835 transaction set (ST...SE): one payment from one payer to one payee."""

    st_control_number: str
    isa_control_number: str
    gs_control_number: str
    payment: Payment
    payer: Party
    payee: Party
    production_date: date | None = None  # DTM*405
    refs: dict[str, str] = field(default_factory=dict)  # header REF: EV receiver, F2 version
    claims: list[ClaimPayment] = field(default_factory=list)
    provider_adjustments: list[ProviderAdjustment] = field(default_factory=list)
    # Things that are off but do not make the data unusable (bad date, odd separator).
    warnings: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Era835:
    """A parsed 835 file: one or more interchanges, each with 835 transactions."""

    interchange_control_number: str  # ISA13 of the first interchange
    interchange_control_numbers: list[str]
    sender_id: str  # ISA06 of the first interchange
    receiver_id: str  # ISA08
    transactions: list[RemitTransaction]

    @property
    def claims(self) -> list[ClaimPayment]:
        return [c for t in self.transactions for c in t.claims]


def fast_constructor(cls: type, *positional: str, shared_empty: bool = False) -> Callable[..., Any]:
    """A positional-only builder for the slotted dataclass ``cls``, for parsers.

    ``cls(...)`` goes through ``type.__call__`` and the generic dataclass
    ``__init__`` (keyword handling, default-factory sentinels): about 40% of
    an 835 parse's object cost. The builder is generated from
    ``dataclasses.fields`` so it sets every field, present and future:
    ``positional`` fields from its arguments, the rest to their defaults (a
    fresh list/dict for factories, or with ``shared_empty`` the read-only
    ``EMPTY_LIST``/``EMPTY_DICT``, which the caller must replace before
    adding items). Raises ``TypeError`` for an unknown field name, a field
    without default or a class with ``__post_init__``.
    """
    names = {f.name for f in fields(cls)}
    if unknown := set(positional) - names:
        raise TypeError(f"{cls.__name__} has no field(s) {sorted(unknown)}")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} has __post_init__; use the constructor")
    # The builder is a closure: its helpers and defaults load as fast as locals.
    free: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    lines = ["    o = _new(_cls)"]
    for f in fields(cls):
        if f.name in positional:
            value = f.name
        elif f.default_factory is list and shared_empty:
            free["_empty_list"], value = EMPTY_LIST, "_empty_list"
        elif f.default_factory is list:
            value = "[]"
        elif f.default_factory is dict and shared_empty:
            free["_empty_dict"], value = EMPTY_DICT, "_empty_dict"
        elif f.default_factory is dict:
            value = "{}"
        elif f.default_factory is not MISSING:
            free[f"_f_{f.name}"], value = f.default_factory, f"_f_{f.name}()"
        elif f.default is None or f.default == () and type(f.default) is tuple:
            value = repr(f.default)  # a constant
        elif f.default is not MISSING:
            free[f"_d_{f.name}"], value = f.default, f"_d_{f.name}"
        else:
            raise TypeError(f"{cls.__name__}.{f.name} has no default")
        lines.append(f"    o.{f.name} = {value}")
    src = (
        f"def make({', '.join(free)}):\n"
        f"  def build({', '.join(positional)}):\n"
        + "\n".join("  " + ln for ln in lines)
        + "\n      return o\n  return build\n"
    )
    ns: dict[str, Any] = {}
    exec(src, ns)  # noqa: S102 - source built from field names only
    build = ns["make"](**free)
    build.__qualname__ = build.__name__ = f"new_{cls.__name__}"
    return build


# Parser-side builders: ServiceLine(qualifier, code, modifiers, charge, paid,
# revenue_code, units) and ClaimPayment(CLP01..CLP09, CLP11) without __init__,
# containers shared empty until the parser's first write replaces them.
new_service_line = fast_constructor(
    ServiceLine,
    "qualifier",
    "code",
    "modifiers",
    "charge",
    "paid",
    "revenue_code",
    "units",
    shared_empty=True,
)
new_claim_payment = fast_constructor(
    ClaimPayment,
    "patient_control_number",
    "status_code",
    "charge",
    "paid",
    "patient_responsibility",
    "filing_indicator",
    "payer_claim_control_number",
    "facility_type",
    "frequency",
    "drg_code",
    shared_empty=True,
)
