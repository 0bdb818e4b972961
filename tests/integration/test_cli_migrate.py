"""`rcm migrate`: the deployment's migration job, against the real PostgreSQL."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid

import asyncpg

from tests.integration.pipeline_support import fetchval


def _rcm(dsn: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": dsn}
    return subprocess.run(
        [sys.executable, "-m", "rcm.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )


async def test_migrate_creates_each_named_schema_once(stack_endpoints):
    admin = stack_endpoints["postgres"]
    db_name = f"migrate_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'CREATE DATABASE "{db_name}"')
    finally:
        await conn.close()
    base, _, opts = admin.partition("?")
    dsn = base.rsplit("/", 1)[0] + f"/{db_name}" + (f"?{opts}" if opts else "")
    first = _rcm(dsn, "migrate", "intake", "billing")
    assert first.returncode == 0, first.stderr
    assert "intake:" in first.stdout and "billing:" in first.stdout
    assert not re.search(r"\b0 migration\(s\)", first.stdout)
    assert await fetchval(dsn, "SELECT count(*) FROM billing.schema_migration") > 0
    assert (
        await fetchval(
            dsn, "SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'coding'"
        )
        == 0
    )
    again = _rcm(dsn, "migrate", "intake", "billing")
    assert again.returncode == 0, again.stderr
    assert len(re.findall(r"\b0 migration\(s\) applied", again.stdout)) == 2


def test_migrate_names_an_unknown_service(stack_endpoints):
    r = _rcm(stack_endpoints["postgres"], "migrate", "no-such-service")
    assert r.returncode == 2 and "no-such-service" in r.stderr
