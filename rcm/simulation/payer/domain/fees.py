"""What the simulated payer allows: a fee schedule plus per-payer contract terms.

The bundled schedule holds code numbers and Medicare-like allowed amounts (our own
figures, no AMA descriptors). Payers are grouped by claim filing indicator (SBR09):
Medicare pays the schedule, Medicaid 80% of it, commercial plans 120-140% of it.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Literal

CENT = Decimal("0.01")
PayerClass = Literal["medicare", "medicaid", "commercial"]

_MEDICARE_FILING = {"MA", "MB", "16"}  # Part A, Part B, Medicare HMO
_MEDICAID_FILING = {"MC"}
_COMMERCIAL_MULTIPLIERS = tuple(Decimal(m) for m in ("1.20", "1.25", "1.30", "1.35", "1.40"))
_COMMERCIAL_COPAYS = tuple(Decimal(c) for c in ("20.00", "25.00", "30.00", "40.00"))


@dataclass(frozen=True, slots=True)
class Fee:
    allowed: Decimal  # per unit
    kind: str  # em_office, em_ed, preventive, vaccine, lab, imaging, procedure, drug, ...


class FeeSchedule:
    """Code (and optional modifier) -> allowed amount per unit.

    Unknown codes are allowed at ``unknown_rate`` of the billed charge, as percent-of-charge
    contracts do. A modifier-specific row (26, TC) wins over the code's global row.
    """

    def __init__(self, fees: dict[tuple[str, str], Fee], unknown_rate: Decimal = Decimal("0.60")):
        self._fees = fees
        self.unknown_rate = unknown_rate

    @classmethod
    def from_csv(cls, path: Path | str | None = None, **kwargs) -> FeeSchedule:
        """Load ``code,modifier,allowed,kind`` rows; the bundled schedule when ``path`` is None.

        Raises ``ValueError`` naming the row when an amount is not a non-negative number.
        """
        if path is None:
            text = (
                resources.files("rcm.simulation.payer.data")
                .joinpath("fee_schedule.csv")
                .read_text()
            )
        else:
            text = Path(path).read_text()
        fees: dict[tuple[str, str], Fee] = {}
        for n, row in enumerate(csv.DictReader(text.splitlines()), start=2):
            try:
                allowed = Decimal(row["allowed"]).quantize(CENT)
            except Exception:
                raise ValueError(
                    f"fee schedule row {n}: allowed {row.get('allowed')!r} is not a number"
                ) from None
            if allowed < 0:
                raise ValueError(f"fee schedule row {n}: allowed amount is negative")
            key = (row["code"].strip().upper(), (row.get("modifier") or "").strip().upper())
            fees[key] = Fee(allowed, (row.get("kind") or "other").strip())
        return cls(fees, **kwargs)

    def fee(self, code: str, modifiers: tuple[str, ...] = ()) -> Fee | None:
        for mod in modifiers:
            if (code, mod) in self._fees:
                return self._fees[(code, mod)]
        return self._fees.get((code, ""))

    def __contains__(self, code: str) -> bool:
        return (code, "") in self._fees

    def __len__(self) -> int:
        return len(self._fees)


def _payer_hash(payer_id: str) -> int:
    # Contract terms belong to the payer, not to a run: hash the payer id alone.
    return int.from_bytes(hashlib.sha256(payer_id.encode()).digest()[:4], "big")


def payer_class(filing_indicator: str, payer_name: str = "") -> PayerClass:
    name = payer_name.upper()
    if filing_indicator in _MEDICARE_FILING or (not filing_indicator and "MEDICARE" in name):
        return "medicare"
    if filing_indicator in _MEDICAID_FILING or (not filing_indicator and "MEDICAID" in name):
        return "medicaid"
    return "commercial"


def fee_multiplier(cls: PayerClass, payer_id: str) -> Decimal:
    if cls == "medicare":
        return Decimal("1.00")
    if cls == "medicaid":
        return Decimal("0.80")
    return _COMMERCIAL_MULTIPLIERS[_payer_hash(payer_id) % len(_COMMERCIAL_MULTIPLIERS)]


def copay(cls: PayerClass, payer_id: str, kind: str) -> Decimal:
    """Flat copay for an office or emergency visit; other services go to coinsurance."""
    if kind not in {"em_office", "em_ed"}:
        return Decimal("0.00")
    if cls == "medicare":
        return Decimal("0.00")  # Part B: deductible then 20% coinsurance, no copay
    if cls == "medicaid":
        return Decimal("2.00") if kind == "em_office" else Decimal("8.00")
    if kind == "em_ed":
        return Decimal("150.00")
    return _COMMERCIAL_COPAYS[_payer_hash(payer_id) % len(_COMMERCIAL_COPAYS)]
