"""Claim ids: the patient control number (837 CLM01) billing derives and payers echo in 835 CLP01.

One definition for the service that makes them (billing) and the one that must recognise them
in a remittance (payments).
"""

from __future__ import annotations

import hashlib
import re

# "C" + 15 upper-case hex digits: 16 characters, well inside CLM01's 38, no X12 separators.
_SHAPE = re.compile(r"^C[0-9A-F]{15}$")


def claim_id_for(
    encounter_id: str, frequency_code: str = "1", original: str | None = None, n: int = 0
) -> str:
    """Stable patient control number: the same encounter always gets the same claim id, so a
    redelivered event finds its claim.

    An original claim's id derives from its encounter; the ``n``-th replacement (7) or void (8)
    of claim ``original`` from that.
    """
    basis = encounter_id if frequency_code == "1" else f"{original}:{frequency_code}:{n}"
    return "C" + hashlib.sha256(basis.encode()).hexdigest()[:15].upper()


def is_claim_id(patient_control_number: str) -> bool:
    """Whether a patient control number has the shape of a claim id ``claim_id_for`` makes."""
    return _SHAPE.match(patient_control_number) is not None
