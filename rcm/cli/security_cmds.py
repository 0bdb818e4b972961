"""Security commands: development tokens (`rcm token`) and the audit chain (`rcm audit`)."""

from __future__ import annotations

import getpass
import json
import sys
import uuid
from datetime import UTC, datetime

from rcm.cli.main import UserError, _settings


def cmd_token(args) -> int:
    from shared.auth import ALL_SITES, DevSigner
    from shared.settings import AuthSettings, ConfigurationError, RuntimeSettings

    runtime, auth = RuntimeSettings(), AuthSettings()
    if runtime.env == "production":
        raise UserError(
            "rcm token signs development tokens only; in production tokens come from the "
            "identity provider (RCM_TOKEN_ISSUER)"
        )
    cap = auth.token_max_lifetime_seconds
    if not 0 < args.ttl <= cap:
        raise UserError(
            f"--ttl must be between 1 and {cap} seconds (the lifetime cap, "
            "RCM_TOKEN_MAX_LIFETIME_SECONDS)"
        )
    if ALL_SITES in args.sites and len(args.sites) > 1:
        raise UserError("--sites '*' (every site) stands alone")
    if args.role == "service" and not args.user.startswith("service:"):
        raise UserError("role service is for service identities: --user service:<name>")
    try:
        signer = DevSigner.build(auth, runtime)
    except ConfigurationError as e:
        raise UserError(str(e)) from e
    jti = uuid.uuid4().hex
    print(signer.sign(args.user, [args.role], args.sites, args.ttl, jti=jti))
    print(f"rcm: token id (jti) {jti}, valid {args.ttl} s", file=sys.stderr)
    return 0


def _since(text: str) -> datetime:
    try:
        t = datetime.fromisoformat(text)
    except ValueError as e:
        raise UserError(f"--since {text!r} is not an ISO date or time (2026-05-01T09:00)") from e
    return t if t.tzinfo else t.replace(tzinfo=UTC)


async def _connect():
    import asyncpg

    from shared.db import redact

    dsn = _settings().dsn
    try:
        return await asyncpg.connect(dsn, timeout=10)
    except (OSError, asyncpg.PostgresError, TimeoutError) as e:
        raise UserError(f"Postgres unreachable at {redact(dsn)}: {type(e).__name__}") from e


async def _schemas(conn, wanted: str | None) -> list[str]:
    from shared.audit import audit_schemas

    found = await audit_schemas(conn)
    if wanted is None:
        return found
    if wanted not in found:
        raise UserError(f"schema {wanted!r} has no audit records (found: {', '.join(found)})")
    return [wanted]


async def audit_verify(schema: str | None) -> int:
    from shared.audit import verify_chain

    conn = await _connect()
    try:
        schemas = await _schemas(conn, schema)
        broken = 0
        for s in schemas:
            report = await verify_chain(conn, s)
            if report.ok:
                print(
                    f"{s}: {report.records} records, intact; head {report.head_seq} {report.head_hash}"
                )
            else:
                broken += 1
                print(f"rcm audit: {s}: chain broken at record {report.seq}: {report.problem}")
        if not schemas:
            print("no audit chains found", file=sys.stderr)
        return 1 if broken else 0
    finally:
        await conn.close()


async def audit_query(args) -> int:
    from shared.audit import Actor, AuditEvent, append, query

    since = _since(args.since) if args.since else None
    filters = [
        f"{name}={value}"
        for name, value in (("user", args.user), ("account", args.account), ("since", args.since))
        if value
    ]
    conn = await _connect()
    try:
        out = []
        for s in await _schemas(conn, args.schema):
            async with conn.transaction():
                rows = await query(
                    conn, s, user=args.user, account=args.account, since=since, limit=args.limit
                )
                # Looking at the audit trail is itself on the record.
                await append(
                    conn,
                    s,
                    Actor(f"cli:{getpass.getuser()}", "auditor"),
                    [AuditEvent("read", "audit_record", filters)],
                )
            out += rows
    finally:
        await conn.close()
    out.sort(key=lambda r: r["recorded_at"])
    for r in out:
        r.pop("prev_hash")
        print(json.dumps(r, default=str))
    return 0


def cmd_audit(args) -> int:
    import asyncio

    if args.action == "verify":
        return asyncio.run(audit_verify(args.schema))
    if not (args.user or args.account or args.since):
        raise UserError("rcm audit query needs --user, --account or --since")
    return asyncio.run(audit_query(args))


def add_parsers(sub) -> None:
    s = sub.add_parser(
        "token", help="sign a development bearer token with the local key (not in production)"
    )
    s.add_argument(
        "--user", required=True, help="the token's subject (service:<name> for a service)"
    )
    s.add_argument(
        "--role",
        default="coder",
        choices=["coder", "biller", "supervisor", "auditor", "ops", "integration", "service"],
    )
    s.add_argument(
        "--sites", nargs="+", required=True, help="site ids, or '*' for an all-site identity"
    )
    s.add_argument("--ttl", type=int, default=8 * 3600, help="seconds (at most the lifetime cap)")
    s.set_defaults(func=cmd_token)

    s = sub.add_parser("audit", help="check the audit chains, or ask who looked at what")
    actions = s.add_subparsers(dest="action", required=True)
    v = actions.add_parser("verify", help="walk every schema's chain; exit 1 naming a break")
    v.add_argument("--schema", help="only this service schema")
    v.set_defaults(func=cmd_audit)
    q = actions.add_parser("query", help="audit records by user, account or time (JSON lines)")
    q.add_argument("--user", help="the actor (token subject)")
    q.add_argument("--account", help="the patient/account key")
    q.add_argument("--since", help="ISO time; records at or after it")
    q.add_argument("--schema", help="only this service schema")
    q.add_argument("--limit", type=int, default=1000, help="records per schema (default 1000)")
    q.set_defaults(func=cmd_audit)
