"""Answers shared by a burst of callers: one fetch, the others take its answer; failures are
not kept; keys carry the caller's roles and sites."""

from __future__ import annotations

import asyncio

import pytest

from services.workbench.coalesce import Coalesced, scope
from services.workbench.sessions import Session


def _session(roles, sites) -> Session:
    return Session("u", "u", list(roles), list(sites), "t", 0.0, "c", "dev")


async def test_a_burst_makes_one_call_and_everyone_gets_its_answer():
    shared, calls = Coalesced(ttl=1.0), []

    async def fetch():
        calls.append(1)
        await asyncio.sleep(0.05)
        return {"north": 3}

    got = await asyncio.gather(*(shared.get("k", fetch) for _ in range(100)))
    assert calls == [1] and all(g == {"north": 3} for g in got)


async def test_failures_are_not_kept_and_old_answers_expire():
    shared, calls = Coalesced(ttl=0.05), []

    async def failing():
        calls.append("fail")
        raise RuntimeError("service away")

    with pytest.raises(RuntimeError):
        await shared.get("k", failing)

    async def fetch():
        calls.append("ok")
        return len(calls)

    assert await shared.get("k", fetch) == 2
    assert await shared.get("k", fetch) == 2  # kept
    await asyncio.sleep(0.06)
    assert await shared.get("k", fetch) == 3  # expired: fetched again
    assert calls == ["fail", "ok", "ok"]


def test_the_key_is_who_may_see_what():
    a = scope(_session(["supervisor"], ["north", "south"]), "dashboard")
    assert a == scope(_session(["supervisor"], ["south", "north"]), "dashboard")
    assert a != scope(_session(["supervisor"], ["north"]), "dashboard")
    assert a != scope(_session(["ops"], ["north", "south"]), "dashboard")


async def test_while_a_refresh_is_on_its_way_others_get_the_previous_answer_at_once():
    shared, calls = Coalesced(ttl=0.05, stale=5.0), []
    gate = asyncio.Event()

    async def fetch():
        calls.append(1)
        if len(calls) > 1:
            await gate.wait()  # the refresh is slow (a service under load)
        return len(calls)

    assert await shared.get("k", fetch) == 1
    await asyncio.sleep(0.06)  # expired
    refresher = asyncio.create_task(shared.get("k", fetch))
    await asyncio.sleep(0.01)
    # 99 callers during the refresh: the previous answer, without waiting, no second fetch
    got = await asyncio.wait_for(
        asyncio.gather(*(shared.get("k", fetch) for _ in range(99))), timeout=1
    )
    assert got == [1] * 99 and calls == [1, 1]
    gate.set()
    assert await refresher == 2  # the caller that fetched waited for the fresh answer
    assert await shared.get("k", fetch) == 2


async def test_a_lone_caller_always_waits_for_a_fresh_answer():
    shared, calls = Coalesced(ttl=0.01, stale=5.0), []

    async def fetch():
        calls.append(1)
        return len(calls)

    for expected in (1, 2, 3):
        assert await shared.get("k", fetch) == expected
        await asyncio.sleep(0.02)


async def test_behind_the_page_no_caller_waits_once_an_answer_is_kept():
    shared, calls = Coalesced(ttl=0.05, stale=5.0), []
    gate = asyncio.Event()

    async def fetch():
        calls.append(1)
        if len(calls) > 1:
            await gate.wait()  # /ops/status under load
        return len(calls)

    assert await shared.get("ops", fetch, behind=True) == 1  # the first caller waits
    await asyncio.sleep(0.06)
    # expired: every caller, the first included, gets the kept answer at once
    got = await asyncio.wait_for(
        asyncio.gather(*(shared.get("ops", fetch, behind=True) for _ in range(50))), timeout=1
    )
    assert got == [1] * 50 and calls == [1, 1]  # one refresh behind them
    gate.set()
    await asyncio.sleep(0.01)
    assert await shared.get("ops", fetch, behind=True) == 2


async def test_a_failed_refresh_behind_keeps_the_answer_until_it_is_stale():
    shared, calls = Coalesced(ttl=0.02, stale=0.2), []

    async def fetch():
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("service away")
        return "figures"

    assert await shared.get("ops", fetch, behind=True) == "figures"
    await asyncio.sleep(0.03)
    assert await shared.get("ops", fetch, behind=True) == "figures"
    await asyncio.sleep(0.01)  # the refresh failed in the background, silently
    assert await shared.get("ops", fetch, behind=True) == "figures"
    await asyncio.sleep(0.25)  # stale now: a caller waits for its own fetch, and sees it fail
    with pytest.raises(RuntimeError):
        await shared.get("ops", fetch, behind=True)
