"""Billing data a biller supplies for a held claim (``PATCH /claims/{id}/billing-data``).

The body names only the missing fields, with the claim's paths (``billing_provider.tax_id``,
``patient.birth_date``, ``payer.member_id``...). Each is validated as an 837 needs it (NPI
check digit, EIN of 9 digits, ZIP+4); an error names the field path, never the value.
``apply`` merges the fields into the coded encounter the claim is rebuilt from.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from shared.events import (
    Address,
    Coverage,
    EncounterCodedPayload,
    Organization,
    Person,
    Provider,
)
from shared.npi import is_valid_npi

_ZIP4 = re.compile(r"^\d{5}-?\d{4}$")
_EIN = re.compile(r"^\d{2}-?\d{7}$")


def _npi(v: str) -> str:
    if not is_valid_npi(v):
        raise ValueError("must be a 10-digit NPI with a valid check digit")
    return v


def _ein(v: str) -> str:
    if not _EIN.match(v):
        raise ValueError("must be an EIN of 9 digits (NN-NNNNNNN)")
    return v.replace("-", "")


def _zip4(v: str) -> str:
    if not _ZIP4.match(v):
        raise ValueError("must be a ZIP+4 (NNNNN-NNNN)")
    return v.replace("-", "")


Text = Annotated[str, Field(min_length=1, max_length=60)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AddressIn(_In):
    line1: Annotated[str, Field(min_length=1, max_length=55)]
    line2: Annotated[str | None, Field(max_length=55)] = None
    city: Annotated[str, Field(min_length=1, max_length=30)]
    state: Annotated[str, Field(pattern=r"^[A-Za-z]{2}$")]
    postal_code: Annotated[str, AfterValidator(_zip4)]


class BillingProviderIn(_In):
    name: Text | None = None
    npi: Annotated[str, AfterValidator(_npi)] | None = None
    tax_id: Annotated[str, AfterValidator(_ein)] | None = None
    address: AddressIn | None = None
    taxonomy: Annotated[str, Field(pattern=r"^[0-9A-Z]{10}$")] | None = None


class RenderingProviderIn(_In):
    """The performing practitioner: an NPI failing its check digit (EHR test data, a typo) is
    replaced like a missing one; the name is needed only when the claim had no provider."""

    npi: Annotated[str, AfterValidator(_npi)]
    first_name: Text | None = None
    last_name: Text | None = None
    taxonomy: Annotated[str, Field(pattern=r"^[0-9A-Z]{10}$")] | None = None


class PersonIn(_In):
    first_name: Text | None = None
    last_name: Text | None = None
    birth_date: date | None = None
    gender: Literal["M", "F", "U"] | None = None


class PayerIn(_In):
    payer_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9-]{2,80}$")] | None = None
    payer_name: Text | None = None
    member_id: Annotated[str, Field(min_length=1, max_length=80)] | None = None
    group_number: Annotated[str, Field(min_length=1, max_length=50)] | None = None
    filing_indicator: Annotated[str, Field(pattern=r"^[0-9A-Z]{2}$")] | None = None
    subscriber: PersonIn | None = None


class BillingData(_In):
    billing_provider: BillingProviderIn | None = None
    rendering_provider: RenderingProviderIn | None = None
    patient: PersonIn | None = None
    payer: PayerIn | None = None


class BillingDataError(ValueError):
    """Invalid billing data: ``problems`` lists {field, message}, with no input value."""

    def __init__(self, problems: list[dict[str, str]]):
        super().__init__("; ".join(f"{p['field']}: {p['message']}" for p in problems))
        self.problems = problems


def parse(body: object) -> BillingData:
    """The body as billing data; ``BillingDataError`` names each bad field (never its value)."""
    try:
        data = BillingData.model_validate(body)
    except ValidationError as e:
        raise BillingDataError(
            [
                {
                    "field": ".".join(str(p) for p in err["loc"]) or "body",
                    "message": _message(err),
                }
                for err in e.errors(include_input=False, include_url=False)
            ]
        ) from None
    if data == BillingData():
        raise BillingDataError([{"field": "body", "message": "names no field to fill"}])
    return data


def _message(err) -> str:
    if err["type"] == "extra_forbidden":
        return "is not a billing field a biller supplies"
    if err["type"] == "value_error":
        return str(err["ctx"]["error"])
    if err["type"] == "string_pattern_mismatch":
        return "has an invalid format"
    return err["msg"]


def apply(coded: EncounterCodedPayload, data: BillingData) -> EncounterCodedPayload:
    """The coded encounter with the supplied fields filled in (the primary coverage is
    created when there was none: it then needs a payer id)."""
    enc = coded.encounter
    update: dict = {}
    if (bp := data.billing_provider) is not None:
        values = bp.model_dump(exclude={"address"})
        if bp.address is not None:
            values["address"] = Address(**bp.address.model_dump())
        update["billing_provider"] = Organization.model_validate(
            enc.billing_provider.model_dump() | {k: v for k, v in values.items() if v is not None}
        )
    if data.rendering_provider is not None:
        update["rendering_provider"] = _rendering(enc.rendering_provider, data.rendering_provider)
    if data.patient is not None:
        update["patient"] = _person(enc.patient, data.patient)
    if (p := data.payer) is not None:
        update["coverages"] = _coverages(enc.coverages, p)
    return coded.model_copy(update={"encounter": enc.model_copy(update=update)})


def _rendering(provider: Provider | None, given: RenderingProviderIn) -> Provider:
    base = provider.model_dump() if provider is not None else {}
    merged = base | given.model_dump(exclude_none=True)
    if not merged.get("first_name") or not merged.get("last_name"):
        raise BillingDataError(
            [
                {
                    "field": "rendering_provider.last_name",
                    "message": "required: the claim has no rendering provider's name",
                }
            ]
        )
    return Provider.model_validate(merged)


def _person(person: Person | None, given: PersonIn) -> Person:
    base = person.model_dump() if person is not None else {}
    return Person.model_validate(base | given.model_dump(exclude_none=True))


def _coverages(coverages: list[Coverage], p: PayerIn) -> list[Coverage]:
    values = p.model_dump(exclude={"subscriber"}, exclude_none=True)
    primary = next((c for c in coverages if c.sequence == "primary"), None)
    if primary is None:
        if "payer_id" not in values:
            raise BillingDataError(
                [{"field": "payer.payer_id", "message": "required: the claim has no coverage"}]
            )
        values.setdefault("payer_name", values["payer_id"])
        new = Coverage.model_validate(values)
        return [new, *coverages]
    base = primary.model_dump()
    if p.subscriber is not None:
        base["subscriber"] = _person(primary.subscriber, p.subscriber).model_dump()
    new = Coverage.model_validate(base | values)
    return [new if c is primary else c for c in coverages]
