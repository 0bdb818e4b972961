"""The audit appender (group commit of PHI reads' records) on a real PostgreSQL: many
requests, a second appender and another process appending at once make one chain that
`rcm audit verify` accepts; a read's transaction no longer holds the chain's head; a batch
that fails fails its requests, and an API read then answers no data."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time
import uuid
from collections import Counter

import asyncpg
import httpx
import jwt
import pytest
from fastapi import FastAPI, Request

from rcm.cli.main import main
from shared import audit, db
from shared.audit import Actor, AuditAppender, AuditEvent, AuditUnavailable
from shared.auth import Authenticator, LocalKeys, Principal, check_site, dev_key
from shared.http import harden
from shared.settings import RuntimeSettings, ServiceSettings

pytestmark = pytest.mark.integration


@pytest.fixture
async def chain(stack_endpoints, monkeypatch):
    """A fresh migrated schema; the CLI pointed at the same database."""
    dsn = stack_endpoints["postgres"]
    monkeypatch.setenv("DATABASE_URL", dsn)
    schema = f"audit_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(dsn)
    await db.migrate(conn, schema, None)
    yield conn, schema, dsn
    await conn.execute(f"DROP SCHEMA {schema} CASCADE")
    await conn.close()


def read(n: int) -> AuditEvent:
    return AuditEvent("read", "work_item", [str(n)], account_key=f"A{n}", site_id="north-clinic")


# Another process appending to the same chain: half through its own appender, half as a
# change's in-transaction record, each with its own request id.
_OTHER_PROCESS = textwrap.dedent(
    """
    import asyncio, sys
    import asyncpg
    from shared import audit
    from shared.audit import Actor, AuditAppender, AuditEvent

    dsn, schema, n = sys.argv[1], sys.argv[2], int(sys.argv[3])

    async def go():
        appender = AuditAppender(schema, lambda: asyncpg.connect(dsn))
        pool = await asyncpg.create_pool(dsn, min_size=4, max_size=4)
        ev = lambda i: AuditEvent("read", "claim", [str(i)])

        async def via_appender(i):
            await appender.append(Actor("proc-2", "biller", None, f"p2-a-{i}"), [ev(i)])

        async def in_transaction(i):
            async with pool.acquire() as conn, conn.transaction():
                await audit.append(conn, schema, Actor("proc-2", "biller", None, f"p2-t-{i}"), [ev(i)])

        await asyncio.gather(
            *(via_appender(i) for i in range(n)), *(in_transaction(i) for i in range(n))
        )
        await appender.close()
        await pool.close()

    asyncio.run(go())
    """
)


async def test_many_requests_two_appenders_and_another_process_make_one_valid_chain(chain, capsys):
    conn, schema, dsn = chain
    first = AuditAppender(schema, lambda: asyncpg.connect(dsn))
    second = AuditAppender(schema, lambda: asyncpg.connect(dsn))
    other = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _OTHER_PROCESS, dsn, schema, "100", stderr=subprocess.PIPE
    )

    async def request(appender: AuditAppender, name: str, i: int) -> None:
        # one request, two records (a list's rows): they stay next to each other
        await appender.append(Actor(name, "coder", "10.0.0.8", f"{name}-{i}"), [read(i), read(-i)])

    await asyncio.gather(
        *(request(first, "one", i) for i in range(300)),
        *(request(second, "two", i) for i in range(300)),
    )
    _, err = await other.communicate()
    assert other.returncode == 0, err.decode()[-2000:]
    await first.close()
    await second.close()

    report = await audit.verify_chain(conn, schema)
    assert (report.ok, report.records) == (True, 2 * 600 + 200), report.problem
    rows = await conn.fetch(f"SELECT seq, request_id FROM {schema}.audit_record ORDER BY seq")
    per_request = Counter(r["request_id"] for r in rows)
    assert len(per_request) == 600 + 200
    assert {n for k, n in per_request.items() if k.startswith(("one-", "two-"))} == {2}
    by_seq = [r["request_id"] for r in rows]
    for rid in ("one-17", "two-255"):
        i = by_seq.index(rid)
        assert by_seq[i + 1] == rid  # one request's records are one after the other
    # Group commit happened: 300 concurrent requests took far fewer transactions.
    assert 1 <= first.batches < 100 and 1 <= second.batches < 100
    # the command line, off the event loop (it runs its own)
    assert await asyncio.to_thread(main, ["audit", "verify", "--schema", schema]) == 0
    assert f"{schema}: 1400 records, intact" in capsys.readouterr().out


async def test_a_reads_transaction_does_not_hold_the_chain_head(chain):
    conn, schema, dsn = chain
    appender = audit.start_appender(schema, lambda: asyncpg.connect(dsn))
    writer = await asyncpg.connect(dsn)
    actor = Actor("coder-7", "coder")
    try:
        async with conn.transaction():  # a read's transaction, still open
            await audit.read_events(conn, schema, actor, [read(1)])
            # the record is committed already: another session sees it
            assert await writer.fetchval(f"SELECT count(*) FROM {schema}.audit_record") == 1
            # and a change elsewhere appends without waiting for this transaction to end
            await writer.execute("SET lock_timeout = '2s'")
            async with writer.transaction():
                await audit.append(writer, schema, Actor("biller-1", "biller"), [read(2)])
    finally:
        await audit.stop_appender(appender)
        await writer.close()
    report = await audit.verify_chain(conn, schema)
    assert (report.ok, report.records) == (True, 2)


async def test_a_failed_batch_fails_its_requests_and_the_next_batch_goes_on(chain):
    conn, schema, dsn = chain
    appender = AuditAppender(
        schema, lambda: asyncpg.connect(dsn, server_settings={"lock_timeout": "300ms"})
    )
    await appender.append(Actor("a", "coder"), [read(1)])
    # A server that dropped the appender's connection: the next batch opens another.
    pid = await appender._conn.fetchval("SELECT pg_backend_pid()")
    await conn.execute("SELECT pg_terminate_backend($1)", pid)
    await asyncio.sleep(0.2)
    await appender.append(Actor("b", "coder"), [read(2)])
    # A batch that cannot commit (here: the head stays locked past the lock timeout) fails
    # every request in it; none of its records is in the chain.
    async with conn.transaction():
        await conn.execute(f"SELECT 1 FROM {schema}.audit_head WHERE id FOR UPDATE")
        got = await asyncio.gather(
            *(appender.append(Actor("c", "coder", None, f"c-{i}"), [read(i)]) for i in range(5)),
            return_exceptions=True,
        )
    assert all(isinstance(g, AuditUnavailable) for g in got), got
    await appender.append(Actor("d", "coder"), [read(9)])
    await appender.close()
    with pytest.raises(AuditUnavailable):  # closed: refuses, never drops a record silently
        await appender.append(Actor("e", "coder"), [read(10)])
    report = await audit.verify_chain(conn, schema)
    rows = await conn.fetch(f"SELECT actor FROM {schema}.audit_record ORDER BY seq")
    assert report.ok and [r["actor"] for r in rows] == ["a", "b", "d"]


async def test_an_api_read_whose_record_cannot_be_committed_answers_no_data(chain, tmp_path):
    conn, schema, dsn = chain
    key = dev_key(tmp_path, "audit-appender")
    authn = Authenticator(LocalKeys(key), issuer="urn:rcm:development", audience="rcm")
    pool = await db.create_pool(dsn, max_size=2)
    app = FastAPI()

    @app.get("/accounts/{account}/balance")
    async def balance(account: str, request: Request, p: Principal = authn.require("biller")):
        check_site(p, "north-clinic")
        async with pool.acquire() as c, c.transaction():
            value = await c.fetchval("SELECT 9876.54::numeric(12,2)")  # the PHI read
            await audit.read(
                c,
                schema,
                request,
                p,
                "balance",
                [account],
                account_key=account,
                site_id="north-clinic",
            )
        return {"balance": str(value)}

    harden(app, ServiceSettings(runtime=RuntimeSettings(home=tmp_path)))
    now = int(time.time())
    token = jwt.encode(
        {
            "iss": "urn:rcm:development",
            "aud": "rcm",
            "sub": "biller-3",
            "iat": now,
            "exp": now + 60,
            "jti": "j-appender",
            "roles": ["biller"],
            "sites": ["north-clinic"],
        },
        key.private,
        algorithm="RS256",
        headers={"kid": key.kid},
    )

    async def refused():
        raise OSError("connection refused")

    headers = {"authorization": f"Bearer {token}", "x-request-id": "req-appender-1"}
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            broken = audit.start_appender(schema, refused)
            try:
                r = await client.get("/accounts/acct-9/balance", headers=headers)
            finally:
                await audit.stop_appender(broken)
            assert r.status_code == 500 and "9876" not in r.text
            working = audit.start_appender(schema, lambda: asyncpg.connect(dsn))
            try:
                r = await client.get("/accounts/acct-9/balance", headers=headers)
            finally:
                await audit.stop_appender(working)
            assert r.status_code == 200 and r.json() == {"balance": "9876.54"}
    finally:
        await pool.close()
    (row,) = await audit.query(conn, schema, account="acct-9")
    assert (row["actor"], row["action"], row["request_id"]) == (
        "biller-3",
        "read",
        "req-appender-1",
    )
    assert working.batches == 1 and broken.batches == 0
