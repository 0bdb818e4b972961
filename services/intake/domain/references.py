"""FHIR references as FHIR defines them, resolved within one input.

Forms: relative ``Type/id``, absolute URLs, ``urn:uuid:``/``urn:oid:`` fullUrls, versioned
``.../_history/n``, conditional ``Type?identifier=system|value`` (or ``_id=``), contained
``#id``, logical (``Reference.identifier`` only) and display-only. ``Index.resolve`` answers
a ``Ref``: the resource when the input holds it, else what the reference itself says (its
identifier, its display), so a caller can still use an NPI in a conditional reference.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote

from services.intake.domain.problems import Sink

_TYPE_ID = re.compile(
    r"(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[A-Za-z0-9\-.]{1,64})?/?$"
)
_HISTORY = re.compile(r"/_history/[^/]+/?$")


def join(base: str, key: str) -> str:
    return f"{base}.{key}" if base else key


@dataclass(eq=False)
class Res:
    """One resource of the input, with its JSON path."""

    path: str
    data: dict
    type: str
    full_url: str | None = None
    container: Res | None = None  # the resource holding this one in ``contained``
    contained: dict[str, Res] = field(default_factory=dict)  # "#id" -> resource

    @property
    def id(self) -> str | None:
        rid = self.data.get("id")
        return rid.strip() if isinstance(rid, str) and rid.strip() else None


@dataclass(frozen=True)
class Ref:
    """What a Reference gave: the resource, else its identifier and display."""

    res: Res | None = None
    type: str | None = None
    identifier: tuple[str | None, str] | None = None  # (system, value)
    display: str | None = None
    given: bool = False  # the Reference had a ``reference`` string


def _identifiers(data: dict) -> list[tuple[str | None, str]]:
    idents = data.get("identifier")
    out: list[tuple[str | None, str]] = []
    for ident in idents if isinstance(idents, list) else []:
        if isinstance(ident, dict) and isinstance(ident.get("value"), str) and ident["value"]:
            system = ident.get("system") if isinstance(ident.get("system"), str) else None
            out.append((system, ident["value"].strip()))
    return out


class Index:
    """Resources by fullUrl, ``Type/id`` and identifier, for resolving references."""

    def __init__(self, resources: list[Res]):
        self.resources = resources
        self.by_type: dict[str, list[Res]] = {}
        self.keys: dict[str, Res] = {}
        self.idents: dict[tuple[str, str | None, str], list[Res]] = {}
        for r in resources:
            self.by_type.setdefault(r.type, []).append(r)
            for key in self._keys_of(r):
                self.keys.setdefault(key, r)
            for system, value in _identifiers(r.data):
                self.idents.setdefault((r.type, system, value), []).append(r)
                if system is not None:
                    self.idents.setdefault((r.type, None, value), []).append(r)

    @staticmethod
    def _keys_of(r: Res) -> list[str]:
        keys = []
        if r.full_url:
            keys.append(r.full_url)
            m = _TYPE_ID.search(r.full_url)
            if m and m.group(1) == r.type:
                keys.append(f"{r.type}/{m.group(2)}")
        if r.id:
            keys.append(f"{r.type}/{r.id}")
        return keys

    def of_type(self, *types: str) -> list[Res]:
        """Resources of these types, in input order."""
        if len(types) == 1:
            return self.by_type.get(types[0], [])
        return [r for r in self.resources if r.type in types]

    def by_identifier(self, rtype: str | None, system: str | None, value: str) -> list[Res]:
        if rtype is None:
            return [
                r for (t, s, v), rs in self.idents.items() if s == system and v == value for r in rs
            ]
        return self.idents.get((rtype, system, value), [])

    def lookup(self, target: str, holder: Res | None) -> Res | None:
        """The resource a reference string names, or None."""
        target = target.strip()
        if target.startswith("#"):
            root = holder
            while root is not None and root.container is not None:
                root = root.container
            if root is None:
                return None
            return root if target == "#" else root.contained.get(target)
        if "?" in target:
            return self._conditional(target)
        hit = self.keys.get(target) or self.keys.get(_HISTORY.sub("", target))
        if hit is None and (m := _TYPE_ID.search(target)):
            hit = self.keys.get(f"{m.group(1)}/{m.group(2)}")
        return hit

    def _conditional(self, target: str) -> Res | None:
        rtype, _, query = target.partition("?")
        rtype = rtype.rsplit("/", 1)[-1]
        found: list[Res] | None = None
        for name, value in parse_qsl(query, keep_blank_values=True):
            if name == "identifier":
                system, bar, val = unquote(value).rpartition("|")
                hits = self.by_identifier(rtype, (system or None) if bar else None, val)
            elif name == "_id":
                hit = self.keys.get(f"{rtype}/{value}")
                hits = [hit] if hit else []
            else:
                return None  # search parameters other than identifier/_id are not evaluated
            found = hits if found is None else [r for r in found if r in hits]
        return found[0] if found and len(set(map(id, found))) == 1 else None

    def resolve(
        self, ref: object, path: str, holder: Res | None, types: tuple[str, ...], sink: Sink
    ) -> Ref:
        """Resolve a Reference; warns (into ``sink``) when it names a resource the input does not
        hold or one of another type than ``types``. Never raises."""
        if ref is None:
            return Ref()
        if not isinstance(ref, dict):
            sink.add(path, "expected a Reference object")
            return Ref()
        display = ref.get("display").strip() if isinstance(ref.get("display"), str) else None
        rtype = ref.get("type") if isinstance(ref.get("type"), str) else None
        ident = None
        if isinstance(ref.get("identifier"), dict):
            found = _identifiers({"identifier": [ref["identifier"]]})
            ident = found[0] if found else None
        target = ref.get("reference")
        if target is not None and not isinstance(target, str):
            sink.add(join(path, "reference"), "expected a string")
            target = None
        target = target.strip() if target else None
        if target:
            rtype = rtype or _type_of(target)
            if ident is None:
                ident = _conditional_identifier(target)
        hit = self.lookup(target, holder) if target else None
        if hit is None and ident is not None and not target:
            hits = self.by_identifier(rtype, ident[0], ident[1])
            hit = hits[0] if len(hits) == 1 else None
        if hit is not None and hit.type not in types:
            sink.add(join(path, "reference"), f"expected a reference to {' or '.join(types)}")
            return Ref(display=display)
        if hit is None and target:
            sink.add(join(path, "reference"), "does not resolve to a resource in the input")
        return Ref(hit, hit.type if hit else rtype, ident, display or None, bool(target))


def _type_of(target: str) -> str | None:
    if "?" in target:
        return target.partition("?")[0].rsplit("/", 1)[-1] or None
    m = _TYPE_ID.search(target)
    return m.group(1) if m else None


def _conditional_identifier(target: str) -> tuple[str | None, str] | None:
    if "?" not in target:
        return None
    for name, value in parse_qsl(target.partition("?")[2]):
        if name == "identifier":
            system, bar, val = unquote(value).rpartition("|")
            return ((system or None) if bar else None), val
    return None
