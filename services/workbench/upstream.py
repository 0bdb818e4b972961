"""Calls to the other services' HTTP APIs, as the signed-in user (their access token as bearer).

One pooled client for all of them: ``services.workbench.client.AiohttpClient`` when serving,
an ``httpx.AsyncClient`` (the same interface) in tests that play the services. A failure becomes ``UpstreamError`` with the
status the page should answer and a message that is safe to show: the service's name and
status, or the ``detail`` text the service wrote (the services never echo input values).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from services.workbench.client import AiohttpClient

SERVICES = ("intake", "coding", "billing", "payments", "followup")


class UpstreamError(Exception):
    def __init__(self, service: str, status: int, detail: Any = None):
        super().__init__(f"{service}: HTTP {status}")
        self.service = service
        self.status = status
        self.detail = detail

    @property
    def missing_endpoint(self) -> bool:
        """404 from the router itself (no such route), not from a lookup that found nothing."""
        return self.status in (404, 405) and self.detail in ("Not Found", "Method Not Allowed")

    @property
    def message(self) -> str:
        if self.status == 0:
            return f"{self.service} is unavailable"
        if isinstance(self.detail, str):
            return self.detail
        if isinstance(self.detail, dict) and isinstance(self.detail.get("message"), str):
            return self.detail["message"]
        if isinstance(self.detail, list):  # FastAPI 422: [{field, message}]
            parts = [
                f"{d.get('field', '')}: {d.get('message', '')}".strip(": ")
                for d in self.detail[:3]
                if isinstance(d, dict)
            ]
            if parts:
                return "; ".join(parts)
        return f"{self.service} answered HTTP {self.status}"


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any  # parsed JSON, or None (204)


class Upstream:
    def __init__(self, urls: dict[str, str | None], http: httpx.AsyncClient | AiohttpClient):
        self.urls = {k: v.rstrip("/") for k, v in urls.items() if v}
        self.http = http

    def configured(self, service: str) -> bool:
        return service in self.urls

    async def call(
        self,
        service: str,
        method: str,
        path: str,
        token: str,
        *,
        params: dict | None = None,
        json: Any = None,
        timeout: float | None = None,
        request_id: str | None = None,
    ) -> Reply:
        base = self.urls.get(service)
        if base is None:
            raise UpstreamError(
                service, 503, f"{service} is not configured (RCM_WORKBENCH_{service.upper()}_URL)"
            )
        headers = {"authorization": f"Bearer {token}", "accept": "application/json"}
        if request_id:
            headers["x-request-id"] = request_id
        clean = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        for attempt in (1, 2):
            try:
                r = await self.http.request(
                    method,
                    base + path,
                    params=clean,
                    json=json,
                    headers=headers,
                    timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
                )
                break
            except httpx.RemoteProtocolError as e:
                # A kept-alive connection the server closed as the request went out: a read
                # is sent again on a new connection (a change is not: it may have been done).
                if method != "GET" or attempt == 2:
                    raise UpstreamError(service, 0, type(e).__name__) from e
            except httpx.HTTPError as e:
                raise UpstreamError(service, 0, type(e).__name__) from e
        if r.status_code == 204:
            return Reply(204, None)
        try:
            body = r.json()
        except ValueError:
            body = None
        if r.status_code >= 400:
            detail = body.get("detail") if isinstance(body, dict) else None
            raise UpstreamError(service, r.status_code, detail)
        return Reply(r.status_code, body)

    async def get(self, service: str, path: str, token: str, **kw) -> Any:
        return (await self.call(service, "GET", path, token, **kw)).body

    async def post(self, service: str, path: str, token: str, **kw) -> Reply:
        return await self.call(service, "POST", path, token, **kw)
