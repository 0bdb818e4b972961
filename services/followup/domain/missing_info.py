"""Held claims a biller can release by supplying data: the "missing information" category.

Billing's scrubber names each finding's field (``billing_provider.tax_id``...), never a
value. Findings that a biller fixes by filling a field (missing, or present but unusable:
an NPI failing its check digit, a ZIP without its +4, an EIN not of 9 digits) make the work
item a missing-information request listing those fields; other findings (coding, pricing)
keep the claim a "missing/invalid information" correction.
"""

from __future__ import annotations

from collections.abc import Iterable

from shared.events import Reason

MISSING_INFORMATION = "missing information"
FILL_ACTION = "supply missing information"
TIMELY_FILING_EXCEEDED = "TIMELY_FILING_EXCEEDED"  # billing's scrubber: past the filing limit
# Unusable values a biller replaces like a missing one (scrubber reason codes).
_REPLACEABLE = frozenset(
    {
        "BILLING_NPI_INVALID",
        "BILLING_TAX_ID_INVALID",
        "BILLING_ZIP_NOT_ZIP4",
        "PAYER_ID_MISSING",
        "RENDERING_NPI_INVALID",  # PATCH billing-data takes rendering_provider.npi
    }
)


def missing_fields(reasons: Iterable[Reason]) -> list[str]:
    """The field paths a biller must fill, in finding order, each once."""
    out: list[str] = []
    for r in reasons:
        if r.field and (r.code.endswith("_MISSING") or r.code in _REPLACEABLE):
            if r.field not in out:
                out.append(r.field)
    return out


def label(fields: list[str]) -> str:
    """The work item's label: the fields by name (no value), for the biller to fill."""
    return f"Missing information: supply {', '.join(fields)}"[:500]


def timely_filing_label(reasons: Iterable[Reason]) -> str | None:
    """The work item's label when the filing limit is all that holds the claim (nothing a
    biller can fill or correct: the date of service stands), else None."""
    found = list(reasons)
    if not found or any(r.code != TIMELY_FILING_EXCEEDED for r in found):
        return None
    return (
        f"Timely filing: {found[0].message}; write it off, or send it with proof it was"
        " filed in time"
    )[:500]
