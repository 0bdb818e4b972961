"""Master data the EHR rarely sends: billing sites, their providers, payers.

Pure dataclasses and lookups; the intake service stores them (Postgres) and hands a
``Registry`` to ``parse_fhir``, which fills from it what the FHIR input leaves out (EIN,
billing address with ZIP+4, payer id, claim filing indicator) and recognises self-pay.
The CSV readers report every bad row with its line and column, never a value.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass

from services.intake.domain.problems import IntakeError, Problem
from services.intake.domain.registry_columns import PAYER_COLUMNS, PROVIDER_COLUMNS, SITE_COLUMNS
from services.intake.domain.states import usps_state
from services.intake.domain.systems import X12_FILING_INDICATORS, npi_is_valid
from shared.events import Address

_REQUIRED = {
    "site": ("site_id", "name"),
    "provider": ("npi", "first_name", "last_name"),
    "payer": ("payer_id", "name"),
}
_ZIP = re.compile(r"\d{5}(-?\d{4})?")
_EIN = re.compile(r"\d{2}-?\d{7}")
_TRUE = {"1", "true", "t", "yes", "y"}
_FALSE = {"", "0", "false", "f", "no", "n"}


@dataclass(frozen=True)
class Site:
    """A billing organisation (what 837 loop 2010AA names)."""

    site_id: str
    name: str
    npi: str | None = None
    tax_id: str | None = None
    taxonomy: str | None = None
    address: Address | None = None
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Provider:
    """A rendering/attending practitioner, by NPI."""

    npi: str
    first_name: str
    last_name: str
    taxonomy: str | None = None
    site_id: str | None = None


@dataclass(frozen=True)
class Payer:
    payer_id: str
    name: str
    filing_indicator: str | None = None  # X12 SBR09
    self_pay: bool = False
    aliases: tuple[str, ...] = ()


def name_key(name: str) -> str:
    """Names compare by letters and digits only, case-folded ("Blue Cross, Inc." ~ "blue cross inc")."""
    return re.sub(r"[^0-9a-z]+", " ", name.casefold()).strip()


class Registry:
    """Lookups over sites, providers and payers. Later entries replace earlier ones of the same key."""

    def __init__(
        self,
        sites: Iterable[Site] = (),
        providers: Iterable[Provider] = (),
        payers: Iterable[Payer] = (),
    ):
        self._sites: dict[str, Site] = {}
        self._site_npi: dict[str, Site] = {}
        self._site_name: dict[str, Site] = {}
        for s in sites:
            self._sites[s.site_id] = s
            if s.npi:
                self._site_npi[s.npi] = s
            for n in (s.name, *s.aliases):
                self._site_name[name_key(n)] = s
        self._providers = {p.npi: p for p in providers}
        self._payers: dict[str, Payer] = {}
        self._payer_name: dict[str, Payer] = {}
        for p in payers:
            self._payers[p.payer_id] = p
            for n in (p.name, *p.aliases):
                self._payer_name[name_key(n)] = p

    def site(self, site_id: str) -> Site | None:
        return self._sites.get(site_id)

    def site_by_npi(self, npi: str) -> Site | None:
        return self._site_npi.get(npi)

    def site_by_name(self, name: str) -> Site | None:
        return self._site_name.get(name_key(name))

    def provider(self, npi: str) -> Provider | None:
        return self._providers.get(npi)

    def payer(self, payer_id: str) -> Payer | None:
        return self._payers.get(payer_id)

    def payer_by_name(self, name: str) -> Payer | None:
        return self._payer_name.get(name_key(name))


# --------------------------------------------------------------------------- CSV


def parse_sites_csv(text: str) -> list[Site]:
    """Sites from CSV with a header naming ``SITE_COLUMNS`` (any order; only site_id and name
    required; aliases separated by ``|``). Raises ``IntakeError`` listing every bad cell."""
    out = []
    problems: list[Problem] = []
    for line, row in _rows(text, "site", SITE_COLUMNS, problems):
        bad = len(problems)
        npi = _npi(row, line, problems)
        tax_id = row.get("tax_id") or None
        if tax_id and not _EIN.fullmatch(tax_id):
            problems.append(Problem(f"line {line}.tax_id", "expected a nine-digit EIN"))
        address = _address(row, line, problems)
        if len(problems) == bad:
            out.append(
                Site(
                    site_id=row["site_id"],
                    name=row["name"],
                    npi=npi,
                    tax_id=tax_id.replace("-", "") if tax_id else None,
                    taxonomy=row.get("taxonomy") or None,
                    address=address,
                    aliases=_aliases(row),
                )
            )
    if problems:
        raise IntakeError(problems)
    return out


def parse_providers_csv(text: str) -> list[Provider]:
    """Providers from CSV with a header naming ``PROVIDER_COLUMNS``. Raises ``IntakeError``."""
    out = []
    problems: list[Problem] = []
    for line, row in _rows(text, "provider", PROVIDER_COLUMNS, problems):
        bad = len(problems)
        npi = _npi(row, line, problems)
        if len(problems) == bad and npi:
            out.append(
                Provider(
                    npi=npi,
                    first_name=row["first_name"],
                    last_name=row["last_name"],
                    taxonomy=row.get("taxonomy") or None,
                    site_id=row.get("site_id") or None,
                )
            )
    if problems:
        raise IntakeError(problems)
    return out


def parse_payers_csv(text: str) -> list[Payer]:
    """Payers from CSV with a header naming ``PAYER_COLUMNS`` (self_pay: true/false, aliases
    separated by ``|``). Raises ``IntakeError``."""
    out = []
    problems: list[Problem] = []
    for line, row in _rows(text, "payer", PAYER_COLUMNS, problems):
        bad = len(problems)
        filing = (row.get("filing_indicator") or "").upper() or None
        if filing and filing not in X12_FILING_INDICATORS:
            problems.append(
                Problem(
                    f"line {line}.filing_indicator",
                    "expected an X12 claim filing indicator code (e.g. MB, MC, CI)",
                )
            )
        flag = (row.get("self_pay") or "").lower()
        if flag not in _TRUE | _FALSE:
            problems.append(Problem(f"line {line}.self_pay", "expected true or false"))
        if len(problems) == bad:
            out.append(
                Payer(
                    payer_id=row["payer_id"],
                    name=row["name"],
                    filing_indicator=filing,
                    self_pay=flag in _TRUE,
                    aliases=_aliases(row),
                )
            )
    if problems:
        raise IntakeError(problems)
    return out


def _rows(text: str, kind: str, columns: tuple[str, ...], problems: list[Problem]):
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip().lower() for h in reader.fieldnames or []]
    unknown = [h for h in header if h not in columns]
    absent = [c for c in _REQUIRED[kind] if c not in header]
    if unknown or absent:
        problems.append(
            Problem("line 1", f"expected a header with the columns {', '.join(columns)}")
        )
        return
    reader.fieldnames = header
    for row in reader:
        line = reader.line_num
        clean = {k: (v or "").strip() for k, v in row.items() if k is not None}
        if not any(clean.values()):
            continue
        missing = [c for c in _REQUIRED[kind] if not clean.get(c)]
        for c in missing:
            problems.append(Problem(f"line {line}.{c}", "required"))
        if not missing:
            yield line, clean


def _npi(row: dict[str, str], line: int, problems: list[Problem]) -> str | None:
    npi = row.get("npi") or None
    if npi and not npi_is_valid(npi):
        problems.append(
            Problem(f"line {line}.npi", "expected a 10-digit NPI with a valid check digit")
        )
    return npi


def _address(row: dict[str, str], line: int, problems: list[Problem]) -> Address | None:
    parts = ("address_line1", "city", "state", "postal_code")
    given = [p for p in parts if row.get(p)]
    if not given:
        return None
    if len(given) < len(parts):
        for p in parts:
            if not row.get(p):
                problems.append(
                    Problem(f"line {line}.{p}", "required with the rest of the address")
                )
        return None
    state = usps_state(row["state"])
    if state is None:
        problems.append(Problem(f"line {line}.state", "expected a US state (USPS code or name)"))
    if not _ZIP.fullmatch(row["postal_code"]):
        problems.append(Problem(f"line {line}.postal_code", "expected a ZIP or ZIP+4 code"))
    if state is None or not _ZIP.fullmatch(row["postal_code"]):
        return None
    return Address(
        line1=row["address_line1"],
        line2=row.get("address_line2") or None,
        city=row["city"],
        state=state,
        postal_code=row["postal_code"].replace("-", ""),
    )


def _aliases(row: dict[str, str]) -> tuple[str, ...]:
    return tuple(a.strip() for a in (row.get("aliases") or "").split("|") if a.strip())
