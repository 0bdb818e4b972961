"""Polling helpers for tests against the running pipeline (bounded waits, no sleeps as assertions)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import date, timedelta

import asyncpg
import httpx

# Sample encounters dated inside every payer's timely-filing window.
RECENT = date.today() - timedelta(days=35)


async def wait_for(
    dsn: str, query: str, *args, predicate=lambda v: v, timeout: float = 60, interval: float = 0.3
):
    """Poll ``query`` (fetchval) until ``predicate(value)``; return the value or fail with the last one."""
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = await conn.fetchval(query, *args)
            if predicate(value):
                return value
            await asyncio.sleep(interval)
        raise AssertionError(
            f"timed out after {timeout}s waiting on {query!r}; last value {value!r}"
        )
    finally:
        await conn.close()


async def fetch(dsn: str, query: str, *args):
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


async def fetchval(dsn: str, query: str, *args):
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(query, *args)
    finally:
        await conn.close()


@asynccontextmanager
async def simulated_coders(pipeline, expected: dict, sites) -> AsyncIterator[None]:
    """The demo's coders review the queue of ``sites`` (``expected``: encounter id -> the codes
    a coder would choose) while the block runs; stopped and awaited after it."""
    from rcm.cli.demo import coder_pool

    stop = asyncio.Event()
    coders = asyncio.create_task(
        coder_pool(
            pipeline.coding_url, pipeline.settings.auth.token_secret, expected, stop, sorted(sites)
        )
    )
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(coders, 30)


async def code_and_settle(pipeline, samples) -> list[str]:
    """Post the sample encounters as the EHR feed while the simulated coders review what needs
    it; return their ids once followup has each one's outcome (the claims are settled)."""
    from services.intake.domain.fhir import parse_intake

    encs = [parse_intake(s.bundle) for s in samples]
    expected = {e.encounter_id: s.expected for e, s in zip(encs, samples, strict=True)}
    async with simulated_coders(pipeline, expected, {e.site_id for e in encs}):
        async with httpx.AsyncClient(
            base_url=pipeline.intake_url, headers=pipeline.intake_headers, timeout=30
        ) as client:
            for s in samples:
                got = await client.post("/encounters", json=s.bundle)
                assert got.status_code in (200, 202), got.text  # 200: seen before
        ids = [e.encounter_id for e in encs]
        await wait_for(
            pipeline.dsn,
            "SELECT count(*) FROM followup.encounter_outcome WHERE encounter_id = ANY($1)",
            ids,
            predicate=lambda n: n == len(ids),
            timeout=120,
        )
    return ids


# Eligibility checked at intake, answered within the test's waits (retries after 1 s).
CHECKING_AT_INTAKE = {
    "RCM_INTAKE_ELIGIBILITY_MODE": "intake",
    "RCM_INTAKE_ELIGIBILITY_WAIT_SECONDS": "120",
    "RCM_INTAKE_ELIGIBILITY_RETRY_SECONDS": "1",
    "RCM_INTAKE_ELIGIBILITY_POLL_SECONDS": "0.2",
}


@contextmanager
def another_instance(pipeline, service: str, instance: int, env: dict[str, str]) -> Iterator[str]:
    """One more instance of ``service`` beside the pipeline's, on its Kafka and Postgres, with
    these settings on top of the stack's (as a second, differently configured instance would
    run); its URL once healthy. Stopped on exit."""
    from rcm.cli.demo import base_env, wait_http
    from rcm.localstack.supervisor import Supervisor

    sup = Supervisor(
        pipeline.settings.run_path,
        {**base_env(pipeline.settings, pipeline.endpoints), "RCM_LOG_LEVEL": "INFO", **env},
    )
    sp = sup.add(service, instance=instance, http=True)
    sup.start_all()
    url = f"http://127.0.0.1:{sp.http_port}"
    try:
        asyncio.run(wait_http(url + "/health", sup))
        yield url
    finally:
        sup.stop_all()
