"""OpenID Connect sign-in: authorization code flow with PKCE (S256), refresh and RP-initiated logout.

The protocol pieces are authlib's (authorization URL, callback parsing with the state
check, PKCE challenge, ID-token claim validation including nonce and at_hash) with joserfc
verifying the ID token's signature against the issuer's JWKS; httpx carries the two
requests (discovery with the JWKS, the token endpoint). Nothing here logs a token.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx
from authlib.common.security import generate_token
from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749 import MismatchingStateException, MissingCodeException
from authlib.oauth2.rfc6749.parameters import (
    parse_authorization_code_response,
    prepare_grant_uri,
    prepare_token_request,
)
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

DISCOVERY_TTL_SECONDS = 3600


class SignInError(Exception):
    """The sign-in cannot complete; the message is safe to show (no token, no claim value)."""


@dataclass(frozen=True)
class AuthorizationRequest:
    url: str
    state: str
    nonce: str
    code_verifier: str


@dataclass(frozen=True)
class Tokens:
    access_token: str
    expires_at: float
    refresh_token: str | None
    refresh_expires_at: float | None
    id_token: str | None


class OidcClient:
    def __init__(
        self,
        issuer: str,
        client_id: str,
        client_secret: str,
        scopes: str,
        http: httpx.AsyncClient,
    ):
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret
        self.scopes = scopes
        self.http = http
        self._meta: dict | None = None
        self._meta_at = 0.0
        self._jwks: dict | None = None

    async def metadata(self) -> dict:
        if self._meta is None or time.monotonic() - self._meta_at > DISCOVERY_TTL_SECONDS:
            try:
                r = await self.http.get(self.issuer + "/.well-known/openid-configuration")
                r.raise_for_status()
                meta = r.json()
            except (httpx.HTTPError, ValueError) as e:
                raise SignInError(
                    f"the identity provider is unavailable ({type(e).__name__})"
                ) from e
            if str(meta.get("issuer", "")).rstrip("/") != self.issuer:
                raise SignInError("the identity provider's discovery document names another issuer")
            self._meta, self._meta_at, self._jwks = meta, time.monotonic(), None
        return self._meta

    async def authorization_request(self, redirect_uri: str) -> AuthorizationRequest:
        meta = await self.metadata()
        state, nonce, verifier = generate_token(32), generate_token(32), generate_token(64)
        url = prepare_grant_uri(
            meta["authorization_endpoint"],
            self.client_id,
            "code",
            redirect_uri=redirect_uri,
            scope=self.scopes,
            state=state,
            nonce=nonce,
            code_challenge=create_s256_code_challenge(verifier),
            code_challenge_method="S256",
        )
        return AuthorizationRequest(url, state, nonce, verifier)

    async def finish(
        self, callback_url: str, *, state: str, nonce: str, code_verifier: str, redirect_uri: str
    ) -> tuple[Tokens, dict]:
        """Exchange the callback's code for tokens; the validated ID token claims beside them."""
        try:
            params = parse_authorization_code_response(callback_url, state=state)
        except MismatchingStateException as e:
            raise SignInError("the sign-in answer does not belong to this browser's sign-in") from e
        except MissingCodeException as e:
            raise SignInError("the identity provider did not sign you in") from e
        if params.get("iss") and params["iss"].rstrip("/") != self.issuer:  # RFC 9207
            raise SignInError("the sign-in answer came from another issuer")
        tokens, raw = await self._token_request(
            "authorization_code",
            code=params["code"],
            redirect_uri=redirect_uri,
            code_verifier=code_verifier,
        )
        if not tokens.id_token:
            raise SignInError("the identity provider returned no ID token")
        claims = await self._id_claims(tokens.id_token, nonce, raw["access_token"])
        return tokens, claims

    async def refresh(self, refresh_token: str) -> Tokens:
        tokens, _ = await self._token_request("refresh_token", refresh_token=refresh_token)
        return tokens

    async def logout_url(self, id_token: str | None, post_logout_redirect_uri: str) -> str | None:
        """The issuer's end-session URL (RP-initiated logout); None when it offers none."""
        meta = await self.metadata()
        endpoint = meta.get("end_session_endpoint")
        if not endpoint:
            return None
        params = [
            ("client_id", self.client_id),
            ("post_logout_redirect_uri", post_logout_redirect_uri),
        ]
        if id_token:
            params.append(("id_token_hint", id_token))
        return add_params_to_uri(endpoint, params)

    async def _token_request(self, grant_type: str, **kwargs) -> tuple[Tokens, dict]:
        meta = await self.metadata()
        body = prepare_token_request(grant_type, **kwargs)
        try:
            r = await self.http.post(
                meta["token_endpoint"],
                content=body,
                auth=(self.client_id, self.client_secret),
                headers={
                    "content-type": "application/x-www-form-urlencoded",
                    "accept": "application/json",
                },
            )
        except httpx.HTTPError as e:
            raise SignInError(f"the identity provider is unavailable ({type(e).__name__})") from e
        if r.status_code != 200:
            error = _error_code(r)
            raise SignInError(f"the identity provider refused the {grant_type} request ({error})")
        raw = r.json()
        now = time.time()
        if not isinstance(raw.get("access_token"), str):
            raise SignInError("the identity provider returned no access token")
        refresh_in = raw.get("refresh_expires_in")
        return (
            Tokens(
                access_token=raw["access_token"],
                expires_at=now + float(raw.get("expires_in") or 60),
                refresh_token=raw.get("refresh_token"),
                refresh_expires_at=now + float(refresh_in) if refresh_in else None,
                id_token=raw.get("id_token"),
            ),
            raw,
        )

    async def _jwk_set(self, force: bool = False) -> KeySet:
        if self._jwks is None or force:
            meta = await self.metadata()
            try:
                r = await self.http.get(meta["jwks_uri"])
                r.raise_for_status()
                self._jwks = r.json()
            except (httpx.HTTPError, ValueError, KeyError) as e:
                raise SignInError("the identity provider's keys are unavailable") from e
        return KeySet.import_key_set(self._jwks)

    async def _id_claims(self, id_token: str, nonce: str, access_token: str) -> dict:
        meta = await self.metadata()
        algs = meta.get("id_token_signing_alg_values_supported") or ["RS256"]
        registry = JWSRegistry(algorithms=[a for a in algs if a != "none"])
        try:
            try:
                token = jwt.decode(id_token, await self._jwk_set(), registry=registry)
            except JoseError:  # perhaps a rotated key: fetch the set again once
                token = jwt.decode(id_token, await self._jwk_set(force=True), registry=registry)
            claims = CodeIDToken(
                token.claims,
                token.header,
                {"iss": {"essential": True, "values": [meta["issuer"]]}},
                {"nonce": nonce, "client_id": self.client_id, "access_token": access_token},
            )
            claims.validate(leeway=60)
        except (JoseError, ValueError) as e:
            raise SignInError(f"the ID token was refused ({type(e).__name__})") from e
        return dict(claims)


def _error_code(r: httpx.Response) -> str:
    try:
        code = r.json().get("error")
    except ValueError:
        code = None
    return (
        code
        if isinstance(code, str) and code.isascii() and len(code) < 64
        else f"HTTP {r.status_code}"
    )
