"""Calls to the services: a read that met a connection the server was closing is sent again
once; a change never is (it may have been done)."""

from __future__ import annotations

import httpx
import pytest

from services.workbench.upstream import Upstream, UpstreamError


def _upstream(closing_first: int) -> tuple[Upstream, list[str]]:
    seen: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.method)
        if len(seen) <= closing_first:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        return httpx.Response(200, json={"north": {"queued": 1}})

    http = httpx.AsyncClient(transport=httpx.MockTransport(handle))
    return Upstream({"coding": "http://coding"}, http), seen


async def test_a_read_on_a_closing_connection_is_sent_again_once():
    up, seen = _upstream(closing_first=1)
    assert await up.get("coding", "/work/depth", "t") == {"north": {"queued": 1}}
    assert seen == ["GET", "GET"]
    up, seen = _upstream(closing_first=2)
    with pytest.raises(UpstreamError) as e:
        await up.get("coding", "/work/depth", "t")
    assert (e.value.status, e.value.detail, seen) == (0, "RemoteProtocolError", ["GET", "GET"])


async def test_a_change_is_never_sent_twice():
    up, seen = _upstream(closing_first=1)
    with pytest.raises(UpstreamError) as e:
        await up.post("coding", "/work/next", "t")
    assert e.value.status == 0 and seen == ["POST"]
