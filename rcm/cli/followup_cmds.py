"""`rcm aging` and `rcm statements run`: followup's read model and statement run from the command line.

Both work straight against followup's schema in Postgres (DATABASE_URL or the local
stack); the followup service need not run. Statement events are written to
followup's outbox and published by the service's relay when it runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, date, datetime
from pathlib import Path


def _date_arg(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, not {text!r}") from None


def _as_of(value: date | None) -> date:
    return value or datetime.now(UTC).date()


async def _pool(settings):
    from services.followup.app import spec
    from shared import db

    pool = await db.create_pool(settings.dsn, max_size=2)
    async with pool.acquire() as conn:
        await db.migrate(conn, "followup", spec().package_dir)
    return pool


def cmd_aging(args) -> int:
    import asyncio

    from services.followup.aging_view import aging_table, table_json
    from services.followup.domain.aging import render_aging_table
    from services.followup.settings import FollowupSettings

    settings = FollowupSettings()

    async def go():
        pool = await _pool(settings)
        try:
            async with pool.acquire() as conn:
                return await aging_table(conn, _as_of(args.as_of), args.basis, args.by, args.sites)
        finally:
            await pool.close()

    table = asyncio.run(go())
    if args.json:
        print(json.dumps(table_json(table), indent=2))
    else:
        sys.stdout.write(render_aging_table(table))
    return 0


def cmd_statements(args) -> int:
    import asyncio

    from services.followup.settings import FollowupSettings
    from services.followup.statements_run import run_statements

    settings = FollowupSettings()
    out_dir = Path(args.out) if args.out else settings.statements_path

    async def go():
        pool = await _pool(settings)
        try:
            return await run_statements(
                pool,
                _as_of(args.as_of),
                statements_dir=out_dir,
                threshold=settings.followup.statement_threshold,
            )
        finally:
            await pool.close()

    result = asyncio.run(go())
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for s in result["issued"]:
            print(
                f"{s['statement_id']}  cycle {s['cycle']}  due {s['amount_due']:>10}  {s['file_name']}"
            )
        print(
            f"{len(result['issued'])} statement(s) in {result['directory']}"
            + (
                f"; {result['skipped_no_address']} account(s) without a guarantor address"
                if result["skipped_no_address"]
                else ""
            )
        )
    return 0


def add_parsers(sub) -> None:
    """Register `rcm aging` and `rcm statements run` on the top-level subparsers."""
    s = sub.add_parser("aging", help="A/R aging from followup's claim balances")
    s.add_argument(
        "--basis",
        choices=["service", "submission"],
        default="service",
        help="age from the date of service (default) or of first submission",
    )
    s.add_argument("--by", choices=["payer", "site", "patient"], default="payer")
    s.add_argument(
        "--as-of", dest="as_of", type=_date_arg, help="aging date YYYY-MM-DD (default today)"
    )
    s.add_argument("--sites", nargs="+", default=None, help="only these sites")
    s.add_argument("--json", action="store_true", help="print JSON instead of a table")
    s.set_defaults(func=cmd_aging)

    s = sub.add_parser("statements", help="patient statements")
    s.add_argument("action", choices=["run"])
    s.add_argument(
        "--as-of", dest="as_of", type=_date_arg, help="statement date YYYY-MM-DD (default today)"
    )
    s.add_argument("--out", help="directory for the PDFs (default <run dir>/statements)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_statements)
