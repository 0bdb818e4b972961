"""The audit chain on a real PostgreSQL: appends from many writers, `rcm audit verify` and
`rcm audit query`, and the database refusing changes (and the chain exposing them when a
superuser makes them anyway)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import asyncpg
import httpx
import jwt
import pytest
from fastapi import FastAPI, HTTPException, Request

from rcm.cli.main import main
from shared import audit, db
from shared.audit import Actor, AuditEvent
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


CODER = Actor("coder-7", "coder", "10.0.0.8", "req-1")


def read(n: int, account: str = "acct-1") -> AuditEvent:
    return AuditEvent("read", "work_item", [str(n)], account_key=account, site_id="north-clinic")


async def verify(conn, schema) -> audit.ChainReport:
    return await audit.verify_chain(conn, schema)


async def test_records_chain_in_order_and_verify(chain, capsys):
    conn, schema, _ = chain
    assert (await verify(conn, schema)).ok  # an empty chain is intact
    async with conn.transaction():
        await audit.append(conn, schema, CODER, [read(1), read(2)])
    await audit.append(conn, schema, CODER, [AuditEvent("job", "statement_run", [])])
    report = await verify(conn, schema)
    assert (report.ok, report.records, report.head_seq) == (True, 3, 3)
    rows = await conn.fetch(f"SELECT * FROM {schema}.audit_record ORDER BY seq")
    assert rows[0]["prev_hash"] == audit.genesis(schema)
    assert [r["prev_hash"] for r in rows[1:]] == [r["hash"] for r in rows[:-1]]
    assert list(rows[0]["resource_ids"]) == ["1"] and list(rows[2]["resource_ids"]) == []
    code, out = await _verify_cli_all(capsys)
    assert code == 0 and f"{schema}: 3 records, intact; head 3 {rows[2]['hash']}" in out
    assert (rows[0]["actor"], rows[0]["client_address"], rows[0]["request_id"]) == (
        "coder-7",
        "10.0.0.8",
        "req-1",
    )


async def test_a_rolled_back_read_leaves_no_record_and_no_gap(chain):
    conn, schema, _ = chain
    with pytest.raises(RuntimeError):
        async with conn.transaction():
            await audit.append(conn, schema, CODER, [read(1)])
            raise RuntimeError("the read failed")
    await audit.append(conn, schema, CODER, [read(2)])
    report = await verify(conn, schema)
    assert report.ok and report.records == 1


async def test_concurrent_writers_never_fork_the_chain(chain):
    _, schema, dsn = chain
    pool = await db.create_pool(dsn, min_size=8, max_size=8)
    try:

        async def writer(w: int) -> None:
            for i in range(25):
                async with pool.acquire() as c, c.transaction():
                    await audit.append(c, schema, Actor(f"user-{w}", "biller"), [read(i)])

        await asyncio.gather(*(writer(w) for w in range(8)))
        async with pool.acquire() as c:
            report = await verify(c, schema)
    finally:
        await pool.close()
    assert report.ok and report.records == 200 and report.head_seq == 200


async def test_the_database_refuses_update_delete_and_truncate_even_to_a_superuser(chain):
    conn, schema, _ = chain
    await audit.append(conn, schema, CODER, [read(1), read(2)])
    for statement in (
        f"UPDATE {schema}.audit_record SET actor = 'someone-else' WHERE seq = 1",
        f"DELETE FROM {schema}.audit_record WHERE seq = 2",
        f"TRUNCATE {schema}.audit_record",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await conn.execute(statement)
    assert (await verify(conn, schema)).ok


async def test_the_owning_role_has_insert_and_select_only(chain, stack_endpoints):
    conn, _, dsn = chain
    role = f"svc_{uuid.uuid4().hex[:8]}"
    schema = f"owned_{role}"
    password = uuid.uuid4().hex  # the local stack authenticates every login (scram)
    await conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
    await conn.execute(f"CREATE SCHEMA {schema} AUTHORIZATION {role}")
    database = await conn.fetchval("SELECT current_database()")
    # db.migrate says CREATE SCHEMA IF NOT EXISTS, which needs the right even when it exists.
    await conn.execute(f'GRANT CONNECT, CREATE ON DATABASE "{database}" TO {role}')
    owner = await asyncpg.connect(dsn, user=role, password=password)
    try:
        await db.migrate(owner, schema, None)  # migrations run as the schema's owner
        await audit.append(owner, schema, CODER, [read(1)])
        assert (await verify(owner, schema)).records == 1
        for statement in (
            f"UPDATE {schema}.audit_record SET actor = 'x'",
            f"DELETE FROM {schema}.audit_record",
            f"TRUNCATE {schema}.audit_record",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await owner.execute(statement)
        # Granting itself the privilege back still meets the trigger.
        await owner.execute(f"GRANT UPDATE ON {schema}.audit_record TO {role}")
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await owner.execute(f"UPDATE {schema}.audit_record SET actor = 'x'")
    finally:
        await owner.close()
        await conn.execute(f"DROP SCHEMA {schema} CASCADE")
        await conn.execute(f'REVOKE CONNECT, CREATE ON DATABASE "{database}" FROM {role}')
        await conn.execute(f"DROP ROLE {role}")


async def _tamper(conn, schema, *statements) -> None:
    """What a superuser can still do: disable the trigger, change records, enable it again."""
    async with conn.transaction():
        await conn.execute(f"ALTER TABLE {schema}.audit_record DISABLE TRIGGER USER")
        for s in statements:
            await conn.execute(s)
        await conn.execute(f"ALTER TABLE {schema}.audit_record ENABLE TRIGGER USER")


async def _five(conn, schema) -> None:
    await audit.append(conn, schema, CODER, [read(i) for i in range(1, 6)])


async def rcm(*argv: str) -> int:
    """The command line, off the event loop (it runs its own)."""
    return await asyncio.to_thread(main, list(argv))


async def _verify_cli_all(capsys) -> tuple[int, str]:
    code = await rcm("audit", "verify")  # every schema's chain
    return code, capsys.readouterr().out


async def _verify_cli(capsys, schema) -> tuple[int, str]:
    code = await rcm("audit", "verify", "--schema", schema)
    return code, capsys.readouterr().out


async def test_verify_names_a_changed_record(chain, capsys):
    conn, schema, _ = chain
    await _five(conn, schema)
    assert (await _verify_cli(capsys, schema))[0] == 0
    await _tamper(conn, schema, f"UPDATE {schema}.audit_record SET actor = 'nobody' WHERE seq = 3")
    code, out = await _verify_cli(capsys, schema)
    assert code == 1 and "record 3 was changed" in out


async def test_verify_names_a_record_rewritten_with_a_fresh_hash(chain):
    conn, schema, _ = chain
    await _five(conn, schema)
    row = dict(await conn.fetchrow(f"SELECT * FROM {schema}.audit_record WHERE seq = 2"))
    row["actor"] = "nobody"
    forged = audit.record_hash(row)
    await _tamper(
        conn,
        schema,
        f"UPDATE {schema}.audit_record SET actor = 'nobody', hash = '{forged}' WHERE seq = 2",
    )
    report = await verify(conn, schema)
    assert not report.ok and report.seq == 2 and "record 2 was changed, replaced" in report.problem


async def test_verify_names_a_deleted_record_and_a_deleted_tail(chain):
    conn, schema, _ = chain
    await _five(conn, schema)
    await _tamper(conn, schema, f"DELETE FROM {schema}.audit_record WHERE seq = 4")
    report = await verify(conn, schema)
    assert (report.seq, report.problem) == (4, "record 4 is missing (deleted)")

    # The last record goes too: the head still counts five.
    await _tamper(conn, schema, f"DELETE FROM {schema}.audit_record WHERE seq = 5")
    report = await verify(conn, schema)
    assert report.seq == 4 and "records 4 to 5 are missing" in report.problem


async def test_verify_names_reordered_records(chain, capsys):
    conn, schema, _ = chain
    await _five(conn, schema)
    await _tamper(
        conn,
        schema,
        f"UPDATE {schema}.audit_record SET seq = seq + 100 WHERE seq IN (2, 3)",
        f"UPDATE {schema}.audit_record SET seq = 3 WHERE seq = 102",
        f"UPDATE {schema}.audit_record SET seq = 2 WHERE seq = 103",
    )
    code, out = await _verify_cli(capsys, schema)
    assert code == 1 and "chain broken at record 2" in out


async def test_query_by_user_account_and_time_is_itself_audited(chain, capsys):
    conn, schema, _ = chain
    await audit.append(conn, schema, CODER, [read(1, "acct-1"), read(2, "acct-2")])
    await audit.append(conn, schema, Actor("biller-2", "biller"), [read(3, "acct-1")])
    assert await rcm("audit", "query", "--user", "coder-7", "--schema", schema) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["resource_ids"] for x in lines] == [["1"], ["2"]]
    assert await rcm("audit", "query", "--account", "acct-1", "--schema", schema) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [(x["actor"], x["resource_ids"]) for x in lines] == [
        ("coder-7", ["1"]),
        ("biller-2", ["3"]),
    ]
    assert await rcm("audit", "query", "--since", "2000-01-01", "--schema", schema) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert len(lines) == 5  # three reads and the two queries before this one
    looked = [x for x in lines if x["resource_type"] == "audit_record"]
    assert [x["resource_ids"] for x in looked] == [["user=coder-7"], ["account=acct-1"]]
    assert all(x["role"] == "auditor" and x["actor"].startswith("cli:") for x in looked)
    assert (await verify(conn, schema)).ok
    assert await rcm("audit", "query", "--schema", schema) == 2  # a filter is required


async def test_a_phi_read_through_the_api_is_recorded_with_its_caller_and_request(chain, tmp_path):
    _, schema, dsn = chain
    key = dev_key(tmp_path, "audit-api")
    authn = Authenticator(LocalKeys(key), issuer="urn:rcm:development", audience="rcm")
    pool = await db.create_pool(dsn, max_size=2)
    app = FastAPI()

    @app.get("/accounts/{account}/balance")
    async def balance(account: str, request: Request, p: Principal = authn.require("biller")):
        check_site(p, "north-clinic")
        async with pool.acquire() as conn, conn.transaction():
            value = await conn.fetchval("SELECT 42.50::numeric(12,2)")  # the PHI read
            if account == "fails":
                raise HTTPException(404, "no such account")
            await audit.record(
                conn,
                schema,
                request,
                p,
                "read",
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
            "jti": "j-3",
            "roles": ["biller"],
            "sites": ["north-clinic"],
        },
        key.private,
        algorithm="RS256",
        headers={"kid": key.kid},
    )
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            headers = {"authorization": f"Bearer {token}", "x-request-id": "req-audit-1"}
            r = await client.get("/accounts/acct-9/balance", headers=headers)
            assert r.status_code == 200 and r.json() == {"balance": "42.50"}
            assert (await client.get("/accounts/fails/balance", headers=headers)).status_code == 404
        async with pool.acquire() as conn:
            rows = await audit.query(conn, schema, account="acct-9")
            assert (await audit.verify_chain(conn, schema)).records == 1  # no record for the 404
    finally:
        await pool.close()
    (row,) = rows
    assert (row["actor"], row["role"], row["action"], row["resource_type"]) == (
        "biller-3",
        "biller",
        "read",
        "balance",
    )
    assert (row["client_address"], row["request_id"], row["site_id"]) == (
        "127.0.0.1",
        "req-audit-1",
        "north-clinic",
    )
