"""What shared.service gives every service's HTTP side: one authenticator per runtime, routes
declaring their roles (``requires``), and the token a service sends another (its identity:
the development key's, an operator's token file, or the identity provider's client
credentials grant)."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from urllib.parse import parse_qs

import httpx
import pytest
from fastapi import FastAPI

from shared.auth import Authenticator, LocalKeys, Principal, dev_key
from shared.service import Runtime, ServiceCredentialsError, ServiceIdentity, requires
from shared.settings import (
    AuthSettings,
    ConfigurationError,
    RuntimeSettings,
    ServiceIdentitySettings,
    ServiceSettings,
)


@pytest.fixture
def settings(tmp_path) -> ServiceSettings:
    return ServiceSettings(service_name="followup", runtime=RuntimeSettings(home=tmp_path))


def identity(settings, **credentials) -> ServiceIdentity:
    return ServiceIdentity(
        f"service:{settings.service_name}", settings, ServiceIdentitySettings(**credentials)
    )


def test_a_runtime_builds_one_authenticator_and_identity_from_its_settings(settings):
    rt = Runtime(settings=settings, pool=None, relay=None, stop=asyncio.Event())  # type: ignore[arg-type]
    assert isinstance(rt.auth, Authenticator) and rt.auth.issuer == settings.auth.issuer
    assert rt.identity.subject == "service:followup"


async def test_in_development_the_identity_is_a_service_token_on_the_local_key(settings):
    me = identity(settings)
    token = await me.token()
    p = await Authenticator.from_settings(settings).authenticate(token)
    assert (p.user_id, p.roles, p.sites) == ("service:followup", {"service"}, {"*"})
    assert await me.token() == token  # kept until a minute before it expires
    headers = await me.headers("req-7")
    assert headers == {"authorization": f"Bearer {token}", "x-request-id": "req-7"}


async def test_in_production_without_credentials_a_call_is_refused_naming_the_settings(settings):
    production = settings.model_copy(
        update={"runtime": RuntimeSettings(home=settings.runtime.home, env="production")}
    )
    with pytest.raises(ServiceCredentialsError, match="RCM_SERVICE_CLIENT_ID"):
        await identity(production).token()


async def test_a_token_file_is_read_again_when_the_operator_replaces_it(settings, tmp_path):
    path = tmp_path / "token"
    path.write_text("first-token\n")
    me = identity(settings, token_file=path)
    assert await me.token() == "first-token"
    path.write_text("second-token-longer\n")
    assert await me.token() == "second-token-longer"
    path.write_text("")
    with pytest.raises(ServiceCredentialsError, match="empty"):
        await me.token()
    path.unlink()
    with pytest.raises(ServiceCredentialsError, match="unreadable"):
        await me.token()


def test_client_id_without_secret_and_a_plain_http_token_url_are_refused(settings, monkeypatch):
    monkeypatch.setenv("RCM_SERVICE_CLIENT_ID", "rcm-followup")
    with pytest.raises(ConfigurationError, match="RCM_SERVICE_CLIENT_SECRET"):
        ServiceIdentity.build(settings)
    monkeypatch.setenv("RCM_SERVICE_CLIENT_SECRET", "s3cret")
    monkeypatch.setenv("RCM_SERVICE_TOKEN_URL", "http://idp.example.org/token")
    with pytest.raises(ConfigurationError, match="https"):
        ServiceIdentity.build(settings)


class TokenEndpoint:
    """An identity provider on 127.0.0.1: discovery and a client-credentials token endpoint."""

    def __init__(self):
        self.grants: list[tuple[str, dict]] = []
        self.issued = 0
        endpoint = self

        def get(handler: BaseHTTPRequestHandler) -> None:
            if handler.path != "/realms/rcm/.well-known/openid-configuration":
                handler.send_error(404)
                return
            endpoint.reply(
                handler,
                {"issuer": endpoint.url, "token_endpoint": endpoint.url + "/protocol/token"},
            )

        def post(handler: BaseHTTPRequestHandler) -> None:
            length = int(handler.headers["content-length"])
            form = {k: v[0] for k, v in parse_qs(handler.rfile.read(length).decode()).items()}
            basic = handler.headers.get("authorization", "").removeprefix("Basic ")
            endpoint.grants.append((base64.b64decode(basic).decode(), form))
            endpoint.issued += 1
            endpoint.reply(
                handler,
                {"access_token": f"idp-token-{endpoint.issued}", "expires_in": 61},
            )

        quiet = {"do_GET": get, "do_POST": post, "log_message": lambda *_: None}
        handler = type("Handler", (BaseHTTPRequestHandler,), quiet)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/realms/rcm"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    @staticmethod
    def reply(handler: BaseHTTPRequestHandler, body: dict) -> None:
        data = json.dumps(body).encode()
        handler.send_response(200)
        handler.send_header("content-type", "application/json")
        handler.send_header("content-length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)


async def test_client_credentials_from_the_issuers_token_endpoint(settings):
    idp = TokenEndpoint()
    try:
        configured = settings.model_copy(
            update={"auth": AuthSettings(token_issuer=idp.url, token_audience="rcm-api")}
        )
        me = identity(configured, client_id="rcm-followup", client_secret="s3cret", scope="rcm")
        assert await me.token() == "idp-token-1"
        assert await me.token() == "idp-token-1"  # cached: 61 s, refreshed in the last minute
        assert idp.grants == [
            ("rcm-followup:s3cret", {"grant_type": "client_credentials", "scope": "rcm"})
        ]
        me._until = 0  # the token's time is up
        assert await me.token() == "idp-token-2"
    finally:
        idp.server.shutdown()
        idp.server.server_close()


async def test_an_unreachable_identity_provider_is_a_credentials_error(settings):
    me = identity(settings, client_id="c", client_secret="s", token_url="http://127.0.0.1:9/token")
    with pytest.raises(ServiceCredentialsError, match="ConnectError"):
        await me.token()


def test_requires_names_known_roles():
    with pytest.raises(ValueError, match="name the roles"):
        requires()
    with pytest.raises(ValueError, match="unknown roles"):
        requires("biller", "root")


async def test_requires_checks_the_token_with_the_apps_runtime_authenticator(tmp_path):
    key = dev_key(tmp_path, "service-access")
    authn = Authenticator(LocalKeys(key), issuer="urn:rcm:development", audience="rcm")
    app = FastAPI()
    app.state.rcm_runtime = SimpleNamespace(auth=authn)

    @app.get("/balances")
    async def balances(p: Principal = requires("biller", "supervisor")):
        return {"user": p.user_id}

    def token(role: str) -> str:
        import jwt

        now = int(time.time())
        claims = {
            "iss": "urn:rcm:development",
            "aud": "rcm",
            "sub": f"{role}-1",
            "iat": now,
            "exp": now + 60,
            "jti": f"j-{role}",
            "roles": [role],
            "sites": ["north"],
        }
        return jwt.encode(claims, key.private, algorithm="RS256", headers={"kid": key.kid})

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        assert (await client.get("/balances")).status_code == 401
        bad = {"authorization": "Bearer not-a-token"}
        assert (await client.get("/balances", headers=bad)).status_code == 401
        coder = {"authorization": f"Bearer {token('coder')}"}
        assert (await client.get("/balances", headers=coder)).status_code == 403
        biller = {"authorization": f"Bearer {token('biller')}"}
        r = await client.get("/balances", headers=biller)
        assert r.status_code == 200 and r.json() == {"user": "biller-1"}
