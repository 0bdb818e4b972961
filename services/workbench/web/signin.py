"""Sign-in (OIDC code flow with PKCE, or the development page), sign-out, and the landing page."""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import asdict

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from services.workbench.domain import access
from services.workbench.domain.demo_users import BY_USERNAME, DEMO_USERS
from services.workbench.oidc import SignInError
from services.workbench.sessions import LOGIN_SECONDS, LoginTransaction, Session, new_id
from services.workbench.web.render import page
from services.workbench.web.security import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    CsrfFailed,
    Ctx,
    base_url,
    check_csrf,
    clear_cookie,
    cookie_name,
    load_session,
    save,
    set_cookie,
)
from shared import logs
from shared.auth import KeysUnavailable, TokenError

_log = logging.getLogger("rcm.workbench")
router = APIRouter()


@router.get("/")
async def landing(request: Request, ctx: Ctx):
    s = await load_session(request, ctx)
    if s is None:
        return RedirectResponse("/signin", 303)
    return RedirectResponse(access.home_path(s.roles), 303)


@router.get("/signin")
async def signin_page(request: Request, ctx: Ctx, next: str = "/"):
    target = access.safe_next(next)
    if ctx.oidc is not None:
        return page(request, "signin.html", {"next": target, "mode": "oidc"})
    txn = LoginTransaction(csrf=secrets.token_urlsafe(32), next_path=target)
    raw = new_id()
    await ctx.sessions.put(raw, "login", asdict(txn), time.time() + LOGIN_SECONDS)
    response = page(
        request,
        "signin.html",
        {"next": target, "mode": "dev", "users": DEMO_USERS, "login_csrf": txn.csrf},
    )
    set_cookie(ctx, response, LOGIN_COOKIE, raw, LOGIN_SECONDS)
    return response


async def _transaction(request: Request, ctx) -> tuple[str, LoginTransaction] | None:
    raw = request.cookies.get(cookie_name(ctx, LOGIN_COOKIE))
    if not raw or len(raw) > 100:
        return None
    data = await ctx.sessions.get(raw, "login")
    if data is None:
        return None
    await ctx.sessions.delete(raw)  # one use
    return raw, LoginTransaction(**data)


@router.post("/signin/dev")
async def signin_dev(request: Request, ctx: Ctx, username: str = Form(max_length=64)):
    """The development sign-in: a demo user's token signed with the local development key."""
    if ctx.dev_signer is None:
        return page(
            request,
            "error.html",
            {
                "title": "Not available",
                "message": "The development sign-in is off; sign in through the identity provider.",
            },
            status=404,
        )
    found = await _transaction(request, ctx)
    if found is None:
        return _retry(request, "Your sign-in page expired; please choose again.")
    _, txn = found
    try:
        await check_csrf(request, txn.csrf)
    except CsrfFailed:
        return _retry(request, "Your sign-in page expired; please choose again.")
    user = BY_USERNAME.get(username)
    if user is None:
        return _retry(request, "Choose one of the listed demo users.")
    ttl = min(
        ctx.settings.workbench.session_max_seconds, ctx.settings.auth.token_max_lifetime_seconds
    )
    token = ctx.dev_signer.sign(user.username, [user.role], list(user.sites), ttl)
    p = await ctx.verifier.authenticate(token)
    now = time.time()
    s = Session(
        user_id=p.user_id,
        name=user.username,
        roles=sorted(p.roles),
        sites=sorted(p.sites),
        access_token=token,
        access_expires_at=now + ttl,
        csrf=secrets.token_urlsafe(32),
        kind="dev",
    )
    return await _start_session(request, ctx, s, txn.next_path)


def _retry(request: Request, message: str) -> Response:
    return page(request, "signed_out.html", {"message": message, "retry": True}, status=400)


@router.get("/signin/oidc")
async def signin_oidc(request: Request, ctx: Ctx, next: str = "/"):
    """Start the authorization code flow: state, nonce and PKCE verifier kept server-side."""
    if ctx.oidc is None:
        return RedirectResponse("/signin", 303)
    redirect_uri = base_url(request) + "/auth/callback"
    try:
        req = await ctx.oidc.authorization_request(redirect_uri)
    except SignInError as e:
        return page(
            request, "error.html", {"title": "Sign-in unavailable", "message": str(e)}, status=503
        )
    txn = LoginTransaction(
        csrf=secrets.token_urlsafe(32),
        next_path=access.safe_next(next),
        state=req.state,
        nonce=req.nonce,
        code_verifier=req.code_verifier,
        redirect_uri=redirect_uri,
    )
    raw = new_id()
    await ctx.sessions.put(raw, "login", asdict(txn), time.time() + LOGIN_SECONDS)
    response = RedirectResponse(req.url, 303)
    set_cookie(ctx, response, LOGIN_COOKIE, raw, LOGIN_SECONDS)
    return response


@router.get("/auth/callback")
async def callback(request: Request, ctx: Ctx):
    if ctx.oidc is None:
        return RedirectResponse("/signin", 303)
    found = await _transaction(request, ctx)
    if found is None or not found[1].state:
        return _retry(request, "This sign-in was not started in this browser, or took too long.")
    _, txn = found
    if request.query_params.get("error"):
        return _retry(request, "The identity provider did not sign you in.")
    try:
        tokens, claims = await ctx.oidc.finish(
            str(request.url),
            state=txn.state,
            nonce=txn.nonce or "",
            code_verifier=txn.code_verifier or "",
            redirect_uri=txn.redirect_uri or "",
        )
        p = await ctx.verifier.authenticate(tokens.access_token)
    except (SignInError, TokenError, KeysUnavailable) as e:
        logs.log(_log, logging.WARNING, "sign-in refused", error_type=type(e).__name__)
        return _retry(request, f"Sign-in failed: {e}")
    if claims.get("sub") != p.user_id:
        return _retry(
            request, "Sign-in failed: the ID token and access token name different people."
        )
    s = Session(
        user_id=p.user_id,
        name=str(claims.get("preferred_username") or p.user_id)[:64],
        roles=sorted(p.roles),
        sites=sorted(p.sites),
        access_token=tokens.access_token,
        access_expires_at=tokens.expires_at,
        csrf=secrets.token_urlsafe(32),
        kind="oidc",
        refresh_token=tokens.refresh_token,
        refresh_expires_at=tokens.refresh_expires_at,
        id_token=tokens.id_token,
    )
    return await _start_session(request, ctx, s, txn.next_path)


async def _start_session(request: Request, ctx, s: Session, next_path: str) -> Response:
    raw = new_id()  # a new id at every sign-in: no session fixation
    await save(ctx, raw, s)
    target = next_path if next_path != "/" else access.home_path(s.roles)
    response = RedirectResponse(target, 303)
    set_cookie(ctx, response, SESSION_COOKIE, raw, ctx.settings.workbench.session_max_seconds)
    clear_cookie(ctx, response, LOGIN_COOKIE)
    logs.log(_log, logging.INFO, "signed in", user=s.user_id, kind=s.kind)
    return response


@router.post("/signout")
async def signout(request: Request, ctx: Ctx):
    s = await load_session(request, ctx)
    target = "/signed-out"
    if s is not None:
        try:
            await check_csrf(request, s.csrf)
        except CsrfFailed:
            return page(
                request,
                "error.html",
                {"title": "Refused", "message": "The form expired; reload the page and try again."},
                user=s,
                status=403,
            )
        await ctx.sessions.delete(request.state.session_id)
        if s.kind == "oidc" and ctx.oidc is not None:
            try:
                url = await ctx.oidc.logout_url(s.id_token, base_url(request) + "/signed-out")
            except SignInError:
                url = None
            target = url or target
    response = RedirectResponse(target, 303)
    clear_cookie(ctx, response, SESSION_COOKIE)
    return response


@router.get("/signed-out")
async def signed_out(request: Request):
    return page(request, "signed_out.html", {"message": "You are signed out."})


@router.get("/no-screens")
async def no_screens(request: Request, ctx: Ctx):
    s = await load_session(request, ctx)
    if s is None:
        return RedirectResponse("/signin", 303)
    return page(
        request,
        "error.html",
        {
            "title": "No screens for your role",
            "message": "Your account has no coder, biller, supervisor or ops role; ask an administrator.",
        },
        user=s,
        status=403,
    )
