"""The bench's load generator: events serialised once, stamped with their publishing time."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import pytest

from rcm.bench.bench import _UNSTAMPED, BenchError, stamp
from rcm.cli.main import run_loop
from rcm.simulation.samples import generate_samples
from services.intake.domain.fhir import parse_intake
from shared.events import EncounterDocumented, parse_event


def _event() -> EncounterDocumented:
    [sample] = generate_samples(1, 5, start_date=date.today() - timedelta(days=40))
    enc = parse_intake(sample.bundle)
    return EncounterDocumented(
        site_id=enc.site_id, encounter_id=enc.encounter_id, payload=enc, occurred_at=_UNSTAMPED
    )


@pytest.mark.parametrize(
    "at",
    [
        datetime(2026, 12, 5, 9, 30, 1, 250000, tzinfo=UTC),
        datetime(2026, 12, 5, 9, 30, 1, tzinfo=UTC),
    ],
)
def test_a_stamped_body_is_the_event_documented_at_that_time(at: datetime) -> None:
    event = _event()
    body = stamp(event.to_json(), at)
    parsed = parse_event(body)
    assert parsed.occurred_at == at
    assert parsed.model_copy(update={"occurred_at": _UNSTAMPED}) == event  # nothing else changed


def test_a_body_without_the_placeholder_is_refused() -> None:
    event = _event().model_copy(update={"occurred_at": datetime(2026, 1, 1, tzinfo=UTC)})
    with pytest.raises(BenchError, match="placeholder"):
        stamp(event.to_json(), datetime.now(UTC))


def test_long_running_commands_run_on_uvloop() -> None:
    import uvloop

    async def loop_type() -> type:
        return type(asyncio.get_running_loop())

    assert run_loop(loop_type()) is uvloop.Loop
