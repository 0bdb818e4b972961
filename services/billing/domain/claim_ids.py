"""Claim ids (the 837's patient control number, CLM01): derived, so a redelivered event finds its claim."""

from __future__ import annotations

import hashlib


def claim_id_for(
    encounter_id: str, frequency_code: str = "1", original: str | None = None, n: int = 0
) -> str:
    """Stable patient control number: the same encounter always gets the same claim id.

    An original claim's id derives from its encounter; the ``n``-th replacement (7) or void (8)
    of claim ``original`` from that. Shape: "C" + 15 upper-case hex digits.
    """
    basis = encounter_id if frequency_code == "1" else f"{original}:{frequency_code}:{n}"
    return "C" + hashlib.sha256(basis.encode()).hexdigest()[:15].upper()
