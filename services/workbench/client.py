"""The workbench's HTTP client for the services' APIs: aiohttp underneath, httpx's vocabulary above.

Every page makes one to five calls to the services, and httpx spent about 2 ms of the
workbench's CPU on each (1.6-4.6 ms measured alone: 1,000 GETs to a local server, 8-64 in
flight), aiohttp 0.12-0.16 ms on the same calls (docs/workbench.md, Speed). ``Upstream`` asks
for ``request(...)`` and reads ``status_code`` and ``json()``, and knows httpx's errors;
``AiohttpClient`` answers in those terms, so ``Upstream``'s behaviour (timeouts, the one
retry of a read on a closing kept-alive connection, safe error names) is the same with
either client, and tests that play the services with an ``httpx.MockTransport`` keep doing so.
"""

from __future__ import annotations

import json as jsonlib
from typing import Any

import aiohttp
import httpx


class Answer:
    """What ``Upstream`` reads of a response."""

    __slots__ = ("status_code", "content")

    def __init__(self, status_code: int, content: bytes):
        self.status_code = status_code
        self.content = content

    def json(self) -> Any:
        return jsonlib.loads(self.content)  # ValueError when it is not JSON, as httpx's


def _query(params: dict[str, Any] | None) -> list[tuple[str, str]]:
    """Query parameters encoded as httpx encodes them (booleans as true/false, lists repeated)."""
    out: list[tuple[str, str]] = []
    for key, value in (params or {}).items():
        for v in value if isinstance(value, list | tuple) else (value,):
            out.append((key, ("true" if v else "false") if isinstance(v, bool) else str(v)))
    return out


class AiohttpClient:
    """One pooled aiohttp session for every service; made on first use (it needs the running
    event loop). Idle connections are dropped after ``keepalive_seconds``, before the services'
    servers drop them (uvicorn: 5 s)."""

    def __init__(self, timeout: float, keepalive_seconds: float, max_connections: int = 200):
        self.timeout = timeout
        self.keepalive_seconds = keepalive_seconds
        self.max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self.max_connections, keepalive_timeout=self.keepalive_seconds
                ),
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                # full URLs are never logged; cookies are the browser's business, not ours
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
        timeout: Any = None,
    ) -> Answer:
        """One request; httpx's exceptions for failures (RemoteProtocolError: the connection
        closed before an answer; ConnectError, ReadTimeout, ReadError)."""
        seconds = timeout if isinstance(timeout, int | float) else self.timeout
        try:
            async with self._open().request(
                method,
                url,
                params=_query(params),
                json=json,
                headers=headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=seconds),
            ) as r:
                return Answer(r.status, await r.read())
        except aiohttp.ServerDisconnectedError as e:
            raise httpx.RemoteProtocolError("server disconnected without an answer") from e
        except aiohttp.ClientConnectorError as e:
            raise httpx.ConnectError("cannot connect") from e
        except TimeoutError as e:  # asyncio.TimeoutError too (one class since 3.11)
            raise httpx.ReadTimeout("no answer in time") from e
        except (aiohttp.ClientError, OSError) as e:
            raise httpx.ReadError(type(e).__name__) from e

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
