"""Postgres access: pool creation and numbered, idempotent migrations per schema.

Each service owns one schema. Its migrations are ``NNN_name.sql`` files in the
service's ``migrations/`` package directory; the messaging tables every service
needs (inbox, outbox, dead letters, mailbox files) come from ``shared/migrations``
and are applied first. ``{schema}`` in a file is replaced by the schema name.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from pathlib import Path

import asyncpg

from shared.settings import ConfigurationError

SHARED_MIGRATIONS = Path(__file__).parent / "migrations"
_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")
# Seconds a pooled connection keeps a prepared statement (asyncpg's default: 300). Postgres
# settles on a generic plan after five runs of a statement; planned while a table was still
# small (a new deployment, a busy first minutes), it seq-scans that table on every batch
# until the statement is prepared again. Re-preparing costs one round trip per statement.
# (plan_cache_mode=force_custom_plan would fix it too, but it also re-plans every foreign
# key check inside Postgres: 15 us a row.)
STATEMENT_LIFETIME = 30


async def create_pool(
    dsn: str,
    *,
    min_size: int = 1,
    max_size: int = 5,
    timeout: float = 10,
    statement_lifetime: float = STATEMENT_LIFETIME,
) -> asyncpg.Pool:
    """Create a pool, or raise ConfigurationError naming the database that is unreachable."""
    try:
        return await asyncio.wait_for(
            asyncpg.create_pool(
                dsn,
                min_size=min_size,
                max_size=max_size,
                command_timeout=60,
                reset=release_reset,
                max_cached_statement_lifetime=statement_lifetime,
            ),
            timeout,
        )
    except (OSError, asyncpg.PostgresError, TimeoutError) as e:
        raise ConfigurationError(
            f"Postgres unreachable at {redact(dsn)}: {type(e).__name__}: {e}"
        ) from e


async def insert_rows(
    conn: asyncpg.Connection,
    table: str,
    columns: Sequence[tuple[str, str]],
    rows: Sequence[tuple],
    on_conflict: str = "",
) -> None:
    """Insert ``rows`` into ``table`` ("schema.table") as one statement over unnest'ed arrays.

    ``columns`` are (name, Postgres type) in row order; ``on_conflict`` is an optional
    "ON CONFLICT ..." clause (an upsert must not see one key twice: see ``last_per_key``).
    One round trip: binary COPY takes two (it waits for the server's go-ahead before sending
    data), which for the few to few hundred rows of a micro-batch cost more than the rows.
    Bulk loads (code sets) keep COPY.
    """
    if not rows:
        return
    names = ", ".join(name for name, _ in columns)
    arrays = ", ".join(f"${i}::{pg_type}[]" for i, (_, pg_type) in enumerate(columns, 1))
    await conn.execute(
        f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays}) {on_conflict}",
        *columns_of(rows, len(columns)),
    )


def columns_of(rows: Sequence[tuple], width: int) -> list[list]:
    """Rows -> one list per column: the arrays an ``unnest($1::type[], ...)`` takes."""
    return [list(c) for c in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]


def last_per_key(rows: Sequence[tuple], key: int = 0) -> list[tuple]:
    """The last row for each key, in first-seen key order.

    One set-based upsert or UPDATE ... FROM unnest touches a row once (Postgres refuses
    ON CONFLICT DO UPDATE twice on a key, and UPDATE picks an arbitrary source row), while
    the events of a batch apply in order: the last row for a key is the one that stands.
    """
    out: dict = {}
    for r in rows:
        out[r[key]] = r
    return list(out.values())


async def release_reset(conn: asyncpg.Connection) -> None:
    """Nothing to undo when a connection goes back to the pool.

    asyncpg's default reset (RESET ALL, UNLISTEN *, unlock session advisory locks, CLOSE ALL)
    is one more round trip on every release: per batch, relay pass and mailbox poll. rcm sets
    no session state (no SET, LISTEN, open cursors or session-level advisory locks; only
    transaction-scoped ones). asyncpg still rolls back a transaction left open before this runs.
    """


def redact(dsn: str) -> str:
    return re.sub(r"//([^:@/]+):[^@/]*@", r"//\1:***@", dsn)


def _files(directory: Path) -> list[tuple[str, Path]]:
    out = []
    for p in sorted(directory.glob("*.sql")):
        if not _NAME.match(p.name):
            raise ValueError(f"migration file name must be NNN_name.sql: {p}")
        out.append((p.stem, p))
    return out


async def migrate(conn: asyncpg.Connection, schema: str, service_dir: Path | None) -> list[str]:
    """Apply pending migrations for ``schema``; safe to run from many instances at once."""
    files = [(f"shared_{name}", p) for name, p in _files(SHARED_MIGRATIONS)]
    if service_dir is not None and (service_dir / "migrations").is_dir():
        files += _files(service_dir / "migrations")
    applied: list[str] = []
    async with conn.transaction():
        # One migrator at a time per schema, across every process.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"rcm-migrate-{schema}")
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute(
            f'CREATE TABLE IF NOT EXISTS "{schema}".schema_migration ('
            " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {
            r["name"] for r in await conn.fetch(f'SELECT name FROM "{schema}".schema_migration')
        }
        for name, path in files:
            if name in done:
                continue
            await conn.execute(path.read_text().replace("{schema}", schema))
            await conn.execute(f'INSERT INTO "{schema}".schema_migration (name) VALUES ($1)', name)
            applied.append(name)
    return applied
