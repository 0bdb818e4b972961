"""The business date: the one rule for which day is "today" to billing rules.

Filing limits, aging, statement and dunning dates, payment plans and work-item deadlines read
it here. It is today in UTC, unless a non-production environment fixes it (``RCM_AS_OF``) to
replay historical encounters through the whole pipeline as of their own time, as vendors'
test environments set a system date: without it, every real export older than a payer's
filing limit could only ever be held. Instants (leases, timestamps, retries) stay real time.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import cache

from shared.settings import RuntimeSettings


@cache
def _fixed() -> date | None:
    return RuntimeSettings().as_of


def today() -> date:
    return _fixed() or datetime.now(UTC).date()
