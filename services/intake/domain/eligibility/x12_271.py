"""X12 271 eligibility response reader (005010X279A1, also the earlier 005010X279).

``read_271`` walks the HL hierarchy (20 information source, 21 receiver, 22 subscriber,
23 dependent) and returns one ``EligibilityResult`` per subscriber or dependent loop that
answers a request (its TRN*2 echoes the 270's trace number), plus one per information
source or receiver loop that rejects the whole inquiry (AAA with no patient below it, no
TRN): that one names its 270 by the BHT03 the 271 echoes (``inquiry_reference``), and
``match_results`` gives it to every request of that 270 interchange.

The text goes through ``shared.x12.prepare`` like every other inbound X12: an ISA wrapped by
CR/LF, Ctrl-Z/NUL padding after IEA and a bare ST..SE read as elsewhere, with its warnings.

Structure errors (no ISA, not a 271, a file cut short before SE/GE/IEA, an HL that names
no parent) raise ``shared.x12.X12Error`` naming the segment position and id. Flaws real
payer files have (an SE count or control number that does not add up, a date or amount
that does not read, an unexpected version) are warnings: a 271 is information, and
refusing a whole file over them would leave the front desk with nothing. No message
carries an element value from a subscriber or dependent loop (PHI).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation

from shared.x12 import X12Error, prepare, split_segments

from .codes import BENEFIT_KINDS, OTHER_ROLES, PAYER_ROLES, REJECT_REASONS
from .model import (
    Benefit,
    EligibilityResult,
    Rejection,
    RelatedEntity,
    coverage_status,
)

VERSIONS = ("005010X279A1", "005010X279")
_ENVELOPE = frozenset({"ISA", "GS", "ST", "SE", "GE", "IEA"})
_LEVELS = {"20": "information_source", "21": "information_receiver", "22": "subscriber"}
_LEVELS["23"] = "dependent"
_PARTY_LEVELS = frozenset({"information_source", "information_receiver"})
_BEGIN_DATES = frozenset({"346", "348", "356", "292"})
_END_DATES = frozenset({"347", "349", "357"})
_RANGE_DATES = frozenset({"291", "307", "290"})


@dataclass(frozen=True, slots=True)
class Response271:
    """A parsed 271 file: its results in file order and the file's warnings."""

    interchange_control_number: str
    sender_id: str
    receiver_id: str
    results: tuple[EligibilityResult, ...]
    warnings: tuple[str, ...] = ()

    @property
    def rejected_interchanges(self) -> tuple[int, ...]:
        """The 270 interchanges (ISA13) rejected as a whole, read from the echoed BHT03 of
        information source or receiver rejections: every check sent in them is answered."""
        found = (r.inquiry_interchange for r in self.results if _whole_inquiry(r))
        return tuple(sorted({n for n in found if n is not None}))


def parse_271(text: str) -> list[EligibilityResult]:
    """The results of a 271 file, in file order. Raises like ``read_271``."""
    return list(read_271(text).results)


def read_271(text: str) -> Response271:
    """Parse a 271 file (one or more transaction sets).

    Raises ``X12Error`` for a structure that cannot be read (see the module docstring) and
    ``TypeError`` when ``text`` is not a str.
    """
    if not isinstance(text, str):
        raise TypeError(f"read_271 expects the file text as str, got {type(text).__name__}")
    # The shared tokenizer, as for 835/999/277CA: an ISA wrapped by CR/LF, padding after
    # IEA and a bare ST..SE are read the same way everywhere.
    prepared = prepare(text)
    seps = prepared.seps
    segments, _ = split_segments(prepared.text, seps)
    isa = segments[0]
    # ISA11 is the repetition separator only from version 00501 on (before, a standard id).
    version_501 = len(isa) > 12 and isa[12] >= "00501"
    repetition = seps.repetition if version_501 and not seps.repetition.isalnum() else None
    warnings: list[str] = list(prepared.warnings)
    results: list[EligibilityResult] = []
    for start, end in _transactions(segments, warnings):
        walker = _Transaction(segments, start, repetition)
        walker.walk(end)
        results.extend(walker.results())
    return Response271(
        interchange_control_number=isa[13] if len(isa) > 13 else "",
        sender_id=isa[6].strip() if len(isa) > 6 else "",
        receiver_id=isa[8].strip() if len(isa) > 8 else "",
        results=tuple(results),
        warnings=tuple(warnings) + tuple(w for r in results for w in r.warnings),
    )


def match_results(
    trace_numbers: Iterable[str],
    results: Iterable[EligibilityResult],
    sent_in: Mapping[str, int] | None = None,
) -> dict[str, EligibilityResult]:
    """Each 270 trace number's result: its own (by any of its TRN*2, as a clearinghouse may
    add its own), else a rejection of the whole inquiry (information source, then receiver
    level). ``sent_in`` maps a trace to the ISA13 of the 270 it went out in: a whole-inquiry
    rejection whose echoed BHT03 names an interchange then answers only that interchange's
    traces (one naming none, e.g. another writer's BHT03, answers every trace given).
    Traces the 271 does not answer are left out."""
    results = list(results)
    own: dict[str, EligibilityResult] = {}
    for r in results:
        for t in r.trace_numbers:
            own.setdefault(t, r)
    batch = [r for r in results if _whole_inquiry(r)]
    batch.sort(key=lambda r: r.level != "information_source")
    out = {}
    for t in trace_numbers:
        if t in own:
            out[t] = own[t]
            continue
        sent = sent_in.get(t) if sent_in is not None else None
        for r in batch:
            n = r.inquiry_interchange
            if n is None or sent is None or n == sent:
                out[t] = r
                break
    return out


def _whole_inquiry(r: EligibilityResult) -> bool:
    return r.trace_number is None and r.status == "rejected" and r.level in _PARTY_LEVELS


def _transactions(segments: list[list[str]], warnings: list[str]) -> list[tuple[int, int]]:
    """(ST index, SE index) of each 271 transaction set; checks the envelopes leniently."""
    out = []
    st: int | None = None
    in_isa = in_gs = False
    groups = sets = 0
    for i, seg in enumerate(segments):
        n, sid = i + 1, seg[0]
        if sid == "ISA":
            if in_isa:
                raise X12Error("ISA before the previous interchange's IEA", n, sid)
            in_isa, groups = True, 0
        elif sid == "GS":
            if not in_isa or in_gs:
                raise X12Error("GS outside an interchange or inside another group", n, sid)
            in_gs, sets = True, 0
            if len(seg) > 1 and seg[1] != "HB":
                warnings.append(f"segment {n} (GS): GS01 is not HB (eligibility response)")
        elif sid == "ST":
            if not in_gs or st is not None:
                raise X12Error("ST outside a functional group or before the previous SE", n, sid)
            if len(seg) < 2 or seg[1] != "271":
                raise X12Error("transaction set is not a 271 (ST01)", n, sid)
            version = seg[3] if len(seg) > 3 else ""
            if version not in VERSIONS:
                warnings.append(f"segment {n} (ST): ST03 is not 005010X279A1; read as one")
            st = i
        elif sid == "SE":
            if st is None:
                raise X12Error("SE without ST", n, sid)
            counted = i - st + 1
            if len(seg) < 2 or seg[1] != str(counted):
                warnings.append(f"segment {n} (SE): SE01 does not count the {counted} segments")
            st02 = segments[st][2] if len(segments[st]) > 2 else ""
            if len(seg) < 3 or seg[2] != st02:
                warnings.append(f"segment {n} (SE): SE02 does not match ST02")
            out.append((st, i))
            st, sets = None, sets + 1
        elif sid == "GE":
            if not in_gs or st is not None:
                raise X12Error("GE without GS, or before SE", n, sid)
            if len(seg) < 2 or seg[1] != str(sets):
                warnings.append(f"segment {n} (GE): GE01 does not count the transaction sets")
            in_gs, groups = False, groups + 1
        elif sid == "IEA":
            if not in_isa or in_gs:
                raise X12Error("IEA without ISA, or before GE", n, sid)
            if len(seg) < 2 or seg[1] != str(groups):
                warnings.append(f"segment {n} (IEA): IEA01 does not count the functional groups")
            in_isa = False
        elif st is None:
            raise X12Error("segment outside a transaction set", n, sid)
    if st is not None:
        raise X12Error("file ends inside a transaction set: expected SE", st + 1, "ST")
    if in_gs:
        raise X12Error("file ends inside a functional group: expected GE", len(segments), None)
    if in_isa:
        raise X12Error("file ends inside an interchange: expected IEA", len(segments), None)
    if not out:
        raise X12Error("no 271 transaction set in the file", 1, "ISA")
    return out


@dataclass
class _Party:
    """An information source or receiver HL."""

    level: str
    parent: _Party | None
    name: str | None = None
    identifier: str | None = None
    rejections: list[Rejection] = field(default_factory=list)
    has_patients: bool = False


@dataclass
class _Patient:
    """A subscriber or dependent HL and what its loops say."""

    level: str
    party: _Party | None  # the receiver (or source) above
    subscriber: _Patient | None = None  # for a dependent
    traces: list[str] = field(default_factory=list)  # every TRN*2 (a clearinghouse adds one)
    member_id: str | None = None
    plan_number: str | None = None
    group_number: str | None = None
    begin: date | None = None
    end: date | None = None
    benefits: list[Benefit] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    has_dependents: bool = False


class _Transaction:
    """One ST...SE walked segment by segment."""

    def __init__(self, segments: list[list[str]], start: int, repetition: str | None):
        self.segments = segments
        self.start = start
        self.repetition = repetition
        self.hls: dict[str, _Party | _Patient] = {}
        self.order: list[_Party | _Patient] = []
        self.current: _Party | _Patient | None = None
        self.benefit: dict | None = None  # the EB being read, until the next EB or HL
        self.in_2120 = False
        bht = segments[start + 1] if start + 1 < len(segments) else []
        self.reference = _el(bht, 3) if bht and bht[0] == "BHT" else None

    # ------------------------------------------------------------------ walking

    def walk(self, end: int) -> None:
        for i in range(self.start + 1, end):
            seg = self.segments[i]
            n, sid = i + 1, seg[0]
            if sid == "HL":
                self._close_benefit()
                self._hl(seg, n)
            elif isinstance(self.current, _Party):
                self._party_segment(self.current, seg, n)
            elif isinstance(self.current, _Patient):
                self._patient_segment(self.current, seg, n)
        self._close_benefit()

    def _hl(self, seg: list[str], n: int) -> None:
        hl_id = seg[1] if len(seg) > 1 else ""
        parent_id = seg[2] if len(seg) > 2 else ""
        code = seg[3] if len(seg) > 3 else ""
        if code not in _LEVELS:
            raise X12Error("HL03 is not 20, 21, 22 or 23", n, "HL")
        if not hl_id or hl_id in self.hls:
            raise X12Error("HL01 is empty or repeats an earlier HL's", n, "HL")
        parent = self.hls.get(parent_id) if parent_id else None
        if code != "20" and parent is None:
            raise X12Error("HL02 names no earlier HL", n, "HL")
        level = _LEVELS[code]
        node: _Party | _Patient
        if code in ("20", "21"):
            node = _Party(level, parent if isinstance(parent, _Party) else None)
        elif code == "22":
            party = parent if isinstance(parent, _Party) else None
            if party is not None:
                party.has_patients = True
                if party.parent is not None:
                    party.parent.has_patients = True
            node = _Patient(level, party)
        else:
            if not isinstance(parent, _Patient) or parent.level != "subscriber":
                raise X12Error("a dependent HL (23) must have a subscriber HL (22) parent", n)
            parent.has_dependents = True
            node = _Patient(level, parent.party, subscriber=parent)
        self.hls[hl_id] = node
        self.order.append(node)
        self.current = node
        self.in_2120 = False

    def _party_segment(self, party: _Party, seg: list[str], n: int) -> None:
        sid = seg[0]
        if sid == "NM1" and party.name is None:
            party.name = _el(seg, 3)
            party.identifier = _el(seg, 9)
        elif sid == "AAA":
            loop = {"information_source": "2100A", "information_receiver": "2100B"}[party.level]
            if party.level == "information_source" and party.name is None:
                loop = "2000A"
            party.rejections.append(_rejection(seg, n, loop))

    def _patient_segment(self, p: _Patient, seg: list[str], n: int) -> None:
        sid = seg[0]
        dependent = p.level == "dependent"
        if sid == "EB":
            self._close_benefit()
            self.benefit = self._open_benefit(p, seg, n)
            self.in_2120 = False
        elif sid == "TRN":
            trace = _el(seg, 2)
            if _el(seg, 1) == "2" and trace:
                p.traces.append(trace)
        elif sid == "LS":
            self.in_2120 = True
        elif sid == "LE":
            self.in_2120 = False
        elif sid == "NM1" and self.in_2120:
            if self.benefit is not None:
                self.benefit["entities"].append(_entity(seg, self.benefit))
        elif sid == "NM1" and self.benefit is None:
            if _el(seg, 8) in ("MI", "II"):
                p.member_id = _el(seg, 9)
        elif sid == "REF":
            self._ref(p, seg)
        elif sid == "DTP":
            self._dtp(p, seg, n)
        elif sid == "AAA":
            if self.benefit is not None:
                loop = "2110D" if dependent else "2110C"
            else:
                loop = "2100D" if dependent else "2100C"
            p.rejections.append(_rejection(seg, n, loop))

    # ------------------------------------------------------------------ benefits

    def _open_benefit(self, p: _Patient, seg: list[str], n: int) -> dict | None:
        code = _el(seg, 1)
        if code is None:
            p.warnings.append(f"segment {n} (EB): EB01 is empty; benefit skipped")
            return None
        types = _el(seg, 3) or ""
        split = types.split(self.repetition) if self.repetition else [types]
        return {
            "patient": p,
            "code": code,
            "kind": BENEFIT_KINDS.get(code, code),
            "coverage_level": _el(seg, 2),
            "service_types": tuple(t for t in split if t),
            "insurance_type": _el(seg, 4),
            "plan": _el(seg, 5),
            "time_period": _el(seg, 6),
            "amount": _number(seg, 7, n, p),
            "percent": _number(seg, 8, n, p),
            "quantity_qualifier": _el(seg, 9),
            "quantity": _number(seg, 10, n, p),
            "authorization_required": _el(seg, 11),
            "network": _el(seg, 12),
            "entities": [],
        }

    def _close_benefit(self) -> None:
        b = self.benefit
        self.benefit = None
        self.in_2120 = False
        if b is None:
            return
        p: _Patient = b.pop("patient")
        b["entities"] = tuple(b["entities"])
        p.benefits.append(Benefit(**b))

    def _ref(self, p: _Patient, seg: list[str]) -> None:
        qualifier, value = _el(seg, 1), _el(seg, 2)
        target = self.benefit if self.benefit is not None else None
        if qualifier == "18":
            if target is not None:
                target["plan_number"] = value
            elif p.plan_number is None:
                p.plan_number = value
        elif qualifier in ("6P", "1L"):
            if target is not None:
                target["group_number"] = value
            elif p.group_number is None:
                p.group_number = value

    def _dtp(self, p: _Patient, seg: list[str], n: int) -> None:
        qualifier = _el(seg, 1) or ""
        begin, end = _dates(seg, n, p)
        if qualifier in _END_DATES:
            begin, end = None, begin if end is None else end
        elif qualifier in _BEGIN_DATES:
            end = end if _el(seg, 2) == "RD8" else None
        elif qualifier not in _RANGE_DATES:
            return
        target = self.benefit if self.benefit is not None else None
        if target is not None:
            target["begin"] = target.get("begin") or begin
            target["end"] = target.get("end") or end
        else:
            p.begin = p.begin or begin
            p.end = p.end or end

    # ------------------------------------------------------------------ results

    def results(self) -> list[EligibilityResult]:
        out = []
        for node in self.order:
            if isinstance(node, _Party):
                if node.rejections and not node.has_patients:
                    out.append(self._party_result(node))
            elif node.level == "dependent" or node.traces or not node.has_dependents:
                out.append(self._patient_result(node))
        return out

    def _source(self, party: _Party | None) -> _Party | None:
        while party is not None and party.level != "information_source":
            party = party.parent
        return party

    def _party_result(self, party: _Party) -> EligibilityResult:
        source = self._source(party)
        rejections = list(party.rejections)
        if party.level == "information_receiver" and source is not None:
            rejections = source.rejections + rejections
        return EligibilityResult(
            trace_number=None,
            level=party.level,  # type: ignore[arg-type]
            status="rejected",
            payer_id=source.identifier if source else None,
            payer_name=source.name if source else None,
            rejections=tuple(rejections),
            inquiry_reference=self.reference,
        )

    def _patient_result(self, p: _Patient) -> EligibilityResult:
        sub = p.subscriber
        source = self._source(p.party)
        rejections = (sub.rejections if sub else []) + p.rejections
        # A rejection at the patient's (or subscriber's) name loop rejects the coverage check;
        # one in a 2110 loop only qualifies that benefit.
        rejected = any(r.loop in ("2100C", "2100D") for r in rejections)
        benefits = tuple(p.benefits)
        active = [b for b in benefits if b.kind == "active" and b.plan]
        plan = active[0].plan if active else next((b.plan for b in benefits if b.plan), None)
        warnings = list(p.warnings)
        traces = p.traces or (sub.traces if sub else [])
        if not traces:
            warnings.append(f"{p.level} loop has no TRN*2 trace number: matches no request")
        return EligibilityResult(
            trace_number=traces[0] if traces else None,
            level=p.level,  # type: ignore[arg-type]
            status=coverage_status(benefits, rejected),
            payer_id=source.identifier if source else None,
            payer_name=source.name if source else None,
            member_id=(sub.member_id if sub else None) or p.member_id,
            plan_name=plan,
            plan_number=p.plan_number
            or (sub.plan_number if sub else None)
            or next((b.plan_number for b in benefits if b.plan_number), None),
            group_number=p.group_number
            or (sub.group_number if sub else None)
            or next((b.group_number for b in benefits if b.group_number), None),
            coverage_begin=p.begin or (sub.begin if sub else None),
            coverage_end=p.end or (sub.end if sub else None),
            benefits=benefits,
            rejections=tuple(rejections),
            warnings=tuple(warnings),
            trace_numbers=tuple(traces),
            inquiry_reference=self.reference,
        )


def _el(seg: list[str], i: int) -> str | None:
    """Element i (1-based, as in EB01), or None when absent or empty."""
    return (seg[i] or None) if len(seg) > i else None


def _number(seg: list[str], i: int, n: int, p: _Patient) -> Decimal | None:
    raw = _el(seg, i)
    if raw is None:
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite():
        p.warnings.append(f"segment {n} ({seg[0]}): {seg[0]}{i:02d} is not a number; dropped")
        return None
    return value


def _dates(seg: list[str], n: int, p: _Patient) -> tuple[date | None, date | None]:
    fmt, raw = _el(seg, 2), _el(seg, 3) or ""
    parts = raw.split("-") if fmt == "RD8" else [raw]
    try:
        dates = [date(int(s[:4]), int(s[4:6]), int(s[6:8])) for s in parts if len(s) == 8]
    except ValueError:
        dates = []
    if len(dates) != len(parts) or fmt not in ("D8", "RD8"):
        p.warnings.append(f"segment {n} (DTP): DTP03 is not a D8/RD8 date; ignored")
        return None, None
    return dates[0], (dates[1] if len(dates) > 1 else None)


def _rejection(seg: list[str], n: int, loop: str) -> Rejection:
    reason = _el(seg, 3) or ""
    description, action = REJECT_REASONS.get(reason, ("rejected", "review"))
    return Rejection(
        loop=loop,
        segment=n,
        valid_request=_el(seg, 1) == "Y",
        reason=reason,
        follow_up=_el(seg, 4),
        description=description,
        action=action,  # type: ignore[arg-type]
    )


def _entity(seg: list[str], benefit: dict) -> RelatedEntity:
    code = _el(seg, 1) or ""
    person = code == "IL"  # the other plan's insured: a person, kept without name or id
    return RelatedEntity(
        entity_code=code,
        role=PAYER_ROLES.get(code) or OTHER_ROLES.get(code) or code,
        name=None if person else _el(seg, 3),
        id_qualifier=_el(seg, 8),
        identifier=None if person else _el(seg, 9),
        benefit_code=benefit["code"],
        insurance_type=benefit["insurance_type"],
    )
