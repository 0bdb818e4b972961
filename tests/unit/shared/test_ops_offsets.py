"""Consumer lag on a broker that has just started: "coordinator not available" while Kafka
creates its offsets topic is asked again, not reported as a failure (rcm status once failed so)."""

from __future__ import annotations

import pytest
from aiokafka.errors import GroupCoordinatorNotAvailableError

from shared import ops


class _Admin:
    def __init__(self, refusals: int):
        self.refusals, self.calls = refusals, 0

    async def list_consumer_group_offsets(self, group):
        self.calls += 1
        if self.calls <= self.refusals:
            raise GroupCoordinatorNotAvailableError()
        return {"answered-for": group}


async def test_a_coordinator_still_starting_is_asked_again():
    admin = _Admin(refusals=2)
    answer = await ops._committed_offsets(admin, "rcm-billing", pause=0)
    assert answer == {"answered-for": "rcm-billing"}
    assert admin.calls == 3


async def test_a_coordinator_that_never_comes_is_reported():
    admin = _Admin(refusals=99)
    with pytest.raises(GroupCoordinatorNotAvailableError):
        await ops._committed_offsets(admin, "rcm-billing", tries=3, pause=0)
    assert admin.calls == 3
