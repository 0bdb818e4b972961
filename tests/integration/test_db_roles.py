"""Least privilege in the database (issue 18, item 4).

The probe: every service connected as the superuser, so audit rows could be changed or deleted
and any service could read every schema. The local stack now makes, per service schema, a
login role ``rcm_<schema>`` and an owner role ``rcm_<schema>_owner``; migrations run as the
owner, which grants the login role its own tables only (the audit records: INSERT and SELECT).
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import asyncpg
import pytest

import services.billing
import services.payments
from rcm.localstack.postgres import Postgres
from shared import audit, db
from shared.settings import ConfigurationError

pytestmark = pytest.mark.integration


@pytest.fixture
async def roles(run_dir, stack_endpoints):
    if "rcm_" not in Path(run_dir, "postgres", "roles.json").read_text():
        pytest.skip("not the local stack")
    pg = Postgres(run_dir)
    for name, pkg in (("billing", services.billing), ("payments", services.payments)):
        dsns = pg.service_dsns(name)
        await db.migrate_as_owner(dsns["owner"], dsns["login"], name, Path(pkg.__file__).parent)
    return pg


async def test_roles_file_is_private_and_logins_need_passwords(roles, run_dir):
    mode = stat.S_IMODE(roles.roles_file.stat().st_mode)
    assert mode == 0o600
    services_ = json.loads(roles.roles_file.read_text())["services"]
    assert set(services_) >= {"intake", "coding", "billing", "payments", "followup"}
    # No trust: a wrong password is refused, over the socket as over TCP.
    bad = roles.role_dsn("postgres", "not-the-password")
    with pytest.raises(ConfigurationError, match="refused the login.*DATABASE_URL"):
        await db.connect(bad)
    tcp = f"postgresql://postgres:wrong@127.0.0.1:{roles.port}/rcm"
    with pytest.raises(ConfigurationError, match="refused the login"):
        await db.connect(tcp)


async def test_service_role_reads_only_its_own_schema(roles):
    conn = await asyncpg.connect(roles.service_dsns("billing")["login"])
    try:
        assert await conn.fetchval("SELECT count(*) >= 0 FROM billing.outbox")
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
            await conn.fetchval("SELECT count(*) FROM payments.outbox")
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
            await conn.execute("CREATE TABLE billing.mine (x int)")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CREATE SCHEMA elsewhere")
    finally:
        await conn.close()


async def test_service_role_appends_audit_but_cannot_change_or_unprotect_it(roles):
    conn = await asyncpg.connect(roles.service_dsns("payments")["login"])
    try:
        await audit.append(
            conn,
            "payments",
            audit.Actor("u-roles", "biller"),
            [audit.AuditEvent("read", "balance", ("C-ROLES-1",), site_id="S1")],
        )
        assert await conn.fetchval(
            "SELECT count(*) FROM payments.audit_record WHERE actor = 'u-roles'"
        )
        for sql in (
            "UPDATE payments.audit_record SET actor = 'x' WHERE actor = 'u-roles'",
            "DELETE FROM payments.audit_record WHERE actor = 'u-roles'",
            "TRUNCATE payments.audit_record",
            "ALTER TABLE payments.audit_record DISABLE TRIGGER audit_append_only",
            "DROP TRIGGER audit_append_only ON payments.audit_record",
            "DROP FUNCTION payments.audit_refuse_change() CASCADE",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(sql)
        report = await audit.verify_chain(conn, "payments")
        assert report.ok
    finally:
        await conn.close()


async def test_owner_role_owns_only_its_schema(roles):
    conn = await asyncpg.connect(roles.service_dsns("billing")["owner"])
    try:
        owner = await conn.fetchval(
            "SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'billing'"
        )
        assert owner == "rcm_billing_owner"
        assert not await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetchval("SELECT count(*) FROM payments.audit_record")
    finally:
        await conn.close()


async def test_postgres_tls_failures_are_one_line_naming_the_setting(roles, tmp_path):
    pw = roles._roles()["rcm_billing"]
    base = f"postgresql://rcm_billing:{pw}@127.0.0.1:{roles.port}/rcm"  # TLS is for TCP
    sep = "?"
    for query in (
        f"sslmode=verify-full&sslrootcert={tmp_path / 'missing-ca.pem'}",
        "sslmode=require",  # the local server speaks no TLS
    ):
        with pytest.raises(ConfigurationError) as e:
            await db.connect(f"{base}{sep}{query}", timeout=10)
        msg = str(e.value)
        assert "\n" not in msg and "DATABASE_URL" in msg, msg
        assert pw not in msg  # the password is redacted
