"""Sign-in through a real OpenID Connect provider: Keycloak with the rcm realm, the workbench as
a confidential client (authorization code with PKCE), and a coding instance that verifies the
identity provider's tokens (RCM_TOKEN_KEYS=oidc), so the production path runs end to end."""

from __future__ import annotations

import asyncio

import pytest

from rcm.localstack import StackError
from rcm.localstack.keycloak import DEV_CLIENT_SECRET, Keycloak
from services.workbench.domain.demo_users import DEMO_PASSWORD
from tests.e2e.test_workbench_support import (
    axe_check,
    launch_chromium,
    new_page,
    screenshot,
    start_workbench,
    stop_process,
)
from tests.integration.pipeline_support import fetchval

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def keycloak(run_dir, settings):
    kc = Keycloak(run_dir, settings.runtime.home)
    try:
        issuer = kc.start()
    except StackError as e:
        if "needs Java" in str(e):
            pytest.skip(str(e))
        raise
    print(f"keycloak ready in {kc.startup_seconds} s")
    yield issuer
    kc.stop()


@pytest.fixture(scope="module")
def oidc_workbench(pipeline, keycloak):
    from rcm.cli.demo import wait_http

    oidc = {"RCM_TOKEN_ISSUER": keycloak, "RCM_TOKEN_KEYS": "oidc", "RCM_TOKEN_AUDIENCE": "rcm"}
    sup = pipeline.supervisor
    coding = sup.add("coding", instance=len(sup.by_name("coding")), http=True, extra_env=oidc)
    coding.start()
    coding_url = f"http://127.0.0.1:{coding.http_port}"
    asyncio.run(wait_http(coding_url + "/health", sup))
    base, wb = start_workbench(
        pipeline,
        {
            **oidc,
            "RCM_WORKBENCH_SIGN_IN": "oidc",
            "RCM_WORKBENCH_CLIENT_SECRET": DEV_CLIENT_SECRET,
            "RCM_WORKBENCH_CODING_URL": coding_url,
        },
    )
    yield base
    stop_process(pipeline, wb)
    stop_process(pipeline, coding)


async def test_sign_in_and_out_through_keycloak(oidc_workbench, pipeline, run_dir):
    pw, browser = await launch_chromium()
    try:
        page = await new_page(browser, oidc_workbench)
        await page.goto("/coder")
        assert "/signin?next=/coder" in page.url
        await axe_check(page)
        await page.click("text=Sign in >> nth=-1")
        await page.wait_for_selector("#username", timeout=30_000)  # Keycloak's own login page
        assert "/realms/rcm/protocol/openid-connect/auth" in page.url
        assert "code_challenge_method=S256" in page.url
        await page.fill("#username", "coder-north")
        await page.fill("#password", DEMO_PASSWORD)
        await page.click("#kc-login")
        await page.wait_for_url(f"{oidc_workbench}/coder", timeout=30_000)
        who = await page.inner_text(".who")
        assert "coder-north" in who and "north-clinic" in who
        # coding accepted the identity provider's access token: the queue answered
        assert await page.locator("#depth-h").count() == 1
        await axe_check(page)
        await screenshot(page, run_dir, "keycloak-signed-in")
        cookies = {c["name"]: c for c in await page.context.cookies()}
        session = cookies["rcm-wb"]
        assert session["httpOnly"] and session["sameSite"] == "Lax"

        # the access token runs out (Keycloak's last 5 minutes): the next page refreshes it
        before = await fetchval(
            pipeline.dsn,
            "SELECT data->>'access_token' FROM workbench.session WHERE kind = 'user' AND data->>'kind' = 'oidc'",
        )
        await fetchval(
            pipeline.dsn,
            "UPDATE workbench.session SET data = jsonb_set(data, '{access_expires_at}', '0')"
            " WHERE kind = 'user' AND data->>'kind' = 'oidc' RETURNING 1",
        )
        await page.goto("/coder")
        assert page.url == f"{oidc_workbench}/coder" and "coder-north" in await page.inner_text(
            ".who"
        )
        after = await fetchval(
            pipeline.dsn,
            "SELECT data->>'access_token' FROM workbench.session WHERE kind = 'user' AND data->>'kind' = 'oidc'",
        )
        assert after != before

        await page.click(".who button")  # sign out: the session ends here and at Keycloak
        await page.wait_for_url(f"{oidc_workbench}/signed-out", timeout=30_000)
        await page.goto("/coder")
        assert "/signin" in page.url
        await page.click("text=Sign in >> nth=-1")
        await page.wait_for_selector("#username", timeout=30_000)  # Keycloak asks again
    finally:
        await browser.close()
        await pw.stop()
