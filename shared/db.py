"""Postgres access: pool creation and numbered, idempotent migrations per schema.

Each service owns one schema. Its migrations are ``NNN_name.sql`` files in the
service's ``migrations/`` package directory; the messaging tables every service
needs (inbox, outbox, dead letters, mailbox files) come from ``shared/migrations``
and are applied first. ``{schema}`` in a file is replaced by the schema name.
"""

from __future__ import annotations

import asyncio
import re
import ssl
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
    except Exception as e:
        raise connection_error(dsn, e) from e


async def connect(
    dsn: str, timeout: float = 10, setting: str = "DATABASE_URL"
) -> asyncpg.Connection:
    """One connection, or ConfigurationError as ``create_pool`` (naming ``setting``)."""
    try:
        return await asyncio.wait_for(asyncpg.connect(dsn), timeout)
    except Exception as e:
        raise connection_error(dsn, e, setting) from e


def connection_error(dsn: str, e: BaseException, setting: str = "DATABASE_URL") -> Exception:
    """One line naming the setting for a connection failure; other errors are returned as they are.

    TLS (``sslmode=verify-full&sslrootcert=...`` in the URL): a CA file that cannot be read, a
    server certificate the CA did not sign or a host name it does not name is a configuration
    error, not an asyncpg or ssl traceback.
    """
    where = redact(dsn)
    if isinstance(e, ssl.SSLCertVerificationError):
        return ConfigurationError(
            f"Postgres TLS at {where}: the server's certificate failed verification "
            f"({e.verify_message}); check sslrootcert and the host name in {setting}"
        )
    if (
        isinstance(e, ssl.SSLError | asyncpg.exceptions.ClientConfigurationError)
        or (isinstance(e, FileNotFoundError | PermissionError | IsADirectoryError) and "ssl" in dsn)
        or (isinstance(e, ConnectionError) and "SSL" in str(e))  # the server speaks no TLS
    ):
        return ConfigurationError(
            f"Postgres TLS at {where}: {type(e).__name__}: {_first_line(e)}; check sslmode, "
            f"sslrootcert, sslcert and sslkey in {setting}"
        )
    if isinstance(e, asyncpg.InvalidPasswordError | asyncpg.InvalidAuthorizationSpecificationError):
        return ConfigurationError(f"Postgres refused the login at {where}; check {setting}")
    if isinstance(e, OSError | asyncpg.PostgresError | asyncpg.InterfaceError | TimeoutError):
        return ConfigurationError(
            f"Postgres unreachable at {where}: {type(e).__name__}: {_first_line(e)}"
        )
    return e if isinstance(e, Exception) else RuntimeError(str(e))


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [""])[0][:200]


async def migrate_as_owner(
    owner_dsn: str, dsn: str, schema: str, service_dir: Path | None
) -> list[str]:
    """Apply ``schema``'s migrations connected as ``owner_dsn`` (the schema's owner role), then,
    when ``dsn`` logs in as another role, grant that role what a service needs (``grant_service``).
    """
    # A failure names the setting the operator must fix: the owner's URL when it is its own.
    conn = await connect(
        owner_dsn, setting="DATABASE_URL" if owner_dsn == dsn else "RCM_DB_OWNER_URL"
    )
    try:
        applied = await migrate(conn, schema, service_dir)
        owner, login = _user(owner_dsn), _user(dsn)
        if login and login != owner:
            await grant_service(conn, schema, login)
        return applied
    finally:
        await conn.close()


def _user(dsn: str) -> str | None:
    from urllib.parse import parse_qs, unquote, urlsplit

    parts = urlsplit(dsn)
    if parts.username:
        return unquote(parts.username)
    return (parse_qs(parts.query).get("user") or [None])[0]


# Tables a service role may only add to and read: the audit trail (shared/audit.py).
APPEND_ONLY = ("audit_record",)


async def grant_service(conn: asyncpg.Connection, schema: str, role: str) -> None:
    """Give ``role`` (a service's login role) rights on ``schema`` only, run by its owner after
    every migration (so new tables are covered): USAGE on the schema; SELECT, INSERT, UPDATE,
    DELETE on its tables except the append-only audit records (INSERT, SELECT); USAGE, SELECT,
    UPDATE on its sequences. Nothing else: no CREATE, TRUNCATE, REFERENCES or TRIGGER, and as it
    owns nothing, it cannot drop or disable the audit trigger."""
    q = f'"{schema}"'
    r = '"' + role.replace('"', '""') + '"'
    async with conn.transaction():
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext($1))", f"rcm-migrate-{schema}"
        )  # GRANTs racing another instance's fail with "tuple concurrently updated"
        await conn.execute(f"GRANT USAGE ON SCHEMA {q} TO {r}")
        await conn.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {q} TO {r}"
        )
        await conn.execute(f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA {q} TO {r}")
        for table in APPEND_ONLY:
            if await conn.fetchval("SELECT to_regclass($1)", f"{schema}.{table}"):
                await conn.execute(f"REVOKE UPDATE, DELETE ON {q}.{table} FROM {r}")


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
        # Only when missing: CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when
        # the schema exists, and a schema's owner role has no such right (docs/security.md).
        if not await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema):
            await conn.execute(f'CREATE SCHEMA "{schema}"')
        # A superuser (or a member of the owner role) migrating creates objects owned by the
        # schema's owner, so the owner can grant them to the service role.
        await conn.execute(
            "SELECT set_config('role', r, true) FROM (SELECT nspowner::regrole::text AS r"
            " FROM pg_namespace WHERE nspname = $1) o WHERE r <> current_user"
            " AND pg_has_role(current_user, r, 'MEMBER')",
            schema,
        )
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
