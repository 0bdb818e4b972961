"""Bearer tokens for the work-queue APIs: HMAC-SHA256-signed claims, site-scoped.

Token = base64url(JSON claims) "." base64url(HMAC-SHA256(secret, first part)).
Claims: ``sub`` (user id), ``role`` (coder, biller, supervisor, service),
``sites`` (list of site ids, or ["*"]), ``exp`` (unix seconds). A simple scheme
on purpose: swap in an OIDC verifier by replacing ``verify``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass

from fastapi import Depends, HTTPException, Request


class TokenError(ValueError):
    pass


@dataclass(frozen=True)
class Principal:
    user_id: str
    role: str
    sites: frozenset[str]

    def can_access(self, site_id: str) -> bool:
        return "*" in self.sites or site_id in self.sites


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue(
    secret: str, user_id: str, role: str, sites: list[str], ttl_seconds: int = 8 * 3600
) -> str:
    claims = {
        "sub": user_id,
        "role": role,
        "sites": sorted(sites),
        "exp": int(time.time()) + ttl_seconds,
    }
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    sig = _b64(hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest())
    return f"{body}.{sig}"


def verify(secret: str, token: str) -> Principal:
    """Return the token's principal; raise TokenError when forged, malformed or expired."""
    try:
        body, sig = token.split(".")
    except ValueError as e:
        raise TokenError("malformed token") from e
    expected = _b64(hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(sig, expected):
        raise TokenError("bad token signature")
    try:
        claims = json.loads(_unb64(body))
        principal = Principal(str(claims["sub"]), str(claims["role"]), frozenset(claims["sites"]))
        exp = int(claims["exp"])
    except (ValueError, KeyError, TypeError) as e:
        raise TokenError("malformed token claims") from e
    if exp < time.time():
        raise TokenError("token expired")
    return principal


def principal_dependency(secret: str, roles: frozenset[str] | None = None):
    """FastAPI dependency: the caller's principal, 401 without a valid token, 403 for a wrong role."""

    # async: a plain def dependency runs in a worker thread per request, for an HMAC check of microseconds
    async def dep(request: Request) -> Principal:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer "):
            raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
        try:
            p = verify(secret, header[7:].strip())
        except TokenError as e:
            raise HTTPException(401, str(e), headers={"WWW-Authenticate": "Bearer"}) from e
        if roles is not None and p.role not in roles:
            raise HTTPException(403, f"role {p.role!r} may not do this")
        return p

    return Depends(dep)
