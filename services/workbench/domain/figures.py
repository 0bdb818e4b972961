"""Numbers the screens show, computed from what the services answer (pure; no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation


@dataclass(frozen=True)
class CoderFigures:
    user_id: str
    completed: int
    items_per_hour: float | None  # from the mean handling time (lease to completion)
    acceptance_rate: float | None  # share of items completed with the suggestions unchanged


def coder_figures(row: dict) -> CoderFigures:
    """One row of coding's ``GET /coders/stats`` as the figures a coder and supervisor read."""
    completed = int(row.get("completed") or 0)
    handling = float(row.get("avg_handling_seconds") or 0)
    changed = int(row.get("changed_suggestions") or 0)
    return CoderFigures(
        user_id=str(row.get("user_id")),
        completed=completed,
        items_per_hour=round(3600 / handling, 1) if handling > 0 else None,
        acceptance_rate=round((completed - changed) / completed, 3) if completed else None,
    )


def money(value) -> Decimal:
    try:
        return Decimal(str(value)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        return Decimal("0.00")


@dataclass(frozen=True)
class Bar:
    label: str
    amount: Decimal
    percent: int  # of the largest bar in the chart, for its width


def aging_bars(aging: dict) -> dict[str, list[Bar]]:
    """Followup's ``GET /ar/aging`` table as bars per group (payer), one per bucket, widths
    relative to the largest positive bucket anywhere in the chart (credits are not bars)."""
    columns = [c for c in aging.get("columns") or [] if c != "credit"]
    rows = aging.get("rows") or {}
    peak = max(
        (money(r.get(c)) for r in rows.values() for c in columns),
        default=Decimal(0),
    )
    out: dict[str, list[Bar]] = {}
    for group, r in rows.items():
        bars = []
        for c in columns:
            amount = money(r.get(c))
            pct = int((amount / peak * 100).to_integral_value()) if peak > 0 and amount > 0 else 0
            bars.append(Bar(c, amount, pct))
        out[group] = bars
    return out


def queue_totals(depth: dict) -> dict[str, int]:
    """Open items per site from a ``/work/depth`` answer (coding: {site: {queued, leased,
    waiting}}; followup: {site: {category: {queued, leased, waiting, ...}}}), counted as `rcm
    status` does: every item not done, those waiting for a provider's answer or an appeal
    decision included."""
    out: dict[str, int] = {}
    for site, v in depth.items():
        if not isinstance(v, dict):
            continue
        if "queued" in v:
            out[site] = int(v.get("queued", 0)) + int(v.get("leased", 0)) + int(v.get("waiting", 0))
        else:
            out[site] = sum(
                int(c.get("queued", 0)) + int(c.get("leased", 0)) + int(c.get("waiting", 0))
                for c in v.values()
                if isinstance(c, dict)
            )
    return out


def rate(part, whole) -> float | None:
    try:
        part, whole = float(part), float(whole)
    except (TypeError, ValueError):
        return None
    return round(part / whole, 3) if whole > 0 else None
