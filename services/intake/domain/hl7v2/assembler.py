"""Messages in, visits out: ``receive`` reads one message (an MLLP frame) into what its ACK
and the assembler need; ``VisitAssembler`` groups messages by visit and says when a visit is
ready for coding, and when a late message updates a visit already released.

The assembler is pure and in memory. A service keeps the received messages durably (by
``Received.visit_key``) and can rebuild any visit by feeding its messages again, in order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from services.intake.domain.codes import ConceptMaps
from services.intake.domain.hl7v2.message import (
    Hl7Message,
    MessageMeta,
    parse_message,
    parse_messages,
)
from services.intake.domain.hl7v2.problems import Hl7Error, Hl7Problem, ack_code
from services.intake.domain.hl7v2.read import Contribution, read_message
from services.intake.domain.hl7v2.rules import Hl7Rules
from services.intake.domain.hl7v2.visit import UNASSIGNED, AssembledVisit, VisitState, assemble
from services.intake.domain.registry import Registry, Site

Status = Literal["waiting", "ready", "update", "unchanged", "ignored", "rejected"]


@dataclass
class Received:
    """One message as read: its header (None when MSH could not be read), the parsed
    message and what it says (None when rejected), every problem (errors and warnings, for
    the ACK's ERR segments), and the visit it belongs to."""

    meta: MessageMeta | None
    message: Hl7Message | None
    contribution: Contribution | None
    problems: list[Hl7Problem]
    visit_key: str | None = None
    site_id: str | None = None

    @property
    def ack_code(self) -> str:
        return ack_code(self.problems)

    @property
    def used(self) -> bool:
        """Whether intake uses the message type (ADT visit events, BAR, MDM, DFT)."""
        return self.contribution is not None and self.contribution.kind != "other"


@dataclass
class Step:
    """What adding one message did: ``waiting`` (the visit is not ready: ``awaiting`` says
    for what), ``ready`` (release it for coding), ``update`` (a late message changed a visit
    already released: the service makes it a new version or a correction request),
    ``unchanged`` (a re-sent message, or one that changed nothing), ``ignored`` (a message
    type intake does not use), ``rejected`` (errors: see ``received.problems``)."""

    status: Status
    received: Received
    visit: AssembledVisit | None = None

    @property
    def awaiting(self) -> list[str]:
        return self.visit.awaiting if self.visit else []


def receive(
    data: bytes | str | Hl7Message | Hl7Error,
    rules: Hl7Rules | None = None,
    registry: Registry | None = None,
) -> Received:
    """Parse and read one message; never raises. ``visit_key`` is set when the message is
    of a type intake uses and names its visit."""
    rules = rules or Hl7Rules()
    if isinstance(data, Hl7Error):
        return Received(data.meta, None, None, list(data.problems))
    try:
        msg = data if isinstance(data, Hl7Message) else parse_message(data)
    except Hl7Error as e:
        return Received(e.meta, None, None, list(e.problems))
    c = read_message(msg)
    problems = [*msg.warnings, *c.problems]
    out = Received(msg.meta, msg, c, problems)
    if c.kind == "other":
        return out
    site = _site(c, rules, registry)
    out.site_id = site.site_id if site else (rules.default_site or UNASSIGNED)
    out.visit_key = _key(c, rules, out.site_id)
    if out.visit_key is None and not any(p.is_error for p in problems):
        wanted = ", ".join(" with ".join(k) for k in rules.visit_keys)
        problems.append(
            Hl7Problem(
                f"required: an identifier of the visit (one of {wanted})",
                "PV1",
                19,
                code=101,
                position=_position(msg, "PV1"),
            )
        )
    return out


def _position(msg: Hl7Message, seg_id: str) -> int | None:
    seg = msg.first(seg_id)
    return seg.position if seg else None


def _key(c: Contribution, rules: Hl7Rules, site_id: str) -> str | None:
    for spec in rules.visit_keys:
        values = [c.keys.get(f, "") for f in spec]
        if all(values):
            return f"{site_id}|{'+'.join(spec)}|{'+'.join(values)}"
    return None


def _site(c: Contribution, rules: Hl7Rules, registry: Registry | None) -> Site | None:
    """The site a message names: the rules' facility map, else the registry (site id, then
    name), over PV1-39, PV1-3.4 and MSH-4 in that order; else the default site."""
    for name in c.facilities:
        mapped = rules.facilities.get(name)
        if registry is not None:
            found = registry.site(mapped or name) or (
                None if mapped else registry.site_by_name(name)
            )
            if found is not None:
                return found
        if mapped:
            return Site(site_id=mapped, name=mapped)
    if registry is not None and rules.default_site:
        return registry.site(rules.default_site)
    return None


class VisitAssembler:
    """Groups messages into visits and says when each is ready (see ``Step``)."""

    def __init__(
        self,
        rules: Hl7Rules | None = None,
        *,
        registry: Registry | None = None,
        concept_maps: ConceptMaps | None = None,
    ):
        self.rules = rules or Hl7Rules()
        self.registry = registry
        self.concept_maps = concept_maps
        self._states: dict[str, VisitState] = {}
        self._released: dict[str, AssembledVisit] = {}
        self._seen: set[tuple[str, str]] = set()

    def add(self, message: bytes | str | Hl7Message | Received) -> Step:
        received = (
            message
            if isinstance(message, Received)
            else receive(message, self.rules, self.registry)
        )
        if any(p.is_error for p in received.problems):
            return Step("rejected", received)
        if not received.used or received.visit_key is None:
            return Step("ignored", received)
        meta = received.meta
        assert meta is not None and received.contribution is not None
        key = received.visit_key
        dedupe = (meta.facility, meta.control_id)
        if dedupe in self._seen:
            return Step("unchanged", received, self._released.get(key) or self._build(key))
        self._seen.add(dedupe)
        state = self._states.setdefault(key, VisitState(key, received.site_id or UNASSIGNED))
        state.merge(received.contribution)
        visit = self._build(key)
        before = self._released.get(key)
        if before is not None:
            if _same(before, visit):
                return Step("unchanged", received, before)
            self._released[key] = visit
            return Step("update", received, visit)
        if visit.ready:
            self._released[key] = visit
            return Step("ready", received, visit)
        return Step("waiting", received, visit)

    def visits(self) -> list[AssembledVisit]:
        """Every visit seen, ready or not (offline coding of a file takes them all)."""
        return [self._build(key) for key in self._states]

    def _build(self, key: str) -> AssembledVisit:
        state = self._states[key]
        site = self.registry.site(state.site_id) if self.registry is not None else None
        rule = self.rules.readiness_for(state.site_id)
        return assemble(
            state, rule, site=site, registry=self.registry, concept_maps=self.concept_maps
        )


def _same(a: AssembledVisit, b: AssembledVisit) -> bool:
    return (a.encounter, a.cancelled, a.charges) == (b.encounter, b.cancelled, b.charges)


@dataclass
class FileResult:
    """A file of messages: every visit it assembles (ready or not), each message's outcome,
    and problems of the file itself (lines outside any message)."""

    visits: list[AssembledVisit]
    steps: list[Step]
    problems: list[Hl7Problem] = field(default_factory=list)

    @property
    def rejected(self) -> list[Step]:
        return [s for s in self.steps if s.status == "rejected"]


def read_file(
    data: bytes | str,
    rules: Hl7Rules | None = None,
    *,
    registry: Registry | None = None,
    concept_maps: ConceptMaps | None = None,
) -> FileResult:
    """Assemble the visits of a file of HL7 v2 messages (any segment terminator, FHS/BHS
    batches); for ``rcm code FILE.hl7`` and ``rcm submit FILE.hl7``. Never raises."""
    assembler = VisitAssembler(rules, registry=registry, concept_maps=concept_maps)
    messages, problems = parse_messages(data)
    steps = [assembler.add(receive(m, assembler.rules, registry)) for m in messages]
    return FileResult(assembler.visits(), steps, problems)
