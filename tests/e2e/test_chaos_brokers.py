"""A replicated Kafka under chaos: three KRaft brokers (replication factor 3,
min.insync.replicas 2), one broker SIGKILLed at a time during load and restarted on its data;
the pipeline keeps flowing during the kills, and nothing is lost or doubled."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from rcm import localstack as stack
from rcm.bench.bench import BenchRun, render
from rcm.bench.chaos import Chaos, flow_in_windows, partition_replicas
from shared.kafka import ensure_topics
from shared.settings import RuntimeSettings, ServiceSettings
from tests.e2e.test_chaos import _processes_of

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        os.environ.get("RCM_TEST_STACK") == "containers", reason="kills local stack processes"
    ),
]


def test_broker_schedule_kills_each_broker_in_turn_as_the_seed_says():
    s = ServiceSettings()
    a = Chaos(seed=5, settings=s, endpoints={}, brokers=3).schedule
    assert a == Chaos(seed=5, settings=s, endpoints={}, brokers=3).schedule
    assert a != Chaos(seed=6, settings=s, endpoints={}, brokers=3).schedule
    assert [k for _, k, _ in a] == ["broker"] * 3  # no service kills, no Postgres stops
    assert sorted(t for _, _, t in a) == ["1", "2", "3"]
    times = [at for at, _, _ in a]
    assert all(b - a > 8 + 15 for a, b in zip(times, times[1:], strict=False))  # a window apart


def test_flow_counts_each_stage_inside_and_outside_the_kill_windows():
    windows = [{"killed_at": 10.0, "in_sync_at": 20.0}, {"killed_at": 40.0, "in_sync_at": 60.0}]
    times = {"settled": [5, 12, 15, 19.9, 20, 45, 59, 70, 99, 200], "coded": []}
    flow = flow_in_windows(times, windows, start=0.0, end=100.0)
    assert flow["seconds_during_kills"] == 30 and flow["seconds_outside_kills"] == 70
    assert flow["settled"] == {
        "during_kills": 5,
        "outside_kills": 4,  # 200 is after the end
        "per_s_during_kills": round(5 / 30, 2),
        "per_s_outside_kills": round(4 / 70, 2),
    }
    assert flow["coded"]["during_kills"] == 0 and flow["coded"]["per_s_during_kills"] == 0
    # A window reaching past the end counts up to the end only.
    late = flow_in_windows({"settled": [95]}, [{"killed_at": 90, "in_sync_at": 130}], 0, 100)
    assert late["seconds_during_kills"] == 10 and late["settled"]["during_kills"] == 1


async def test_killing_brokers_one_at_a_time_keeps_the_pipeline_flowing():
    run_dir = Path(tempfile.mkdtemp(prefix="rcm-chaos3-"))
    s = ServiceSettings(runtime=RuntimeSettings(run_dir=run_dir))
    endpoints = await asyncio.to_thread(stack.up, s, 3)
    try:
        # The stack file lists every broker; status shows each.
        bootstrap = json.loads(s.stack_file().read_text())["kafka"]
        assert bootstrap == endpoints["kafka"] and len(bootstrap.split(",")) == 3
        status = await asyncio.to_thread(stack.status, s)
        assert [b["node_id"] for b in status["kafka"]["brokers"]] == [1, 2, 3]
        assert all(b["ready"] and b["pid"] for b in status["kafka"]["brokers"])
        await ensure_topics(endpoints["kafka"])
        # new topics' metadata reaches every broker a moment after creation: ask until it has
        for _ in range(60):
            replicas = await partition_replicas(endpoints["kafka"])
            if replicas and all(len(r) == 3 and len(isr) == 3 for r, isr in replicas):
                break
            await asyncio.sleep(0.5)
        assert replicas and all(len(r) == 3 and len(isr) == 3 for r, isr in replicas)
        chaos = Chaos(
            seed=4,
            settings=s,
            endpoints=endpoints,
            brokers=3,
            broker_kills=2,
            broker_down=(4.0, 6.0),
            broker_gap=(6.0, 8.0),
            poison_count=2,
        )
        result = await BenchRun(
            n=300,
            instances=1,
            seed=4,
            settings=s,
            endpoints=endpoints,
            chaos=chaos,
            timeout=300,
            quiet=True,
        ).run()
    finally:
        await asyncio.to_thread(stack.down, s)
    assert _processes_of(run_dir) == []
    shutil.rmtree(run_dir, ignore_errors=True)
    verdict = result["chaos"]
    assert verdict["violations"] == []
    assert verdict["by_kind"] == {"broker_kill": 2}
    windows = verdict["kill_windows"]
    assert len(windows) == 2 and windows[0]["node"] != windows[1]["node"]
    assert verdict["min_isr_during_kills"] == 2  # a dead broker left every ISR; two copies stayed
    assert result["unsettled"] == 0 and result["settled"] == 300
    # The pipeline kept flowing while a broker was dead: every stage moved inside the windows.
    flow = verdict["flow"]
    assert flow["seconds_during_kills"] > 10
    for stage in ("coded", "claimed", "posted", "settled"):
        assert flow[stage]["during_kills"] > 0 and flow[stage]["per_s_during_kills"] > 0, stage
    # From SIGKILL to restart (4-6 s) the pipeline still moved. Which stage moves is timing: a
    # consumer group whose coordinator died waits out its session before it fetches again, so
    # one stage may pause for the whole dead spell (CI once saw settled alone at 0).
    dead = verdict["flow_while_dead"]
    assert sum(dead[s]["during_kills"] for s in ("coded", "claimed", "posted", "settled")) > 0
    assert "flow during kills" in render(result) and {"kafka-1", "kafka-2", "kafka-3"} <= set(
        result["cpu_seconds"]
    )
