"""National Provider Identifier check digit (CMS: Luhn over the digits prefixed with 80840)."""

from __future__ import annotations

# The NPI is an ISO 7812 card number with issuer prefix 80840; the prefix contributes a
# constant 24 to the Luhn sum, which is why it is folded in here rather than prepended.
_PREFIX_SUM = 24


def is_valid_npi(npi: str) -> bool:
    """True when ``npi`` is 10 digits, starts with 1 or 2, and its check digit is right."""
    if not isinstance(npi, str) or len(npi) != 10 or not npi.isdigit() or npi[0] not in "12":
        return False
    total = _PREFIX_SUM
    # Double every second digit from the right of the 9-digit base (i.e. base positions 0,2,..8).
    for i, ch in enumerate(npi[:9]):
        d = ord(ch) - 48
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    check = (10 - total % 10) % 10
    return check == ord(npi[9]) - 48
