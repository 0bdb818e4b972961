"""Security commands: development tokens (and, with the access-control work, the audit chain)."""

from __future__ import annotations

from rcm.cli.main import _settings


def cmd_token(args) -> int:
    from shared.auth import issue

    print(issue(_settings().auth.token_secret, args.user, args.role, args.sites, args.ttl))
    return 0


def add_parsers(sub) -> None:
    s = sub.add_parser(
        "token", help="issue a work-queue bearer token (signed with RCM_TOKEN_SECRET)"
    )
    s.add_argument("--user", required=True)
    s.add_argument("--role", default="coder", choices=["coder", "biller", "supervisor", "service"])
    s.add_argument("--sites", nargs="+", default=["*"])
    s.add_argument("--ttl", type=int, default=8 * 3600)
    s.set_defaults(func=cmd_token)
