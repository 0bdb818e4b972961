"""What every app gets from shared.http.harden: an access log without PHI, a body limit, 422/500
bodies that never echo input, and no API docs in production."""

from __future__ import annotations

import json
import logging
import time

import httpx
import jwt
import pytest
from fastapi import APIRouter, FastAPI, Request
from pydantic import BaseModel, Field

from shared.auth import Authenticator, LocalKeys, Principal, dev_key
from shared.http import HttpLogFormatter, harden
from shared.settings import (
    AuthSettings,
    ConnectionSettings,
    HttpSettings,
    KafkaSecuritySettings,
    RuntimeSettings,
    ServiceSettings,
)

MARKERS = ("ZEBEDEE", "QUIXOTE", "1931-04-05", "MBR998877")  # marker PHI


class Patient(BaseModel):
    name: str = Field(max_length=3)
    birth_date: str = Field(pattern=r"^\d{8}$")
    member_id: int


def _app(tmp_path, env="development", limit=4096) -> tuple[FastAPI, str]:
    key = dev_key(tmp_path, "http-tests")
    authn = Authenticator(LocalKeys(key), issuer="urn:rcm:development", audience="rcm")
    app = FastAPI(title="probe")

    @app.get("/claims/{claim_id}")
    async def claim(claim_id: str, q: str | None = None, p: Principal = authn.require()):
        return {"claim_id": claim_id}

    work = APIRouter(prefix="/work")

    @work.get("/items/{item_id}")
    async def item(item_id: int):
        return {"item_id": item_id}

    app.include_router(work)

    @app.post("/patients")
    async def patients(body: Patient):
        return {"ok": True}

    @app.post("/notes")
    async def notes(request: Request):
        return {"bytes": len(await request.body())}

    @app.get("/boom/{member_id}")
    async def boom(member_id: str):
        raise ValueError(f"cannot parse member {member_id} for ZEBEDEE QUIXOTE")

    settings = ServiceSettings(
        service_name="probe",
        runtime=RuntimeSettings(env=env, home=tmp_path),
        connections=ConnectionSettings(kafka_bootstrap_servers="k:9093", database_url="pg://db"),
        kafka=KafkaSecuritySettings(security_protocol="SSL"),  # production refuses PLAINTEXT
        auth=AuthSettings(token_issuer="https://idp.example/realms/rcm", token_audience="rcm-api"),
        http=HttpSettings(max_body_bytes=limit),
    )
    assert harden(harden(app, settings), settings) is app  # idempotent
    now = int(time.time())
    token = jwt.encode(
        {
            "iss": "urn:rcm:development",
            "aud": "rcm",
            "sub": "coder-7",
            "iat": now,
            "exp": now + 60,
            "jti": "j",
            "roles": ["coder"],
            "sites": ["*"],
        },
        key.private,
        algorithm="RS256",
        headers={"kid": key.kid},
    )
    return app, token


class Lines(logging.Handler):
    def __init__(self):
        super().__init__()
        self.setFormatter(HttpLogFormatter("probe"))
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(self.format(record))


@pytest.fixture
def log_lines():
    handler = Lines()
    logger = logging.getLogger("rcm.http")
    logger.addHandler(handler)
    yield handler.lines
    logger.removeHandler(handler)


async def call(app, method, path, **kw) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.request(method, path, **kw)


def no_markers(text: str) -> bool:
    return not any(m in text for m in MARKERS)


async def test_the_access_log_has_the_route_template_and_caller_never_the_path(tmp_path, log_lines):
    app, token = _app(tmp_path)
    r = await call(
        app,
        "GET",
        "/claims/MBR998877",
        params={"q": "ZEBEDEE"},
        headers={"authorization": f"Bearer {token}", "x-request-id": "req-42"},
    )
    assert r.status_code == 200 and r.headers["x-request-id"] == "req-42"
    await call(app, "GET", "/claims/MBR998877")  # no token: 401, still logged
    await call(app, "GET", "/nowhere/ZEBEDEE")
    await call(app, "GET", "/work/items/1931")
    await call(app, "GET", "/openapi.json")
    lines = [json.loads(line) for line in log_lines]
    assert [(x["route"], x["status"], x["user"]) for x in lines] == [
        ("/claims/{claim_id}", 200, "coder-7"),
        ("/claims/{claim_id}", 401, None),
        ("<unmatched>", 404, None),
        ("/work/items/{item_id}", 200, None),
        ("/openapi.json", 200, None),
    ]
    assert lines[0]["request_id"] == "req-42" and lines[0]["method"] == "GET"
    assert lines[0]["duration_ms"] >= 0 and lines[1]["request_id"]  # made up when not given
    assert all(no_markers(line) for line in log_lines)


async def test_422_names_each_field_and_what_was_expected_never_the_input(tmp_path):
    app, _ = _app(tmp_path)
    r = await call(
        app,
        "POST",
        "/patients",
        json={"name": "ZEBEDEE QUIXOTE", "birth_date": "1931-04-05", "member_id": "MBR998877"},
    )
    assert r.status_code == 422 and no_markers(r.text)
    detail = r.json()["detail"]
    assert {d["field"] for d in detail} == {"body.name", "body.birth_date", "body.member_id"}
    assert all(d["message"] for d in detail)
    broken = await call(
        app,
        "POST",
        "/patients",
        content=b'{"name": "ZEBEDEE',
        headers={"content-type": "application/json"},
    )
    assert broken.status_code == 422 and no_markers(broken.text)


async def test_500_answers_an_error_id_and_logs_one_line_without_values(tmp_path, log_lines):
    app, _ = _app(tmp_path)
    r = await call(app, "GET", "/boom/MBR998877")
    assert r.status_code == 500 and no_markers(r.text)
    error_id = r.json()["error_id"]
    (line,) = [json.loads(x) for x in log_lines if "error" in x]
    assert line["error_id"] == error_id and line["error_type"] == "ValueError"
    assert line["route"] == "/boom/{member_id}" and line["where"][-1].endswith(" boom")
    assert all(no_markers(x) for x in log_lines)


async def test_a_body_over_the_limit_is_refused_413_before_it_is_read(tmp_path):
    app, _ = _app(tmp_path, limit=4096)
    small = await call(app, "POST", "/notes", content=b"x" * 4096)
    assert small.status_code == 200 and small.json() == {"bytes": 4096}
    declared = await call(app, "POST", "/notes", content=b"ZEBEDEE" * 1000)
    assert declared.status_code == 413 and "4096-byte limit" in declared.json()["detail"]

    async def chunks():  # no Content-Length: counted as it arrives
        for _ in range(10):
            yield b"QUIXOTE " * 100

    streamed = await call(app, "POST", "/notes", content=chunks())
    assert streamed.status_code == 413 and no_markers(streamed.text)


async def test_api_docs_are_off_in_production(tmp_path):
    dev, _ = _app(tmp_path / "dev")
    assert (await call(dev, "GET", "/openapi.json")).status_code == 200
    prod, _ = _app(tmp_path / "prod", env="production")
    for path in ("/docs", "/openapi.json", "/redoc"):
        assert (await call(prod, "GET", path)).status_code == 404
