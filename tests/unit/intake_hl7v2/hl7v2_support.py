"""Test helpers: the sample registry, rules for the Northgate site, a segment builder."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from services.intake.domain.hl7v2 import Hl7Rules, parse_readiness
from services.intake.domain.registry import (
    Registry,
    parse_payers_csv,
    parse_providers_csv,
    parse_sites_csv,
)

MESSAGES = Path(__file__).parent / "messages"


def registry() -> Registry:
    """The registry the intake service ships as sample data (sites, providers, payers)."""
    data = resources.files("services.intake.data")
    return Registry(
        parse_sites_csv(data.joinpath("sample_sites.csv").read_text()),
        parse_providers_csv(data.joinpath("sample_providers.csv").read_text()),
        parse_payers_csv(data.joinpath("sample_payers.csv").read_text()),
    )


def rules(readiness: str = "note+charges", **kw) -> Hl7Rules:
    return Hl7Rules(
        facilities={"NORTHGATE": "north-clinic"}, readiness=parse_readiness(readiness), **kw
    )


def seg(seg_id: str, values: dict[int, str]) -> str:
    """A segment with each value at its HL7 field number (MSH counts its separator as 1)."""
    fields = [""] * (max(values) + 1)
    for n, v in values.items():
        fields[n] = v
    if seg_id == "MSH":
        return "MSH|" + "|".join(fields[2:])
    return seg_id + "|" + "|".join(fields[1:])


def msh(mtype: str, control_id: str, version: str = "2.5.1") -> str:
    return seg(
        "MSH",
        {2: "^~\\&", 3: "EHR", 4: "NORTHGATE", 5: "RCM", 7: "20260511090000", 9: mtype,
         10: control_id, 11: "P", 12: version},
    )  # fmt: skip
