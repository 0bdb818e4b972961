"""Production keys: an OIDC issuer's discovery document and JWKS, served by a tiny local server,
and the FastAPI dependency's answers (401, 403, 503, 200)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from fastapi import FastAPI

from shared.auth import Authenticator, OidcKeys, Principal, check_site
from shared.settings import AuthSettings, RuntimeSettings

AUDIENCE = "rcm-api"


class Issuer:
    """A Keycloak-like realm on 127.0.0.1: discovery, JWKS, and a log of what was fetched."""

    def __init__(self):
        self.keys: dict[str, tuple[object, str]] = {}  # kid -> (private key, alg)
        self.extra_jwks: list[dict] = []
        self.hits: list[str] = []
        self.claimed_issuer: str | None = None
        issuer = self

        def respond(handler: BaseHTTPRequestHandler) -> None:
            issuer.hits.append(handler.path)
            if handler.path == "/realms/rcm/.well-known/openid-configuration":
                body = {
                    "issuer": issuer.claimed_issuer or issuer.url,
                    "jwks_uri": issuer.url + "/protocol/openid-connect/certs",
                }
            elif handler.path == "/realms/rcm/protocol/openid-connect/certs":
                body = {"keys": issuer.jwks()}
            else:
                handler.send_error(404)
                return
            data = json.dumps(body).encode()
            handler.send_response(200)
            handler.send_header("content-type", "application/json")
            handler.send_header("content-length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)

        quiet = {"do_GET": respond, "log_message": lambda *_: None}
        Handler = type("Handler", (BaseHTTPRequestHandler,), quiet)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/realms/rcm"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def add_key(self, kid: str, alg: str):
        private = {
            "RS256": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
            "ES256": lambda: ec.generate_private_key(ec.SECP256R1()),
            "EdDSA": ed25519.Ed25519PrivateKey.generate,
        }[alg]()
        self.keys[kid] = (private, alg)

    def jwks(self) -> list[dict]:
        out = []
        for kid, (private, alg) in self.keys.items():
            algo = jwt.get_algorithm_by_name(alg)
            out.append(
                {**algo.to_jwk(private.public_key(), as_dict=True), "kid": kid, "use": "sig"}
            )
        return out + self.extra_jwks

    def token(self, kid: str, **over) -> str:
        private, alg = self.keys[kid]
        now = int(time.time())
        body = {
            "iss": self.url,
            "aud": AUDIENCE,
            "sub": "f3c1d2e4-user",
            "iat": now,
            "exp": now + 300,
            "jti": f"jti-{kid}",
            "realm_access": {"roles": ["default-roles-rcm", "offline_access", "coder"]},
            "sites": ["north-clinic"],
        }
        body.update(over)
        return jwt.encode(body, private, algorithm=alg, headers={"kid": kid})

    def authenticator(self, **kw) -> Authenticator:
        keys = OidcKeys(self.url, ("RS256", "ES256", "EdDSA"), **kw)
        return Authenticator(
            keys, issuer=self.url, audience=AUDIENCE, role_claim="realm_access.roles"
        )

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def idp():
    issuer = Issuer()
    issuer.add_key("k1", "RS256")
    yield issuer
    issuer.close()


async def test_keys_are_discovered_from_the_issuer_and_cached(idp):
    authn = idp.authenticator()
    p = await authn.authenticate(idp.token("k1"))
    assert (p.user_id, p.role, p.sites) == ("f3c1d2e4-user", "coder", frozenset({"north-clinic"}))
    await authn.authenticate(idp.token("k1", jti="second"))
    assert idp.hits == [
        "/realms/rcm/.well-known/openid-configuration",
        "/realms/rcm/protocol/openid-connect/certs",
    ]


async def test_an_unknown_kid_refreshes_the_keys_once_per_interval(idp):
    authn = idp.authenticator(min_refresh_seconds=0)
    await authn.authenticate(idp.token("k1"))
    idp.add_key("k2", "ES256")  # the issuer rotates
    assert (await authn.authenticate(idp.token("k2"))).jti == "jti-k2"
    assert len(idp.hits) == 4

    slow = idp.authenticator(min_refresh_seconds=30)
    await slow.authenticate(idp.token("k1"))
    idp.add_key("k3", "EdDSA")
    idp.add_key("made-up", "EdDSA")
    forged = idp.token("made-up")
    del idp.keys["made-up"]
    before = len(idp.hits)
    for _ in range(5):  # a flood of unknown kids is not a flood of fetches
        with pytest.raises(Exception, match="unknown key"):
            await slow.authenticate(forged)
    assert len(idp.hits) == before


async def test_only_asymmetric_signing_keys_of_the_jwks_count(idp):
    idp.extra_jwks = [
        {"kty": "oct", "kid": "shared", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"},
        {**idp.jwks()[0], "kid": "enc-key", "use": "enc"},
    ]
    authn = idp.authenticator()
    hs = jwt.encode(
        {"iss": idp.url, "aud": AUDIENCE, "sub": "x", "iat": 1, "exp": 2},
        b"secret-secret-secret-secret-secret",
        algorithm="HS256",
        headers={"kid": "shared"},
    )
    with pytest.raises(Exception, match="algorithm not allowed"):
        await authn.authenticate(hs)
    rsa_as_enc = idp.token("k1")
    rsa_as_enc = jwt.encode(
        jwt.decode(rsa_as_enc, options={"verify_signature": False}),
        idp.keys["k1"][0],
        algorithm="RS256",
        headers={"kid": "enc-key"},
    )
    with pytest.raises(Exception, match="unknown key"):
        await authn.authenticate(rsa_as_enc)


async def test_a_discovery_document_naming_another_issuer_gives_no_keys(idp):
    idp.claimed_issuer = "https://evil.example/realms/rcm"
    with pytest.raises(Exception, match="unavailable"):
        await idp.authenticator().authenticate(idp.token("k1"))


def _app(authn: Authenticator) -> FastAPI:
    app = FastAPI()

    @app.get("/sites/{site_id}/work")
    async def work(site_id: str, p: Principal = authn.require("coder", "supervisor")):
        check_site(p, site_id)
        return {"user": p.user_id}

    return app


async def _get(app, path, token=None):
    headers = {"authorization": f"Bearer {token}"} if token else {}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.get(path, headers=headers)


async def test_the_dependency_answers_401_403_503_and_200(idp):
    app = _app(idp.authenticator())
    assert (await _get(app, "/sites/north-clinic/work")).status_code == 401
    r = await _get(app, "/sites/north-clinic/work", "garbage")
    assert r.status_code == 401 and "invalid_token" in r.headers["www-authenticate"]
    expired = idp.token("k1", iat=int(time.time()) - 600, exp=int(time.time()) - 60)
    assert (await _get(app, "/sites/north-clinic/work", expired)).status_code == 401
    biller = idp.token("k1", realm_access={"roles": ["biller"]})
    assert (await _get(app, "/sites/north-clinic/work", biller)).status_code == 403
    no_role = idp.token("k1", realm_access={"roles": ["offline_access"]})
    assert (await _get(app, "/sites/north-clinic/work", no_role)).status_code == 403
    assert (await _get(app, "/sites/east-hospital/work", idp.token("k1"))).status_code == 403
    ok = await _get(app, "/sites/north-clinic/work", idp.token("k1"))
    assert ok.status_code == 200 and ok.json() == {"user": "f3c1d2e4-user"}

    idp.close()  # the identity provider goes away before this service ever fetched its keys
    cold = _app(idp.authenticator())
    assert (await _get(cold, "/sites/north-clinic/work", idp.token("k1"))).status_code == 503


def test_production_settings_build_an_oidc_authenticator(monkeypatch, tmp_path):
    monkeypatch.setenv("RCM_ENV", "production")
    monkeypatch.setenv("RCM_TOKEN_ISSUER", "https://login.example/realms/rcm")
    monkeypatch.setenv("RCM_TOKEN_AUDIENCE", AUDIENCE)
    authn = Authenticator.build(AuthSettings(), RuntimeSettings(home=tmp_path))
    assert isinstance(authn.keys, OidcKeys) and authn.keys.issuer.endswith("/realms/rcm")
    assert not (tmp_path / "keys").exists()  # no development key made or read
