"""The probe's oversized note (issue 18): it was accepted with 202, then blocked the outbox
relay for every later encounter. Now a note above RCM_INTAKE_MAX_NOTE_BYTES (256 KiB) is refused
with 413 naming the field, before anything is stored or emitted, and the next encounter flows."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.integration.pipeline_support import fetchval, wait_for
from tests.unit.intake_service.test_intake_limits import MARKER, _native

pytestmark = pytest.mark.integration


async def test_an_oversized_note_is_refused_before_the_outbox(pipeline):
    big_id, next_id = f"QA-big-{uuid.uuid4().hex[:8]}", f"QA-after-{uuid.uuid4().hex[:8]}"
    note = MARKER + " Patient reports sore throat." * 10_000  # ~300 KB: under the body limit
    async with httpx.AsyncClient(
        base_url=pipeline.intake_url, headers=pipeline.intake_headers, timeout=60
    ) as client:
        r = await client.post("/encounters", json=_native(big_id, note))
        assert r.status_code == 413, r.text[:500]
        [problem] = r.json()["detail"]
        assert problem["path"] == "encounters[0].note"
        assert "RCM_INTAKE_MAX_NOTE_BYTES" in problem["message"]
        assert MARKER not in r.text
        after = await client.post("/encounters", json=_native(next_id, "Sore throat."))
        assert after.status_code == 202, after.text
    for table in ("intake.encounter", "intake.encounter_document"):
        count = await fetchval(
            pipeline.dsn, f"SELECT count(*) FROM {table} WHERE encounter_id = $1", big_id
        )
        assert count == 0, table
    # The relay is not blocked: the next encounter reaches coding.
    await wait_for(
        pipeline.dsn,
        "SELECT count(*) FROM coding.inbox WHERE event_id = $1::uuid",
        after.json()["event_id"],
        predicate=lambda n: n == 1,
        timeout=60,
    )
