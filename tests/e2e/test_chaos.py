"""A short chaos run on its own stack: processes, the broker and Postgres killed; nothing lost or doubled."""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

import psutil
import pytest

from rcm import localstack as stack
from rcm.bench.bench import BenchRun, render
from rcm.bench.chaos import Chaos
from shared.kafka import ensure_topics
from shared.settings import RuntimeSettings, ServiceSettings

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        os.environ.get("RCM_TEST_STACK") == "containers", reason="kills local stack processes"
    ),
]


def test_schedule_is_a_function_of_the_seed():
    s = ServiceSettings()
    a = Chaos(seed=5, settings=s, endpoints={}).schedule
    b = Chaos(seed=5, settings=s, endpoints={}).schedule
    c = Chaos(seed=6, settings=s, endpoints={}).schedule
    assert a == b and a != c
    kinds = [k for _, k, _ in a]
    assert (
        kinds.count("service") == 50 and kinds.count("broker") == 3 and kinds.count("postgres") == 2
    )


async def test_short_chaos_run_loses_and_duplicates_nothing():
    run_dir = Path(tempfile.mkdtemp(prefix="rcm-chaos-"))
    s = ServiceSettings(runtime=RuntimeSettings(run_dir=run_dir))
    endpoints = await asyncio.to_thread(stack.up, s)
    try:
        await ensure_topics(endpoints["kafka"])
        chaos = Chaos(
            seed=3,
            settings=s,
            endpoints=endpoints,
            min_service_kills=10,
            broker_kills=1,
            postgres_stops=1,
            interval=(1.0, 2.0),
            poison_count=4,
            # every encounter given a second commercial or Medigap plan gets a third too, so
            # tertiary claims run through the faults in this short run as well
            tertiary_share=1.0,
        )
        result = await BenchRun(
            n=120,
            instances=1,
            seed=3,
            settings=s,
            endpoints=endpoints,
            chaos=chaos,
            timeout=480,
            quiet=True,
        ).run()
    finally:
        await asyncio.to_thread(stack.down, s)
    # Restarted processes included, nothing of this run may outlive it.
    assert _processes_of(run_dir) == []
    verdict = result["chaos"]
    assert verdict["by_kind"] == {"service_kill": 10, "broker_kill": 1, "postgres_stop": 1}
    assert verdict["poison_injected"] == 4
    assert verdict["violations"] == []
    assert result["unsettled"] == 0 and result["settled"] == 120
    # Beyond the primary payer, through the same faults: later payers' claims, patient payments.
    assert verdict["cob"]["secondary"] > 0 and verdict["cob"]["crossovers"] > 0
    assert verdict["cob"]["tertiary"] > 0
    assert verdict["patient_payments"]["taken"] > 0
    # The latency budget per hop and the CPU accounting come from what the services recorded.
    hops = result["hops_auto"]
    assert hops["coding"]["count"] > 0 and hops["835 -> posted"]["count"] > 0
    assert all(v["p50"] >= 0 for v in hops.values())
    assert (
        set(result["latency_by_route"]) <= {"auto", "review"}
        and result["latency_by_route"]["auto"]["count"] > 0
    )
    assert result["cpu_ms_per_encounter"] > 0
    assert {"kafka", "postgres"} <= set(result["cpu_seconds"])
    assert result["load_generator_cpu_seconds"] > 0  # publishing and polling are not free
    assert all(
        v > 0 for v in result["calibration_cpu_seconds"].values()
    )  # the machine's speed, to compare runs
    assert "machine speed: a fixed workload took" in render(result)


def _processes_of(run_dir: Path) -> list[str]:
    found = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        try:
            if p.environ().get("RCM_RUN_DIR") == str(run_dir) and p.pid != os.getpid():
                found.append(f"{p.pid} {' '.join(p.info['cmdline'] or [])}")
        except psutil.Error:
            continue
    return found
