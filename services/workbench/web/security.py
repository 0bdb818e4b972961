"""Sessions, sign-in state, CSRF and roles for every page (FastAPI dependencies).

The session cookie is ``__Host-``-prefixed, Secure, HttpOnly, SameSite=Lax (plain name and
not Secure only for http://localhost development). Every POST carries the session's CSRF
token (a form field or the ``X-CSRF-Token`` header htmx sends) and, when the browser says
where it comes from, an Origin of this site.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
import weakref
from dataclasses import asdict
from typing import Annotated

from fastapi import Depends, Request, Response

from services.workbench.context import WorkbenchContext
from services.workbench.domain import access
from services.workbench.oidc import SignInError
from services.workbench.sessions import Session
from shared import logs
from shared.auth import TokenError

_log = logging.getLogger("rcm.workbench")
REFRESH_MARGIN_SECONDS = 30
TOUCH_EVERY_SECONDS = 60
_refresh_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()


class NotSignedIn(Exception):
    """No session (or it ended): pages go to the sign-in page, htmx requests are told to."""


class Forbidden(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class CsrfFailed(Exception):
    pass


def ctx_of(request: Request) -> WorkbenchContext:
    return request.app.state.workbench


Ctx = Annotated[WorkbenchContext, Depends(ctx_of)]


def cookie_name(ctx: WorkbenchContext, base: str) -> str:
    return f"__Host-{base}" if ctx.settings.workbench.cookie_secure else base


def set_cookie(
    ctx: WorkbenchContext, response: Response, base: str, value: str, max_age: int
) -> None:
    response.set_cookie(
        cookie_name(ctx, base),
        value,
        max_age=max_age,
        path="/",
        secure=ctx.settings.workbench.cookie_secure,
        httponly=True,
        samesite="lax",
    )


def clear_cookie(ctx: WorkbenchContext, response: Response, base: str) -> None:
    response.delete_cookie(
        cookie_name(ctx, base),
        path="/",
        secure=ctx.settings.workbench.cookie_secure,
        httponly=True,
        samesite="lax",
    )


SESSION_COOKIE = "rcm-wb"
LOGIN_COOKIE = "rcm-wb-login"


async def load_session(request: Request, ctx: WorkbenchContext) -> Session | None:
    raw = request.cookies.get(cookie_name(ctx, SESSION_COOKIE))
    if not raw or len(raw) > 100:
        return None
    data = await ctx.sessions.get(raw, "user")
    if data is None:
        return None
    try:
        s = Session(**data)
    except TypeError:
        return None
    now = time.time()
    wb = ctx.settings.workbench
    if (
        now - s.last_seen_at > wb.session_idle_seconds
        or now - s.created_at > wb.session_max_seconds
    ):
        await ctx.sessions.delete(raw)
        return None
    if s.kind == "oidc" and s.access_expires_at - REFRESH_MARGIN_SECONDS < now:
        # One refresh per session at a time: htmx sends requests in parallel, and a refresh
        # token may be good for one use only.
        lock = _refresh_locks.setdefault(raw, asyncio.Lock())
        async with lock:
            data = await ctx.sessions.get(raw, "user")  # another request may have refreshed it
            s = Session(**data) if data else None
            if s is not None and s.access_expires_at - REFRESH_MARGIN_SECONDS < time.time():
                s = await _refreshed(ctx, raw, s)
        if s is None:
            return None
    elif s.access_expires_at <= now:
        await ctx.sessions.delete(raw)
        return None
    if now - s.last_seen_at > TOUCH_EVERY_SECONDS:
        s.last_seen_at = now
        await save(ctx, raw, s)
    request.state.session_id = raw
    request.state.principal = s  # the access log names the user (shared.http)
    return s


async def save(ctx: WorkbenchContext, raw: str, s: Session) -> None:
    wb = ctx.settings.workbench
    expires = min(s.created_at + wb.session_max_seconds, time.time() + wb.session_idle_seconds)
    await ctx.sessions.put(raw, "user", asdict(s), expires)


async def _refreshed(ctx: WorkbenchContext, raw: str, s: Session) -> Session | None:
    """The session with a fresh access token, or None (and the session ended) when the
    identity provider refuses: the person signs in again."""
    if ctx.oidc is None or not s.refresh_token:
        await ctx.sessions.delete(raw)
        return None
    try:
        tokens = await ctx.oidc.refresh(s.refresh_token)
        p = await ctx.verifier.authenticate(tokens.access_token)
    except (SignInError, TokenError) as e:
        logs.log(
            _log, logging.INFO, "session ended: token refresh refused", error_type=type(e).__name__
        )
        await ctx.sessions.delete(raw)
        return None
    s.access_token = tokens.access_token
    s.access_expires_at = tokens.expires_at
    s.refresh_token = tokens.refresh_token or s.refresh_token
    s.refresh_expires_at = tokens.refresh_expires_at or s.refresh_expires_at
    s.id_token = tokens.id_token or s.id_token
    s.roles, s.sites = sorted(p.roles), sorted(p.sites)
    await save(ctx, raw, s)
    return s


async def signed_in(request: Request) -> Session:
    s = await load_session(request, ctx_of(request))
    if s is None:
        raise NotSignedIn()
    if request.method == "POST":
        await check_csrf(request, s.csrf)
    return s


def area_guard(area: str):
    """Dependency: the signed-in person, 403 unless their roles open ``area``."""

    async def guard(request: Request) -> Session:
        s = await signed_in(request)
        if not access.allowed(area, s.roles):
            raise Forbidden(f"the {access.BY_KEY[area].label} screens are not open to your role")
        return s

    return Depends(guard)


async def check_csrf(request: Request, expected: str) -> None:
    origin = request.headers.get("origin")
    if origin is not None and origin != own_origin(request):
        raise CsrfFailed()
    given = request.headers.get("x-csrf-token")
    if given is None:
        form = await request.form()
        value = form.get("csrf_token")
        given = value if isinstance(value, str) else None
    if not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise CsrfFailed()


def own_origin(request: Request) -> str:
    public = ctx_of(request).settings.workbench.public_url
    if public:
        from urllib.parse import urlsplit

        p = urlsplit(public)
        return f"{p.scheme}://{p.netloc}"
    return f"{request.url.scheme}://{request.url.netloc}"


def base_url(request: Request) -> str:
    public = ctx_of(request).settings.workbench.public_url
    return public.rstrip("/") if public else str(request.base_url).rstrip("/")
