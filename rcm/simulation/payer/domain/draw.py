"""Deterministic "randomness": every decision is a hash of (seed, claim id, purpose).

The same seed and claim id always give the same decision, in any process and any order,
so demo runs, tests and benchmarks are reproducible without global random state.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal

_SCALE = Decimal(2**64)


def _digest(seed: int, claim_id: str, purpose: str) -> bytes:
    return hashlib.sha256(f"{seed}|{claim_id}|{purpose}".encode()).digest()


def draw(seed: int, claim_id: str, purpose: str) -> Decimal:
    """A number in [0, 1) fixed by its inputs."""
    return Decimal(int.from_bytes(_digest(seed, claim_id, purpose)[:8], "big")) / _SCALE


def pick(seed: int, claim_id: str, purpose: str, n: int) -> int:
    """An index in range(n) fixed by its inputs."""
    return int.from_bytes(_digest(seed, claim_id, purpose)[:8], "big") % n


def payer_claim_control_number(seed: int, claim_id: str) -> str:
    """The payer's 14-digit claim number (REF*1K in the 277CA, CLP07 in the 835)."""
    n = int.from_bytes(_digest(seed, claim_id, "icn")[:8], "big") % 10**13
    return f"9{n:013d}"
