"""Master data over HTTP: the bodies PUT /sites/{id} and PUT /payers/{id} take, checked the way
the CSV loaders check rows (``services.intake.domain.registry``), and the JSON they serve.

Messages name what was expected, never the value found.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.intake.domain.registry import Payer, Provider, Site
from services.intake.domain.states import usps_state
from services.intake.domain.systems import X12_FILING_INDICATORS, npi_is_valid
from shared.events import Address

Text = Annotated[str, Field(min_length=1, max_length=120)]
Taxonomy = Annotated[str, Field(pattern=r"^[0-9A-Z]{9}X$")]
_ZIP = re.compile(r"\d{5}(-?\d{4})?")
_EIN = re.compile(r"\d{2}-?\d{7}")


def _npi(v: str | None) -> str | None:
    if v is not None and not npi_is_valid(v):
        raise ValueError("expected a 10-digit NPI with a valid check digit")
    return v


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class AddressBody(Body):
    line1: Text
    line2: Text | None = None
    city: Text
    state: str
    postal_code: str

    @field_validator("state")
    @classmethod
    def _state(cls, v: str) -> str:
        code = usps_state(v)
        if code is None:
            raise ValueError("expected a US state (USPS code or name)")
        return code

    @field_validator("postal_code")
    @classmethod
    def _zip(cls, v: str) -> str:
        if not _ZIP.fullmatch(v):
            raise ValueError("expected a ZIP or ZIP+4 code")
        return v.replace("-", "")


class ProviderBody(Body):
    """A rendering provider billing under the site."""

    npi: str
    first_name: Text
    last_name: Text
    taxonomy: Taxonomy | None = None

    @field_validator("npi")
    @classmethod
    def _check_npi(cls, v: str) -> str | None:
        return _npi(v)


class SiteBody(Body):
    name: Text
    npi: str | None = None
    tax_id: str | None = None
    taxonomy: Taxonomy | None = None
    address: AddressBody | None = None
    aliases: list[Text] = Field(default_factory=list, max_length=50)
    providers: list[ProviderBody] = Field(default_factory=list, max_length=5000)

    @field_validator("npi")
    @classmethod
    def _check_npi(cls, v: str | None) -> str | None:
        return _npi(v)

    @field_validator("tax_id")
    @classmethod
    def _ein(cls, v: str | None) -> str | None:
        if v is not None and not _EIN.fullmatch(v):
            raise ValueError("expected a nine-digit EIN")
        return v.replace("-", "") if v else v

    @field_validator("providers")
    @classmethod
    def _distinct(cls, v: list[ProviderBody]) -> list[ProviderBody]:
        if len({p.npi for p in v}) != len(v):
            raise ValueError("a provider NPI is listed twice")
        return v

    def to_domain(self, site_id: str) -> tuple[Site, list[Provider]]:
        a = self.address
        site = Site(
            site_id=site_id,
            name=self.name,
            npi=self.npi,
            tax_id=self.tax_id,
            taxonomy=self.taxonomy,
            address=Address(**a.model_dump()) if a else None,
            aliases=tuple(self.aliases),
        )
        providers = [Provider(site_id=site_id, **p.model_dump()) for p in self.providers]
        return site, providers


class PayerBody(Body):
    name: Text
    filing_indicator: str | None = None
    self_pay: bool = False
    aliases: list[Text] = Field(default_factory=list, max_length=50)

    @field_validator("filing_indicator")
    @classmethod
    def _indicator(cls, v: str | None) -> str | None:
        if v is not None and v.upper() not in X12_FILING_INDICATORS:
            raise ValueError("expected an X12 claim filing indicator code (e.g. MB, MC, CI)")
        return v.upper() if v else v

    def to_domain(self, payer_id: str) -> Payer:
        return Payer(
            payer_id=payer_id, **self.model_dump(exclude={"aliases"}), aliases=tuple(self.aliases)
        )


def site_json(site: Site, providers: list[Provider]) -> dict:
    return {
        "site_id": site.site_id,
        "name": site.name,
        "npi": site.npi,
        "tax_id": site.tax_id,
        "taxonomy": site.taxonomy,
        "address": site.address.model_dump() if site.address else None,
        "aliases": list(site.aliases),
        "providers": [
            {
                "npi": p.npi,
                "first_name": p.first_name,
                "last_name": p.last_name,
                "taxonomy": p.taxonomy,
            }
            for p in providers
        ],
    }


def payer_json(payer: Payer) -> dict:
    return {
        "payer_id": payer.payer_id,
        "name": payer.name,
        "filing_indicator": payer.filing_indicator,
        "self_pay": payer.self_pay,
        "aliases": list(payer.aliases),
    }
