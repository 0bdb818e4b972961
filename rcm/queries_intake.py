"""Named read-only queries over intake's schema for `rcm status` (beside ``rcm/queries.py``,
whose ``SCHEMAS`` are the consuming services: intake consumes no topic, so it has no consumer
lag, but it has an outbox, dead letters, 270 files to write and eligibility waits).

As in ``rcm/queries.py``: a migration of intake that renames a column read here changes it here.
"""

from __future__ import annotations

import asyncpg

INTAKE = "intake"


async def eligibility_waits(conn: asyncpg.Connection) -> dict[str, int]:
    """Intake's eligibility work in flight: ``checks_waiting`` (270s sent, no 271 yet),
    ``checks_retrying`` (to be sent again at their retry time), ``encounters_held`` (encounters
    whose encounter.documented waits for their 271s) and ``work_items_open`` (registration and
    review work AAA rejections opened)."""
    row = await conn.fetchrow(
        "SELECT"
        " (SELECT count(*) FROM intake.eligibility_check WHERE state = 'sent') AS checks_waiting,"
        " (SELECT count(*) FROM intake.eligibility_check WHERE state = 'retry')"
        "  AS checks_retrying,"
        " (SELECT count(DISTINCT encounter_id) FROM intake.eligibility_hold) AS encounters_held,"
        " (SELECT count(*) FROM intake.eligibility_work_item WHERE status = 'open')"
        "  AS work_items_open"
    )
    return dict(row)
