"""Bearer JWTs: who is calling, in which roles, for which sites (docs/security.md).

Tokens are standard JWTs with an asymmetric signature (RS256, ES256, EdDSA),
verified by PyJWT: issuer, audience, ``exp``, ``iat``, a non-empty ``sub`` and a
``jti`` are required; a token older than the lifetime cap is refused whatever its
``exp`` says, and so is a ``jti`` on the revocation list. Production takes the
keys from the OIDC issuer's JWKS (Keycloak, Entra ID, Okta: discovered from
``<issuer>/.well-known/openid-configuration``, cached, refreshed on an unknown
``kid``); development signs and verifies with a local RSA key pair kept under
``RCM_HOME/keys`` (``rcm token``). Roles and sites are read from configurable
claims (Keycloak: ``realm_access.roles``).

``Authenticator.from_settings(settings).require(*roles)`` is the FastAPI
dependency; ``issue`` signs development tokens (tests, demo, bench) on the
development key.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, generate_private_key
from fastapi import Depends, HTTPException, Request

from shared import logs
from shared.settings import (
    ASYMMETRIC_ALGORITHMS,
    AuthSettings,
    ConfigurationError,
    RuntimeSettings,
    ServiceSettings,
    is_secure_url,
)

_log = logging.getLogger("rcm.auth")

# What a caller may be. ``service`` is for ``service:<name>`` identities (one service calling
# another, the demo's scheduler); ``integration`` for EHR feeds and other systems.
ROLES = ("coder", "biller", "supervisor", "auditor", "ops", "integration", "service")
ALL_SITES = "*"
# RS256, as most identity providers sign by default; and of the three, the cheapest to verify
# (a 2048-bit RSA signature: ~70 us, Ed25519 ~140 us, P-256 ~220 us on a 2-core machine).
DEV_ALGORITHM = "RS256"
VERIFIED_CACHE_SECONDS = 60.0
VERIFIED_CACHE_SIZE = 4096


class TokenError(ValueError):
    """A token that cannot be accepted; the message names why, never a claim's value."""


class KeysUnavailable(RuntimeError):
    """The identity provider's keys could not be fetched (503, not 401)."""


@dataclass(frozen=True)
class Principal:
    user_id: str
    role: str  # the first of ``roles`` in ROLES order ("" when the token carries none)
    sites: frozenset[str]
    jti: str | None = None
    roles: frozenset[str] = frozenset()

    def __post_init__(self):
        if not self.roles and self.role:
            object.__setattr__(self, "roles", frozenset({self.role}))

    @property
    def all_sites(self) -> bool:
        return ALL_SITES in self.sites

    def can_access(self, site_id: str) -> bool:
        return self.all_sites or site_id in self.sites


def sites_filter(p: Principal) -> list[str] | None:
    """The caller's sites for a ``site_id = ANY($n)`` filter; None for an all-site identity."""
    return None if p.all_sites else sorted(p.sites)


def check_site(p: Principal, site_id: str) -> None:
    """403 unless the caller may act for ``site_id``."""
    if not p.can_access(site_id):
        raise HTTPException(403, "this site is not one of the caller's sites")


# --------------------------------------------------------------------------- keys


@dataclass(frozen=True)
class DevKey:
    private: RSAPrivateKey
    kid: str

    def jwk(self) -> jwt.PyJWK:
        data = jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        return jwt.PyJWK({**data, "kid": self.kid, "alg": DEV_ALGORITHM, "use": "sig"})


def dev_key(home: Path, secret: str) -> DevKey:
    """The development signing key for ``secret``, generated once under ``home/keys`` (0600).

    One key pair per secret, so a token signed for one development secret does not verify
    under another. Safe when several processes start at once: the first file linked wins.
    """
    directory = home / "keys"
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    name = hashlib.sha256(secret.encode()).hexdigest()[:16]
    path = directory / f"dev-token-rs256-{name}.pem"
    try:
        pem = path.read_bytes()
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
    except FileNotFoundError:
        pem = _create_key_file(path)
    private = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(private, RSAPrivateKey):
        raise ConfigurationError(f"{path}: not an RSA development key")
    raw = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    kid = "dev-" + base64.urlsafe_b64encode(hashlib.sha256(raw).digest()[:12]).decode()
    return DevKey(private, kid)


def _create_key_file(path: Path) -> bytes:
    pem = generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    try:
        os.link(tmp, path)
    except FileExistsError:  # another process created it first: use theirs
        pem = path.read_bytes()
    finally:
        tmp.unlink()
    return pem


class LocalKeys:
    """The development key: one kid, no network."""

    def __init__(self, key: DevKey):
        self._kid = key.kid
        self._jwk = key.jwk()

    def lookup(self, kid: str | None) -> jwt.PyJWK:
        if kid != self._kid:
            raise TokenError("token signed by an unknown key")
        return self._jwk

    async def key_for(self, kid: str | None) -> jwt.PyJWK:
        return self.lookup(kid)


class OidcKeys:
    """The OIDC issuer's signing keys: discovered, cached, refreshed on an unknown kid.

    Refreshed at most every ``min_refresh_seconds`` for unknown kids (made-up kids cannot
    flood the identity provider) and after ``max_age_seconds`` regardless. A failed refresh
    keeps the keys it had; with none at all, ``KeysUnavailable``.
    """

    def __init__(
        self,
        issuer: str,
        algorithms: tuple[str, ...],
        *,
        min_refresh_seconds: float = 30,
        max_age_seconds: float = 3600,
        timeout: float = 5.0,
    ):
        self.issuer = issuer
        self.algorithms = algorithms
        self.min_refresh_seconds = min_refresh_seconds
        self.max_age_seconds = max_age_seconds
        self.timeout = timeout
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._fetched_at: float | None = None  # monotonic time of the last good fetch
        self._tried_at: float | None = None  # ... and of the last attempt
        self._lock: asyncio.Lock | None = None

    async def key_for(self, kid: str | None) -> jwt.PyJWK:
        now = time.monotonic()
        if self._fetched_at is None or now - self._fetched_at > self.max_age_seconds:
            await self._refresh()
        key = self._lookup(kid)
        if key is None and (
            self._tried_at is None or time.monotonic() - self._tried_at >= self.min_refresh_seconds
        ):
            await self._refresh()
            key = self._lookup(kid)
        if key is None:
            raise TokenError("token signed by an unknown key")
        return key

    def _lookup(self, kid: str | None) -> jwt.PyJWK | None:
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        return self._keys.get(kid)

    async def _refresh(self) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        started = time.monotonic()
        async with self._lock:
            if self._tried_at is not None and self._tried_at >= started:
                return  # refreshed by another request while this one waited
            self._tried_at = time.monotonic()
            try:
                keys = await self._fetch()
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as e:
                logs.log(
                    _log,
                    logging.WARNING,
                    "identity provider keys not refreshed",
                    error_type=type(e).__name__,
                    component="jwks",
                )
                if not self._keys:
                    raise KeysUnavailable("the identity provider's keys are unavailable") from e
                return
            self._keys = keys
            self._fetched_at = time.monotonic()

    async def _fetch(self) -> dict[str | None, jwt.PyJWK]:
        url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False) as client:
            r = await client.get(url)
            r.raise_for_status()
            meta = r.json()
            if str(meta["issuer"]).rstrip("/") != self.issuer.rstrip("/"):
                raise ValueError("discovery document names another issuer")
            jwks_uri = str(meta["jwks_uri"])
            if not is_secure_url(jwks_uri):
                raise ValueError("jwks_uri is not https")
            r = await client.get(jwks_uri)
            r.raise_for_status()
            return signing_keys(r.json(), self.algorithms)


def signing_keys(jwks: dict, algorithms: tuple[str, ...]) -> dict[str | None, jwt.PyJWK]:
    """The usable signing keys of a JWKS by kid: asymmetric, for signatures, of an allowed alg."""
    out: dict[str | None, jwt.PyJWK] = {}
    for data in jwks["keys"]:
        if not isinstance(data, dict) or data.get("use", "sig") != "sig":
            continue
        if data.get("kty") not in ("RSA", "EC", "OKP"):  # never "oct": a shared secret
            continue
        try:
            key = jwt.PyJWK(data)
        except jwt.PyJWTError:
            continue
        if key.algorithm_name in algorithms:
            out[data.get("kid")] = key
    return out


class RevocationList:
    """Revoked token ids, one per line in a file the operator controls (``#`` starts a comment).

    The file is checked at most every ``check_every`` seconds and re-read when it changed; a
    missing file revokes nothing. An unreadable one keeps the list last read (and says so).
    """

    def __init__(self, path: Path, check_every: float = 1.0):
        self.path = path
        self.check_every = check_every
        self._ids: frozenset[str] = frozenset()
        self._stamp: tuple | None = None
        self._checked: float | None = None

    def __contains__(self, jti: str) -> bool:
        now = time.monotonic()
        if self._checked is None or now - self._checked >= self.check_every:
            self._checked = now
            self._reload()
        return jti in self._ids

    def _reload(self) -> None:
        try:
            st = self.path.stat()
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
            if stamp != self._stamp:
                lines = self.path.read_text().splitlines()
                self._ids = frozenset(s for line in lines if (s := line.split("#", 1)[0].strip()))
                self._stamp = stamp
        except FileNotFoundError:
            self._ids, self._stamp = frozenset(), None
        except (OSError, UnicodeDecodeError) as e:
            logs.log(
                _log,
                logging.WARNING,
                "revocation list unreadable; keeping the last one read",
                error_type=type(e).__name__,
                component="revocation",
            )


# --------------------------------------------------------------------------- verification


def _claim(claims: dict, path: str) -> Any:
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _put_claim(claims: dict, path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for part in parents:
        claims = claims.setdefault(part, {})
    claims[last] = value


def _strings(value: Any, what: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise TokenError(f"token's {what} claim is not a list of names")
    return [v.strip() for v in value]


_JWT_ERRORS: tuple[tuple[type[Exception], str], ...] = (
    (jwt.ExpiredSignatureError, "token expired"),
    (jwt.InvalidSignatureError, "bad token signature"),
    (jwt.InvalidAudienceError, "token issued for another audience"),
    (jwt.InvalidIssuerError, "token from another issuer"),
    (jwt.ImmatureSignatureError, "token not valid yet"),
    (jwt.exceptions.InvalidSubjectError, "token subject is not a string"),
    (jwt.exceptions.InvalidJTIError, "token id (jti) is not a string"),
)


class Authenticator:
    """Verifies bearer tokens and turns them into Principals (see the module doc)."""

    def __init__(
        self,
        keys: LocalKeys | OidcKeys,
        *,
        issuer: str,
        audience: str,
        algorithms: tuple[str, ...] = ASYMMETRIC_ALGORITHMS,
        max_lifetime_seconds: int = 12 * 3600,
        leeway_seconds: int = 30,  # for iat/nbf a little in the future (issuer clock ahead)
        role_claim: str = "roles",
        site_claim: str = "sites",
        jti_claim: str = "jti",
        revoked: RevocationList | None = None,
    ):
        if not set(algorithms) <= set(ASYMMETRIC_ALGORITHMS):
            raise ConfigurationError("token algorithms must be asymmetric (RS256, ES256, EdDSA)")
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.algorithms = tuple(algorithms)
        self.max_lifetime_seconds = max_lifetime_seconds
        self.leeway_seconds = leeway_seconds
        self.role_claim = role_claim
        self.site_claim = site_claim
        self.jti_claim = jti_claim
        self.revoked = revoked
        self._verified: dict[str, tuple[Principal, float, float]] = {}

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> Authenticator:
        return cls.build(settings.auth, settings.runtime)

    @classmethod
    def build(cls, auth: AuthSettings, runtime: RuntimeSettings) -> Authenticator:
        algorithms = tuple(auth.token_algorithms)
        keys: LocalKeys | OidcKeys
        if auth.key_source(runtime.env) == "oidc":
            keys = OidcKeys(
                auth.issuer, algorithms, min_refresh_seconds=auth.token_jwks_min_refresh_seconds
            )
        else:
            keys = LocalKeys(dev_key(runtime.home, auth.token_secret))
        return cls(
            keys,
            issuer=auth.issuer,
            audience=auth.audience,
            algorithms=algorithms,
            max_lifetime_seconds=auth.token_max_lifetime_seconds,
            leeway_seconds=auth.token_leeway_seconds,
            role_claim=auth.token_role_claim,
            site_claim=auth.token_site_claim,
            jti_claim=auth.token_jti_claim,
            revoked=RevocationList(auth.token_revocation_file)
            if auth.token_revocation_file
            else None,
        )

    async def authenticate(self, token: str) -> Principal:
        """The token's principal; TokenError when it cannot be accepted, KeysUnavailable."""
        if (p := self._cached(token)) is not None:
            return p
        header = self._header(token)
        key = await self.keys.key_for(header.get("kid"))
        return self._remember(token, *self._verify(token, header, key))

    def authenticate_local(self, token: str) -> Principal:
        """``authenticate`` for the development key, without an event loop."""
        if not isinstance(self.keys, LocalKeys):
            raise TypeError("authenticate_local needs the development key")
        if (p := self._cached(token)) is not None:
            return p
        header = self._header(token)
        return self._remember(
            token, *self._verify(token, header, self.keys.lookup(header.get("kid")))
        )

    def _cached(self, token: str) -> Principal | None:
        """A token verified in the last minute: its signature is not checked again (a client
        sends the same token with every request), its expiry and revocation are."""
        entry = self._verified.get(token)
        if entry is None:
            return None
        p, until, stored = entry
        if time.time() >= until or time.monotonic() - stored > VERIFIED_CACHE_SECONDS:
            del self._verified[token]
            return None
        if self.revoked is not None and p.jti in self.revoked:
            raise TokenError("token revoked")
        return p

    def _remember(self, token: str, p: Principal, until: float) -> Principal:
        self._verified[token] = (p, until, time.monotonic())
        if len(self._verified) > VERIFIED_CACHE_SIZE:
            del self._verified[next(iter(self._verified))]  # the oldest
        return p

    def _header(self, token: str) -> dict:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as e:
            raise TokenError("malformed token") from e
        if header.get("alg") not in self.algorithms:  # none, HS256 (key confusion), ...
            raise TokenError("token algorithm not allowed")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise TokenError("malformed token")
        return header

    def _verify(self, token: str, header: dict, key: jwt.PyJWK) -> tuple[Principal, float]:
        """The principal and the time its token stops being valid (exp or the lifetime cap)."""
        if header["alg"] != key.algorithm_name:
            raise TokenError("token algorithm does not match its key")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[key.algorithm_name],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_seconds,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.MissingRequiredClaimError as e:
            raise TokenError(f"token lacks the {e.claim} claim") from e
        except jwt.PyJWTError as e:
            for kind, message in _JWT_ERRORS:
                if isinstance(e, kind):
                    raise TokenError(message) from e
            raise TokenError("malformed token") from e
        now = time.time()
        if now >= int(claims["exp"]):  # the leeway covers an issuer's clock ahead, not expiry
            raise TokenError("token expired")
        sub = claims["sub"]
        if not sub.strip():
            raise TokenError("token subject is empty")
        capped = int(claims["iat"]) + self.max_lifetime_seconds + self.leeway_seconds
        if now > capped:
            raise TokenError(f"token older than the {self.max_lifetime_seconds} s lifetime cap")
        jti = _claim(claims, self.jti_claim)
        if not isinstance(jti, str) or not jti.strip():
            raise TokenError(f"token lacks the {self.jti_claim} claim")
        if self.revoked is not None and jti in self.revoked:
            raise TokenError("token revoked")
        raw_roles = _claim(claims, self.role_claim)
        roles = frozenset(_strings(raw_roles, "roles") if raw_roles is not None else ()) & set(
            ROLES
        )
        raw_sites = _claim(claims, self.site_claim)
        if raw_sites is None:
            raise TokenError("token lacks the sites claim")
        sites = frozenset(_strings(raw_sites, "sites"))
        if ALL_SITES in sites and len(sites) > 1:
            raise TokenError("token's sites claim mixes '*' with sites")
        role = next((r for r in ROLES if r in roles), "")
        return Principal(sub, role, sites, jti, roles), min(float(claims["exp"]), capped)

    # -- FastAPI

    def require(self, *roles: str):
        """FastAPI dependency: the caller, 401 without a valid token, 403 without an allowed role.

        No roles: any of the rcm roles. The principal is also left in ``request.state``
        for the access log and the audit trail.
        """
        allowed = frozenset(roles) or frozenset(ROLES)
        if unknown := allowed - set(ROLES):
            raise ValueError(f"unknown roles: {sorted(unknown)}")

        async def caller(request: Request) -> Principal:
            p = await self.from_request(request)
            if not p.roles & allowed:
                raise HTTPException(403, "the caller's role may not do this")
            return p

        return Depends(caller)

    async def from_request(self, request: Request) -> Principal:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
        try:
            p = await self.authenticate(token.strip())
        except TokenError as e:
            raise HTTPException(
                401, str(e), headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
            ) from e
        except KeysUnavailable as e:
            raise HTTPException(503, str(e)) from e
        request.state.principal = p
        return p


# --------------------------------------------------------------------------- signing (development)


@dataclass(frozen=True)
class DevSigner:
    """Signs development tokens with the local key, saying what the verifier expects."""

    key: DevKey
    auth: AuthSettings

    @classmethod
    def build(cls, auth: AuthSettings, runtime: RuntimeSettings) -> DevSigner:
        if runtime.env == "production":
            raise ConfigurationError(
                "development tokens are not signed in production: tokens come from the "
                "identity provider (RCM_TOKEN_ISSUER)"
            )
        return cls(dev_key(runtime.home, auth.token_secret), auth)

    def sign(
        self,
        subject: str,
        roles: list[str],
        sites: list[str],
        ttl_seconds: int,
        *,
        jti: str | None = None,
        issued_at: int | None = None,
    ) -> str:
        now = int(time.time()) if issued_at is None else issued_at
        claims: dict[str, Any] = {
            "iss": self.auth.issuer,
            "aud": self.auth.audience,
            "sub": subject,
            "iat": now,
            "exp": now + ttl_seconds,
        }
        _put_claim(claims, self.auth.token_jti_claim, jti or uuid.uuid4().hex)
        _put_claim(claims, self.auth.token_role_claim, list(roles))
        _put_claim(claims, self.auth.token_site_claim, sorted(sites))
        return jwt.encode(
            claims, self.key.private, algorithm=DEV_ALGORITHM, headers={"kid": self.key.kid}
        )


def _env_auth(secret: str) -> tuple[AuthSettings, RuntimeSettings]:
    return AuthSettings(token_secret=secret), RuntimeSettings()


def issue(
    secret: str, user_id: str, role: str, sites: list[str], ttl_seconds: int = 8 * 3600
) -> str:
    """A development token signed with the local key for ``secret`` (issuer etc. from the env)."""
    return DevSigner.build(*_env_auth(secret)).sign(user_id, [role], sites, ttl_seconds)


def verify(secret: str, token: str) -> Principal:
    """The principal of a development token for ``secret``; TokenError when it is refused."""
    return Authenticator.build(*_env_auth(secret)).authenticate_local(token)


_SHARED: dict[str, Authenticator] = {}
