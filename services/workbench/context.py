"""What the workbench's pages need, built once per process (``build``) and passed to ``create_app``."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import httpx

from services.workbench.client import AiohttpClient
from services.workbench.coalesce import Coalesced
from services.workbench.oidc import OidcClient
from services.workbench.sessions import MemorySessions, SessionStore
from services.workbench.settings import WorkbenchSettings
from services.workbench.upstream import SERVICES, Upstream
from shared.auth import Authenticator, DevSigner

KEEPALIVE_SECONDS = 4.0


@dataclass
class WorkbenchContext:
    settings: WorkbenchSettings
    sessions: SessionStore
    upstream: Upstream
    verifier: Authenticator  # the services' own check of an access token
    oidc: OidcClient | None  # sign-in through the identity provider
    dev_signer: DevSigner | None  # the development sign-in page's token signer
    http: httpx.AsyncClient
    # answers shared by everyone with the same roles and sites (queue depths, the dashboard)
    shared: Coalesced = field(default_factory=Coalesced)

    async def close(self) -> None:
        if self.upstream.http is not self.http:
            await self.upstream.http.aclose()
        await self.http.aclose()


def build(
    settings: WorkbenchSettings,
    sessions: SessionStore | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> WorkbenchContext:
    """The context for ``settings``; ``transport`` carries every outgoing request (tests give
    one that plays the other services at the HTTP boundary). Without one, the calls to the
    services go through aiohttp (``services.workbench.client``: far less CPU per call than
    httpx); sign-in's few calls to the identity provider through httpx."""
    wb = settings.workbench
    # httpx logs every request's full URL at INFO; the workbench's access log (shared.http)
    # names route templates only, and search words in a query string stay out of the logs.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    http = httpx.AsyncClient(
        timeout=wb.upstream_timeout_seconds,
        # Idle connections are dropped before the services' servers drop them (uvicorn: 5 s),
        # so a request never goes out on a connection the other end is closing.
        limits=httpx.Limits(
            max_connections=200, max_keepalive_connections=50, keepalive_expiry=KEEPALIVE_SECONDS
        ),
        follow_redirects=False,
        transport=transport,
    )
    urls = {s: getattr(wb, f"{s}_url") for s in SERVICES}
    oidc = None
    signer = None
    if settings.sign_in_mode == "oidc":
        oidc = OidcClient(
            settings.oidc_issuer, wb.client_id, wb.client_secret or "", wb.scopes, http
        )
    else:
        signer = DevSigner.build(settings.auth, settings.runtime)
    return WorkbenchContext(
        settings=settings,
        sessions=sessions or MemorySessions(),
        upstream=Upstream(
            urls,
            http
            if transport is not None
            else AiohttpClient(wb.upstream_timeout_seconds, KEEPALIVE_SECONDS),
        ),
        verifier=Authenticator.build(settings.auth, settings.runtime),
        oidc=oidc,
        dev_signer=signer,
        http=http,
    )
