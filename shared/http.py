"""What every service's HTTP API shares: health, and the guard every app gets (``harden``).

``harden`` adds to an app, before it serves: a JSON access log (route template,
method, status, duration, caller, request id; never the raw path, query values
or bodies), a request body limit checked before the body is read (413), 422
bodies that name each field and what was expected but never echo the input,
a 500 that answers with an error id and logs one JSON line (the exception's
type and where it was raised, no message, no locals), and no ``/docs`` or
``/openapi.json`` in production.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import traceback
import uuid

import asyncpg
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.telemetry import TelemetryConfig
from opentelemetry import trace

from shared.logs import JsonFormatter
from shared.settings import ServiceSettings

# FastAPI's own telemetry keeps one server span per request, in the caller's trace. Off: its
# operation spans (four more spans per request, a fifth of a coder request's CPU), its metrics
# (ours are in shared.metrics) and its logs, which record validation errors with the
# request's values (PHI).
TELEMETRY: TelemetryConfig = {"operation_spans": False, "metrics": False, "logs": False}
# Its server span also records the raw path and query (``/encounters/<id>``, ``?q=<words of
# a note>``): ``RequestGuard`` overwrites them with the route template and a mark.
_PATH_ATTR, _QUERY_ATTR = "url.path", "url.query"

# The only fields an HTTP log line carries, all produced here: none comes from the request's
# path, query or body.
HTTP_LOG_KEYS = (
    "method",
    "route",
    "status",
    "duration_ms",
    "user",
    "request_id",
    "error_id",
    "error_type",
    "where",
)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
MAX_ERRORS = 20  # validation errors listed in one 422


def add_health(app: FastAPI, pool: asyncpg.Pool) -> None:
    """GET /health: 200 when the service can reach its database."""

    @app.get("/health")
    async def health():
        async with pool.acquire() as conn:
            await conn.fetchval("SELECT 1")
        return {"status": "ok"}


def harden(app: FastAPI, settings: ServiceSettings) -> FastAPI:
    """Add the access log, body limit, value-free 422/500 and production docs policy; idempotent."""
    if getattr(app.state, "rcm_hardened", False):
        return app
    app.state.rcm_hardened = True
    if settings.runtime.env == "production":
        _drop_docs(app)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_middleware(
        RequestGuard,
        logger=http_logger(settings.service_name),
        max_body_bytes=settings.http.max_body_bytes,
    )
    return app


def _drop_docs(app: FastAPI) -> None:
    paths = {app.openapi_url, app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url}
    app.router.routes[:] = [r for r in app.router.routes if getattr(r, "path", None) not in paths]
    app.openapi_url = app.docs_url = app.redoc_url = None


async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    """422 naming each field and what was expected; the input values are not repeated."""
    errors = exc.errors()
    detail = [
        {
            "field": ".".join(str(p) for p in err["loc"]),
            "message": _expected(err),
            "type": err["type"],
        }
        for err in errors[:MAX_ERRORS]
    ]
    body: dict = {"detail": detail}
    if len(errors) > MAX_ERRORS:
        body["more_errors"] = len(errors) - MAX_ERRORS
    return JSONResponse(status_code=422, content=body)


def _expected(err: dict) -> str:
    if err["type"] == "uuid_parsing":  # pydantic quotes the offending character
        return "Input should be a valid UUID"
    return str(err["msg"])


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int):
        super().__init__(413, f"request body larger than the {limit}-byte limit")


class HttpLogFormatter(JsonFormatter):
    """One JSON object per line, with only HTTP_LOG_KEYS besides the time, level and message."""

    def format(self, record: logging.LogRecord) -> str:
        out = self.head(record)
        fields = getattr(record, "fields", None) or {}
        out.update((k, fields[k]) for k in HTTP_LOG_KEYS if k in fields)
        return json.dumps(out, default=str)


def http_logger(service: str) -> logging.Logger:
    """``rcm.http``: access and error lines on stderr, always at INFO, formatted here."""
    logger = logging.getLogger("rcm.http")
    if not any(h.get_name() == "rcm.http.stderr" for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.set_name("rcm.http.stderr")
        handler.setFormatter(HttpLogFormatter(service))
        logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


def _where(e: BaseException, depth: int = 3) -> list[str]:
    """The innermost frames as "dir/file.py:line function": where, never what (no locals)."""
    frames = traceback.extract_tb(e.__traceback__)[-depth:]
    return [f"{'/'.join(f.filename.split('/')[-2:])}:{f.lineno} {f.name}" for f in frames]


class RequestGuard:
    """Pure ASGI middleware: request id, body limit, access log, and the last word on errors."""

    def __init__(self, app, *, logger: logging.Logger, max_body_bytes: int):
        self.app = app
        self.logger = logger
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        span = trace.get_current_span()  # the server span FastAPI's telemetry started
        _scrub_url(span, None)
        status = 500
        response_started = False
        fields: dict = {}

        async def send_with_id(message):
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                _scrub_url(span, scope)  # routed by now: the template is known
                message = {
                    **message,
                    "headers": [
                        *message.get("headers", []),
                        (b"x-request-id", request_id.encode()),
                    ],
                }
            await send(message)

        received = 0
        limit = self.max_body_bytes

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        try:
            declared = self._declared_length(scope)
            if declared is not None and declared > limit:
                raise BodyTooLarge(limit)
            await self.app(scope, limited_receive, send_with_id)
        except HTTPException as e:  # refused before the app saw the request
            if not response_started:
                await _send_json(send_with_id, e.status_code, {"detail": e.detail})
        except Exception as e:
            error_id = uuid.uuid4().hex
            fields = {"error_id": error_id, "error_type": type(e).__name__, "where": _where(e)}
            self._log(logging.ERROR, "unhandled error", scope, 500, started, fields)
            if not response_started:
                await _send_json(
                    send_with_id, 500, {"detail": "internal error", "error_id": error_id}
                )
            return
        if not (status == 200 and scope.get("path") == "/health"):
            self._log(logging.INFO, "request", scope, status, started, fields)

    def _declared_length(self, scope) -> int | None:
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    return int(value)
                except ValueError:
                    raise HTTPException(400, "Content-Length is not a number") from None
        return None

    def _log(self, level: int, msg: str, scope, status: int, started: float, extra: dict) -> None:
        state = scope.get("state") or {}
        principal = state.get("principal")
        method = scope.get("method", "")
        fields = {
            "method": method if method in _METHODS else "OTHER",
            # The template ("/claims/{claim_id}"), never the path: ids in a path may be PHI.
            "route": _route_template(scope),
            "status": status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            "user": getattr(principal, "user_id", None),
            "request_id": state.get("request_id"),
            **extra,
        }
        self.logger.log(level, msg, extra={"fields": fields})


def _scrub_url(span: trace.Span, scope) -> None:
    """The server span's path becomes the route template (``<pending>`` before routing) and
    its query a mark: either may carry PHI (an id in the path, a note's words in a search)."""
    attributes = getattr(span, "attributes", None) or {}
    if not span.is_recording() or _PATH_ATTR not in attributes:
        return
    span.set_attribute(_PATH_ATTR, _route_template(scope) if scope else "<pending>")
    if _QUERY_ATTR in attributes:
        span.set_attribute(_QUERY_ATTR, "<redacted>")


def _route_template(scope) -> str:
    route = scope.get("route")  # set by the router for API routes
    if route is None and "endpoint" in scope:  # a plain Starlette route (/docs, /openapi.json)
        routes = getattr(getattr(scope.get("app"), "router", None), "routes", ())
        route = next((r for r in routes if getattr(r, "endpoint", None) is scope["endpoint"]), None)
    return getattr(route, "path", None) or "<unmatched>"


async def _send_json(send, status: int, body: dict) -> None:
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})
