"""Post-commit wake-ups of the outbox relay and the outbound file writer.

A commit that lands while the relay (or file writer) is querying must not wait
for the next idle poll: each lost wake-up added up to a poll interval of
latency to a hop. The polls here are an hour long, so a loop that lost the
wake-up would stall and the test would fail on its bounded wait.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from shared import mailbox
from shared.relay import OutboxRelay
from shared.service import Runtime

HOUR = 3600.0


async def _stop_relay(relay: OutboxRelay, stop: asyncio.Event, task: asyncio.Task) -> None:
    stop.set()
    relay.notify()  # out of its wait at once
    await asyncio.wait_for(task, 5)


async def test_relay_runs_again_when_notified_during_a_query() -> None:
    relay = OutboxRelay(pool=None, schema="x", producer=None)  # type: ignore[arg-type]
    calls: list[int] = []
    second = asyncio.Event()

    async def relay_once() -> int:
        calls.append(len(calls))
        if len(calls) == 1:
            relay.notify()  # a batch commits while this query runs
        else:
            second.set()
        return 0  # this query did not see the new rows

    relay.relay_once = relay_once  # type: ignore[method-assign]
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop, idle_seconds=HOUR))
    try:
        await asyncio.wait_for(second.wait(), 5)
    finally:
        await _stop_relay(relay, stop, task)
    assert len(calls) >= 2


async def test_relay_retries_soon_when_another_instance_holds_the_lock() -> None:
    """The other relay's pass may have started before our commit: our rows must not wait an idle poll."""
    relay = OutboxRelay(pool=None, schema="x", producer=None)  # type: ignore[arg-type]
    calls: list[int] = []
    second = asyncio.Event()

    async def relay_once() -> int:
        calls.append(1)
        if len(calls) == 1:
            relay.lock_busy = True  # pg_try_advisory_xact_lock said no
        else:
            second.set()
        return 0

    relay.relay_once = relay_once  # type: ignore[method-assign]
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop, idle_seconds=HOUR, busy_seconds=0.01))
    try:
        await asyncio.wait_for(second.wait(), 5)
        await asyncio.sleep(0.1)
        assert len(calls) == 2  # then idle again: the second pass got the lock
    finally:
        await _stop_relay(relay, stop, task)


async def test_relay_waits_for_a_notify_when_idle() -> None:
    relay = OutboxRelay(pool=None, schema="x", producer=None)  # type: ignore[arg-type]
    calls: list[int] = []

    async def relay_once() -> int:
        calls.append(1)
        return 0

    relay.relay_once = relay_once  # type: ignore[method-assign]
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop, idle_seconds=HOUR))
    await asyncio.sleep(0.2)
    assert calls == [1]  # nothing committed: it sleeps instead of spinning
    relay.notify()
    for _ in range(100):
        if len(calls) == 2:
            break
        await asyncio.sleep(0.01)
    assert len(calls) == 2
    await _stop_relay(relay, stop, task)


async def test_file_writer_writes_again_when_woken_during_a_query(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wake, stop, second = asyncio.Event(), asyncio.Event(), asyncio.Event()
    calls: list[int] = []

    async def write_pending(pool, schema, limit=200, min_age_seconds=0) -> int:
        calls.append(1)
        if len(calls) == 1:
            wake.set()  # an 837 is queued and committed while this query runs
        else:
            second.set()
        return 0

    monkeypatch.setattr(mailbox, "write_pending", write_pending)
    task = asyncio.create_task(mailbox.file_writer_loop(None, "billing", stop, wake, interval=HOUR))  # type: ignore[arg-type]
    try:
        await asyncio.wait_for(second.wait(), 5)
    finally:
        stop.set()
        wake.set()
        await asyncio.wait_for(task, 5)


def test_runtime_commit_hooks_all_run() -> None:
    seen: list[str] = []
    rt = Runtime(
        settings=None,
        pool=None,
        relay=None,
        stop=asyncio.Event(),  # type: ignore[arg-type]
        on_commit=[lambda: seen.append("relay")],
    )
    rt.on_commit.append(lambda: seen.append("files"))
    rt.committed()
    assert seen == ["relay", "files"]


async def test_inbox_poller_reads_a_file_for_another_poller_once_while_it_waits(
    tmp_path, monkeypatch
) -> None:
    """billing and payments share one inbound directory: a waiting 835 is not re-read by billing every poll."""
    fixtures = Path(__file__).resolve().parents[2] / "fixtures" / "x12"
    era = (fixtures / "835" / "authored" / "denied-lq.835").read_text()
    ack = (fixtures / "billing" / "imsweb" / "x12_999_accepted.txt").read_text()
    box = mailbox.InboundMailbox(tmp_path, frozenset({"999"}), "billing", apply=None)  # type: ignore[arg-type]
    taken: list[str] = []

    async def take(pool, files) -> int:
        for path, *_ in files:
            taken.append(path.name)
            path.unlink()
        return len(files)

    classified: list[str] = []
    real_classify = mailbox.classify

    def counting_classify(text: str):
        kind = real_classify(text)
        classified.append(kind.kind)
        return kind

    monkeypatch.setattr(box, "_take", take)
    monkeypatch.setattr(mailbox, "classify", counting_classify)
    mailbox.write_atomically(tmp_path, "a.835", era)
    mailbox.write_atomically(tmp_path, "b.999", ack)

    assert await box.poll_once(None) == 1 and taken == ["b.999"]
    assert sorted(classified) == ["835", "999"]
    for _ in range(3):  # the 835 waits for payments: not read again
        assert await box.poll_once(None) == 0
    assert sorted(classified) == ["835", "999"]

    mailbox.write_atomically(
        tmp_path, "a.835", ack
    )  # the same name, new content: read again, and taken
    assert await box.poll_once(None) == 1 and taken == ["b.999", "a.835"]
    assert classified[-1] == "999"
    assert box._not_ours == {}  # names gone from the directory are forgotten
