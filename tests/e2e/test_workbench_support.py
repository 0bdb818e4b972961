"""What the workbench's browser tests share: Debian's chromium driven by Playwright, axe-core in
every page, screenshots, and a workbench process beside the pipeline's services."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
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
AXE = ROOT / "tests" / "fixtures" / "axe-core" / "axe.min.js"
SERVICES = ("intake", "coding", "billing", "payments", "followup")
# Screenshots go to the run directory; set this to docs/img to refresh the documentation's.
SCREENSHOTS_ENV = "RCM_WORKBENCH_SCREENSHOTS"


def start_workbench(pipeline, extra_env: dict[str, str] | None = None) -> tuple[str, object]:
    """A workbench process calling the pipeline's services; its base URL and process."""
    from rcm.cli.demo import wait_http

    sup = pipeline.supervisor
    env = {
        f"RCM_WORKBENCH_{name.upper()}_URL": f"http://127.0.0.1:{sup.by_name(name)[0].http_port}"
        for name in SERVICES
    }
    env |= {
        "RCM_WORKBENCH_COOKIE_SECURE": "false",  # http://127.0.0.1 only
        "RCM_WORKBENCH_NEXT_WAIT_SECONDS": "3",
        **(extra_env or {}),
    }
    sp = sup.add("workbench", instance=len(sup.by_name("workbench")), http=True, extra_env=env)
    base = f"http://127.0.0.1:{sp.http_port}"
    sp.env["RCM_WORKBENCH_PUBLIC_URL"] = base
    sp.start()
    asyncio.run(wait_http(base + "/health", sup))
    return base, sp


def stop_process(pipeline, sp) -> None:
    """Stop a process this module added and take it off the supervisor's list (a stopped one
    would read as a crash to the next start's health wait)."""
    sp.stop()
    pipeline.supervisor.processes.remove(sp)


async def launch_chromium():
    if not CHROMIUM.exists():
        pytest.skip(
            "Debian's chromium is not installed (`make install` installs it when run as root)"
        )
    from playwright.async_api import async_playwright

    pw = await async_playwright().start()
    browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    return pw, browser


async def new_page(browser, base: str):
    context = await browser.new_context(base_url=base, viewport={"width": 1280, "height": 900})
    # An init script runs before the page's own scripts and outside its CSP (no inline script).
    await context.add_init_script(path=str(AXE))
    return await context.new_page()


async def sign_in_dev(page, username: str) -> None:
    await page.goto("/signin")
    await page.click(f'button[data-user="{username}"]')
    await page.wait_for_load_state()


async def axe_check(page) -> None:
    """No serious or critical accessibility violation on the page as it is now."""
    violations = await page.evaluate(
        """async () => {
            const r = await axe.run(document, {resultTypes: ['violations']});
            return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                           nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
        }"""
    )
    bad = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert not bad, f"{page.url}: {bad}"


async def screenshot(page, run_dir: Path, name: str) -> None:
    out = run_dir / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(out / f"{name}.png"), full_page=True)
    docs = os.environ.get(SCREENSHOTS_ENV)
    if docs:
        Path(docs).mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(Path(docs) / f"workbench-{name}.png"), full_page=False)
