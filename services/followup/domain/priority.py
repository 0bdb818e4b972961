"""Work-item priority: how soon a biller should pick an item up (higher = sooner).

    priority = urgency + value

    urgency = 0                          no deadline known
            = 1000                       deadline passed (act now: appeal or write off)
            = 5 * max(0, 180 - days)     otherwise: 0 at 180+ days out, 900 on the day
    value   = min(1000, floor(10 * sqrt(amount)))   0 for amount <= 0
              ($1 -> 10, $100 -> 100, $1,000 -> 316, $10,000+ -> 1000)

The square root gives large balances more weight without letting one big claim
starve every near-deadline item: $10,000 with no deadline (1000) ranks with a
$100 claim 20 days from its deadline (800 + 100 = 900) rather than far above it.
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal

HORIZON_DAYS = 180
URGENCY_PER_DAY = 5
OVERDUE = 1000
VALUE_CAP = 1000


def priority(amount_at_stake: Decimal, days_to_deadline: int | None) -> int:
    """Priority score (see module docstring). Raises ``TypeError`` for a float amount."""
    if isinstance(amount_at_stake, float):
        raise TypeError("amount_at_stake must be Decimal, not float")
    amount = Decimal(amount_at_stake)
    if days_to_deadline is None:
        urgency = 0
    elif days_to_deadline < 0:
        urgency = OVERDUE
    else:
        urgency = URGENCY_PER_DAY * max(0, HORIZON_DAYS - days_to_deadline)
    value = 0
    if amount > 0:
        value = min(VALUE_CAP, int((amount.sqrt() * 10).to_integral_value(ROUND_FLOOR)))
    return urgency + value
