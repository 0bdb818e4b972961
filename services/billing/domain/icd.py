"""A default ``is_billable`` for the scrubber, backed by the simple-icd-10-cm code set.

The package holds one ICD-10-CM release, so the date of service is not used; a service
that loads dated code-set releases should pass its own callable to ``scrub``.
"""

from __future__ import annotations

from datetime import date

import simple_icd_10_cm as icd


def icd10cm_is_billable(code: str, service_date: date | None = None) -> bool | None:
    """True for a billable (leaf) code, False for a category header, None when unknown."""
    code = code.replace(".", "").strip().upper()
    if not code or not icd.is_valid_item(code):
        return None
    return bool(icd.is_leaf(code))
