"""``Upstream`` over the aiohttp client (services/workbench/client.py), against real local HTTP
servers: what the services receive (bearer token, request id, query, JSON body), what a page
gets back (JSON, 204, the service's 4xx detail), and failures named as with httpx (a refused
connection, a timeout, a kept-alive connection the server closes: a read is sent again once,
a change never)."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest
from aiohttp import web

from services.workbench.client import AiohttpClient
from services.workbench.upstream import Upstream, UpstreamError


@pytest.fixture
async def service():
    """A service's API: echoes what it was sent; 404 with a detail, 204, and a slow route."""
    seen: list[dict] = []

    async def echo(request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else None
        seen.append(
            {
                "method": request.method,
                "path": request.path,
                "query": list(request.query.items()),
                "authorization": request.headers.get("authorization"),
                "request_id": request.headers.get("x-request-id"),
                "body": body,
            }
        )
        if request.path == "/missing":
            return web.json_response({"detail": "work item 7 not found"}, status=404)
        if request.path == "/empty":
            return web.Response(status=204)
        if request.path == "/slow":
            await asyncio.sleep(2)
        return web.json_response({"ok": True, "seen": len(seen)})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    client = AiohttpClient(timeout=5, keepalive_seconds=4)
    try:
        yield Upstream({"coding": f"http://127.0.0.1:{port}/"}, client), seen
    finally:
        await client.aclose()
        await runner.cleanup()


async def test_a_read_carries_the_token_request_id_and_query(service):
    up, seen = service
    got = await up.get(
        "coding",
        "/work/items",
        "tok-1",
        params={"site": "north-clinic", "mine": True, "limit": 50, "status": ["queued", "leased"]},
        request_id="rid-1",
    )
    assert got == {"ok": True, "seen": 1}
    assert seen[0]["authorization"] == "Bearer tok-1" and seen[0]["request_id"] == "rid-1"
    assert seen[0]["query"] == [
        ("site", "north-clinic"),
        ("mine", "true"),
        ("limit", "50"),
        ("status", "queued"),
        ("status", "leased"),
    ]


async def test_a_change_sends_json_and_answers_follow_the_service(service):
    up, seen = service
    reply = await up.post("coding", "/work/items/7/complete", "t", json={"codes": ["E11.9"]})
    assert reply.status == 200 and seen[0]["body"] == {"codes": ["E11.9"]}
    assert (await up.post("coding", "/empty", "t")).status == 204
    with pytest.raises(UpstreamError) as e:
        await up.get("coding", "/missing", "t")
    assert (e.value.status, e.value.message) == (404, "work item 7 not found")


async def test_a_slow_service_times_out_and_a_closed_port_is_unavailable(service):
    up, _ = service
    with pytest.raises(UpstreamError) as e:
        await up.get("coding", "/slow", "t", timeout=0.3)
    assert (e.value.status, e.value.detail) == (0, "ReadTimeout")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    down = Upstream({"billing": f"http://127.0.0.1:{closed}"}, AiohttpClient(5, 4))
    with pytest.raises(UpstreamError) as e:
        await down.get("billing", "/claims", "t")
    assert (e.value.status, e.value.detail, e.value.message) == (
        0,
        "ConnectError",
        "billing is unavailable",
    )
    await down.http.aclose()


async def _closing_server() -> tuple[asyncio.Server, list[str]]:
    """Answers the first request on a connection and keeps it open; closes the connection
    without answering the second (a server dropping an idle kept-alive connection)."""
    methods: list[str] = []

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for n in (1, 2):
            head = await reader.readuntil(b"\r\n\r\n")
            method = head.split(b" ", 1)[0].decode()
            length = next(
                (
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            await reader.readexactly(length)
            methods.append(method)
            if n == 2:
                writer.close()
                return
            body = json.dumps({"n": len(methods)}).encode()
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                + f"content-length: {len(body)}\r\n\r\n".encode()
                + body
            )
            await writer.drain()

    server = await asyncio.start_server(connection, "127.0.0.1", 0)
    return server, methods


async def test_a_read_on_a_closing_connection_is_sent_again_and_a_change_is_not():
    server, methods = await _closing_server()
    port = server.sockets[0].getsockname()[1]
    up = Upstream({"coding": f"http://127.0.0.1:{port}"}, AiohttpClient(5, 4))
    try:
        assert await up.get("coding", "/work/depth", "t") == {"n": 1}
        # the kept-alive connection is closed under the next read: it goes again, once
        assert await up.get("coding", "/work/depth", "t") == {"n": 3}
        assert methods == ["GET", "GET", "GET"]
        with pytest.raises(UpstreamError) as e:
            await up.post("coding", "/work/next", "t")
        assert (e.value.status, e.value.detail) == (0, "RemoteProtocolError")
        assert methods.count("POST") == 1
    finally:
        await up.http.aclose()
        server.close()
        await server.wait_closed()
