"""What a site configures for HL7 v2 intake: how messages are grouped into visits, when a
visit is ready for coding, which facility is which site. Pure values; the intake service
builds them from its settings (docs/hl7v2-intake.md lists the variables)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

# Conditions a readiness rule combines (all must hold):
CONDITIONS = {
    "registration": "an ADT/BAR registration of the visit",
    "discharge": "the discharge (ADT^A03, or PV1-45)",
    "note": "a clinical document (MDM with TXA)",
    "signed_note": "a signed document (TXA-17 AU authenticated or LA legally authenticated)",
    "charges": "charges (DFT with FT1)",
}
PRESETS = {
    "hospital": frozenset({"discharge", "signed_note"}),
    "clinic": frozenset({"note"}),
}
# Fields a visit key may name: CX identifiers, dates (the day), the MRN (PID-3's MR).
KEY_FIELDS = {
    "PV1-19": "visit number",
    "PV1-50": "alternate visit id",
    "PV1-5": "preadmit number",
    "PID-18": "patient account number",
    "PID-3": "medical record number",
    "PV1-44": "admit date",
}


class RulesError(ValueError):
    """A setting that cannot be a rule; the message names the setting, not a value."""


@dataclass(frozen=True)
class Readiness:
    """A visit is ready for coding when every condition holds (and it has a date of service)."""

    require: frozenset[str]

    @property
    def label(self) -> str:
        return "+".join(sorted(self.require))


def parse_readiness(text: str) -> Readiness:
    """``hospital`` (discharge+signed_note), ``clinic`` (note), or conditions joined by ``+``
    (e.g. ``discharge+signed_note+charges``). Raises ``RulesError``."""
    text = text.strip().lower()
    if text in PRESETS:
        return Readiness(PRESETS[text])
    parts = frozenset(p.strip() for p in text.split("+") if p.strip())
    unknown = sorted(p for p in parts if p not in CONDITIONS)
    if not parts or unknown:
        raise RulesError(
            "readiness: expected hospital, clinic or conditions joined by + from "
            + ", ".join(CONDITIONS)
        )
    return Readiness(parts)


def parse_visit_keys(text: str) -> tuple[tuple[str, ...], ...]:
    """Visit keys in order of preference, separated by commas; a key joins fields with ``+``:
    ``PV1-19,PID-18,PID-3+PV1-44``. Raises ``RulesError``."""
    keys = []
    for item in text.split(","):
        parts = tuple(p.strip().upper() for p in item.split("+") if p.strip())
        if not parts or any(p not in KEY_FIELDS for p in parts):
            raise RulesError("visit keys: expected fields among " + ", ".join(KEY_FIELDS))
        keys.append(parts)
    return tuple(keys)


@dataclass(frozen=True)
class Hl7Rules:
    """``visit_keys``: how messages of one visit are recognised, first that a message has
    wins; ``readiness`` per site (``site_readiness``) else the default; ``facilities`` maps
    a sending facility (MSH-4), a location facility (PV1-3.4) or a servicing facility
    (PV1-39) to a site id, before the site registry is asked; ``default_site`` is the site
    of messages that name none the registry knows."""

    visit_keys: tuple[tuple[str, ...], ...] = (("PV1-19",), ("PID-18",), ("PID-3", "PV1-44"))
    readiness: Readiness = Readiness(PRESETS["clinic"])
    site_readiness: Mapping[str, Readiness] = field(default_factory=dict)
    facilities: Mapping[str, str] = field(default_factory=dict)
    default_site: str | None = None

    def readiness_for(self, site_id: str) -> Readiness:
        return self.site_readiness.get(site_id, self.readiness)


def parse_site_map(text: str, what: str) -> dict[str, str]:
    """``a=b;c=d`` pairs (site readiness or facility -> site settings). Raises ``RulesError``."""
    out = {}
    for item in text.split(";"):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise RulesError(f"{what}: expected NAME=VALUE pairs separated by ;")
        out[key.strip()] = value.strip()
    return out
