"""Site chargemasters: the price list a site bills from, keyed by code and modifier.

CSV layout (header row required, column order free):
``code`` (required), ``price`` (required, decimal dollars), ``modifier`` (optional,
two characters, blank = the code's base price), ``description`` (optional, our own short
label; CPT descriptors are AMA-licensed and never shipped), ``revenue_code`` (optional,
four digits, used on 837I lines).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from importlib import resources

CENT = Decimal("0.01")
SAMPLE_SITES = ("north-clinic", "south-urgent-care", "east-hospital")
_DEFAULT_SAMPLE = "default"


@dataclass(frozen=True, slots=True)
class ChargeItem:
    code: str
    modifier: str  # "" for the base price
    price: Decimal
    revenue_code: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class Chargemaster:
    """Price lookup. A modifier-specific row (e.g. 73610-26) wins over the base row."""

    items: dict[tuple[str, str], ChargeItem] = field(default_factory=dict)
    name: str = "chargemaster"

    def lookup(self, code: str, modifiers: list[str] | tuple[str, ...] = ()) -> ChargeItem | None:
        code = code.upper()
        for mod in modifiers:
            item = self.items.get((code, mod.upper()))
            if item is not None:
                return item
        return self.items.get((code, ""))

    def price(self, code: str, modifiers: list[str] | tuple[str, ...] = ()) -> Decimal | None:
        """Unit price, or None when the code is not on the chargemaster."""
        item = self.lookup(code, modifiers)
        return item.price if item else None

    def revenue_code(self, code: str, modifiers: list[str] | tuple[str, ...] = ()) -> str | None:
        item = self.lookup(code, modifiers)
        return item.revenue_code if item else None

    def __len__(self) -> int:
        return len(self.items)


def parse_chargemaster_csv(text: str, *, name: str = "chargemaster") -> Chargemaster:
    """Parse a chargemaster CSV.

    Raises ValueError naming the row (1-based, header = row 1) and column at fault:
    missing required column, empty/invalid code, non-decimal or negative price,
    malformed modifier or revenue code, duplicate code+modifier.
    """
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    if reader.fieldnames is None:
        raise ValueError(f"{name}: empty file, expected a header row")
    headers = {h.strip().lower(): h for h in reader.fieldnames if h}
    for required in ("code", "price"):
        if required not in headers:
            raise ValueError(f"{name}: row 1: missing required column {required!r}")

    def col(row: dict, key: str) -> str:
        src = headers.get(key)
        return (row.get(src) or "").strip() if src else ""

    items: dict[tuple[str, str], ChargeItem] = {}
    for rowno, row in enumerate(reader, start=2):
        if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
            continue  # blank line
        code = col(row, "code").upper()
        if not code or not code.isalnum() or len(code) > 16:
            raise ValueError(f"{name}: row {rowno}, column 'code': invalid procedure code {code!r}")
        modifier = col(row, "modifier").upper()
        if modifier and (len(modifier) != 2 or not modifier.isalnum()):
            raise ValueError(f"{name}: row {rowno}, column 'modifier': expected 2 characters")
        raw_price = col(row, "price").replace("$", "").replace(",", "")
        try:
            price = Decimal(raw_price)
        except InvalidOperation:
            raise ValueError(
                f"{name}: row {rowno}, column 'price': {raw_price!r} is not a decimal amount"
            ) from None
        if not price.is_finite() or price < 0:
            raise ValueError(f"{name}: row {rowno}, column 'price': must be zero or positive")
        revenue = col(row, "revenue_code") or None
        if revenue is not None and (len(revenue) != 4 or not revenue.isdigit()):
            raise ValueError(f"{name}: row {rowno}, column 'revenue_code': expected 4 digits")
        key = (code, modifier)
        if key in items:
            label = code + (f"-{modifier}" if modifier else "")
            raise ValueError(f"{name}: row {rowno}, column 'code': duplicate entry for {label}")
        items[key] = ChargeItem(
            code=code,
            modifier=modifier,
            price=price.quantize(CENT),
            revenue_code=revenue,
            description=col(row, "description") or None,
        )
    return Chargemaster(items=items, name=name)


def load_sample_chargemaster(site_id: str) -> Chargemaster:
    """The bundled sample chargemaster for a site; unknown sites get the default sample."""
    key = site_id if site_id in SAMPLE_SITES else _DEFAULT_SAMPLE
    text = (
        resources.files("services.billing.data")
        .joinpath(f"chargemaster_{key}.csv")
        .read_text(encoding="utf-8")
    )
    return parse_chargemaster_csv(text, name=f"chargemaster_{key}.csv")
