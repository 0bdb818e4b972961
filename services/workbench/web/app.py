"""The workbench's FastAPI app: pages, static assets, error pages and the browser security headers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import quote, urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.workbench.context import WorkbenchContext
from services.workbench.upstream import UpstreamError
from services.workbench.web import billing, coder, dashboard, signin
from services.workbench.web.render import is_htmx, page
from services.workbench.web.security import CsrfFailed, Forbidden, NotSignedIn, load_session
from shared.http import TELEMETRY, harden

STATIC = Path(__file__).resolve().parents[1] / "static"


def create_app(
    ctx: WorkbenchContext, health: Callable[[], Awaitable[None]] | None = None
) -> FastAPI:
    app = FastAPI(
        title="rcm workbench",
        version="1",
        telemetry=TELEMETRY,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.workbench = ctx
    harden(app, ctx.settings)
    app.add_middleware(SecurityHeaders, csp=_csp(ctx))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/health")
    async def health_check():
        if health is not None:
            await health()
        return {"status": "ok"}

    for router in (signin.router, coder.router, billing.router, dashboard.router):
        app.include_router(router)
    _error_pages(app)
    return app


def _csp(ctx: WorkbenchContext) -> str:
    form_action = "'self'"
    if ctx.oidc is not None:  # sign-out posts, then redirects to the identity provider
        p = urlsplit(ctx.oidc.issuer)
        form_action += f" {p.scheme}://{p.netloc}"
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src 'self'; form-action {form_action}; frame-ancestors 'none'; base-uri 'none'; "
        "object-src 'none'"
    )


class SecurityHeaders:
    """CSP (no inline script or style), no framing, no sniffing, no referrer to other sites (the same-origin one keeps the Origin header CSRF checks read); pages not cached."""

    def __init__(self, app, csp: str):
        self.app = app
        self.headers = [
            (b"content-security-policy", csp.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"same-origin"),
            (b"x-frame-options", b"DENY"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
        ]

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope.get("path", "").startswith("/static/")

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), *self.headers]
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _flash(request: Request, title: str, message: str, status: int) -> Response:
    """An error as a page, or for htmx as a message in the page's alert region."""
    if is_htmx(request):
        return page(
            request,
            "partials/flash.html",
            {"messages": [message], "error": True},
            headers={"HX-Retarget": "#flash", "HX-Reswap": "innerHTML"},
        )
    return page(
        request,
        "error.html",
        {"title": title, "message": message},
        status=status,
        user=getattr(request.state, "principal", None),
    )


def _to_signin(request: Request) -> Response:
    target = "/signin?next=" + quote(request.url.path, safe="/")
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, 303)


def _error_pages(app: FastAPI) -> None:
    @app.exception_handler(NotSignedIn)
    async def not_signed_in(request: Request, _: NotSignedIn):
        return _to_signin(request)

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, e: Forbidden):
        return _flash(request, "Not allowed", e.message, 403)

    @app.exception_handler(CsrfFailed)
    async def csrf_failed(request: Request, _: CsrfFailed):
        return _flash(
            request,
            "Refused",
            "This form expired or did not come from the workbench; reload the page and try again.",
            403,
        )

    @app.exception_handler(UpstreamError)
    async def upstream_error(request: Request, e: UpstreamError):
        if e.status == 401:  # the service no longer accepts the session's token
            ctx = request.app.state.workbench
            raw = getattr(request.state, "session_id", None)
            if raw:
                await ctx.sessions.delete(raw)
            return _to_signin(request)
        if e.status == 403:
            return _flash(request, "Not allowed", e.message, 403)
        if e.status == 404:
            return _flash(request, "Not found", e.message, 404)
        if e.status in (409, 422):
            return _flash(request, "Could not do that", e.message, 409)
        return _flash(
            request, "Service unavailable", f"{e.service} is unavailable; try again shortly.", 503
        )

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, e: RequestValidationError):
        fields = ", ".join(
            sorted({".".join(str(p) for p in err["loc"][1:]) or "request" for err in e.errors()})
        )
        return _flash(request, "Bad request", f"Check these fields: {fields}.", 400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException):
        if request.url.path.startswith("/static/") or request.url.path == "/health":
            return JSONResponse({"detail": e.detail}, status_code=e.status_code)
        user = await load_session(request, request.app.state.workbench)
        title = {404: "Not found", 405: "Not allowed"}.get(e.status_code, "Error")
        return page(
            request,
            "error.html",
            {
                "title": title,
                "message": "There is no such page." if e.status_code == 404 else str(e.detail),
            },
            user=user,
            status=e.status_code,
        )
