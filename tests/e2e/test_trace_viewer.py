"""The trace viewer: `rcm stack up --traces` runs Zipkin, the services export to it, and a browser
opens one encounter's trace there and sees the spans of every service it crossed.

Chromium is Debian's (/usr/bin/chromium), driven by Playwright; with RCM_DOCS_SCREENSHOTS=1 the
screenshot also replaces docs/img/trace-viewer.png.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import asyncpg
import pytest

from rcm import localstack as stack
from rcm import queries
from rcm.cli.demo import (
    coder_pool,
    load_sample_registries,
    post_encounters,
    start_services,
    wait_http,
)
from rcm.simulation.samples import generate_samples
from services.intake.mapping import parse
from shared.kafka import ensure_topics
from shared.settings import RuntimeSettings, ServiceSettings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SERVICES = ("rcm-intake", "rcm-coding", "rcm-billing", "rcm-payments", "rcm-followup")
DOCS_SHOT = Path(__file__).resolve().parents[2] / "docs" / "img" / "trace-viewer.png"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        os.environ.get("RCM_TEST_STACK") == "containers", reason="runs the local stack's viewer"
    ),
]


async def _small_pipeline_run(s: ServiceSettings, endpoints: dict, n: int) -> list[str]:
    """n sample encounters posted to intake and worked to a terminal state; their ids."""
    sup = start_services(
        s,
        endpoints,
        # What `rcm stack up --traces` points the services at (the OpenTelemetry variable).
        extra_env={
            "OTEL_EXPORTER_ZIPKIN_ENDPOINT": f"{endpoints['zipkin']}/api/v2/spans",
            "RCM_LOG_LEVEL": "WARNING",
        },
    )
    stop = asyncio.Event()
    try:
        for sp in sup.processes:
            if sp.http_port:
                await wait_http(f"http://127.0.0.1:{sp.http_port}/health", sup, timeout=240)
        await load_sample_registries(endpoints["postgres"])
        samples = generate_samples(n, seed=5, start_date=date.today() - timedelta(days=30))
        expected = {
            m.encounter.encounter_id: smp.expected
            for smp in samples
            for m in parse(smp.bundle).encounters
        }
        coding_url = f"http://127.0.0.1:{sup.by_name('coding')[0].http_port}"
        coders = asyncio.create_task(
            coder_pool(
                coding_url,
                s.auth.token_secret,
                expected,
                stop,
                sorted({smp.encounter.site_id for smp in samples}),
            )
        )
        intake_url = f"http://127.0.0.1:{sup.by_name('intake')[0].http_port}"
        ids = await post_encounters(
            intake_url, [smp.bundle for smp in samples], s.auth.token_secret
        )
        conn = await asyncpg.connect(endpoints["postgres"])
        try:
            deadline = time.monotonic() + 180
            while len(await queries.settled_encounters(conn, ids)) < len(ids):
                assert time.monotonic() < deadline, "encounters did not settle"
                await asyncio.sleep(0.5)
        finally:
            await conn.close()
        stop.set()
        await asyncio.wait_for(coders, 60)
        await asyncio.sleep(2)  # spans are exported in batches every 0.5 s
        return ids
    finally:
        stop.set()
        sup.stop_all()


def _rcm_trace(run_dir: Path, encounter_id: str) -> str:
    env = {**os.environ, "RCM_RUN_DIR": str(run_dir)}
    out = subprocess.run(
        [sys.executable, "-m", "rcm.cli.main", "trace", encounter_id],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def _viewer_text(url: str, screenshot: Path) -> str:
    """The trace page's text once the viewer has drawn every service's spans."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(url)
            for name in SERVICES:  # each service's spans are rows "rcm-<service>: <span name>"
                page.get_by_text(f"{name}: ", exact=False).first.wait_for(timeout=30_000)
            page.screenshot(path=str(screenshot))
            return page.inner_text("body")
        finally:
            browser.close()


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium (apt-get install chromium)"
)
async def test_an_encounters_trace_shows_every_service_in_the_viewer(tmp_path):
    run_dir = Path(tempfile.mkdtemp(prefix="rcm-traces-"))
    s = ServiceSettings(runtime=RuntimeSettings(run_dir=run_dir))
    endpoints = await asyncio.to_thread(stack.up, s, None, True)
    try:
        assert json.loads(s.stack_file().read_text())["zipkin"] == endpoints["zipkin"]
        assert endpoints["zipkin"].startswith("http://127.0.0.1:")
        await ensure_topics(endpoints["kafka"])
        ids = await _small_pipeline_run(s, endpoints, n=6)
        # `rcm trace` names the viewer's page of the encounter's trace; an auto-coded encounter's
        # trace crosses every service (intake, coding, billing, payments, followup).
        links = {}
        for eid in ids:
            out = _rcm_trace(run_dir, eid)
            link = next(
                (
                    ln.split(": ", 1)[1]
                    for ln in out.splitlines()
                    if ln.startswith("trace viewer: ")
                ),
                None,
            )
            assert link and link.startswith(f"{endpoints['zipkin']}/zipkin/traces/"), out
            services = out.splitlines()[0].split(" across ")[1]
            links[eid] = (link, services)
        eid, (link, _) = next(
            (k, v)
            for k, v in links.items()
            if all(x.removeprefix("rcm-") in v[1] for x in SERVICES)
        )
        shot = tmp_path / "trace-viewer.png"
        text = await asyncio.to_thread(_viewer_text, link, shot)
    finally:
        await asyncio.to_thread(stack.down, s)
        shutil.rmtree(run_dir, ignore_errors=True)
    assert link.rsplit("/", 1)[1] in text  # the trace id, shown by the viewer
    for name in SERVICES:
        assert f"{name}: " in text, name
    assert "Services\n5" in text or "Services 5" in text
    assert shot.stat().st_size > 20_000  # a drawn page, not a blank one
    if os.environ.get("RCM_DOCS_SCREENSHOTS") == "1":
        shutil.copyfile(shot, DOCS_SHOT)
