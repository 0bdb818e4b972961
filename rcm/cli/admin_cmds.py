"""Reference-data commands: `rcm codesets load`, `rcm chargemaster load SITE FILE`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg

from shared import db
from shared.settings import ServiceSettings


async def _connect(settings: ServiceSettings, schema: str, package_dir: Path) -> asyncpg.Connection:
    pool_conn = await asyncio.wait_for(asyncpg.connect(settings.dsn), 10)
    await db.migrate(pool_conn, schema, package_dir)
    return pool_conn


def cmd_codesets(args) -> int:
    """Load ICD-10-CM, CPT (own labels + optional licensed descriptors) and HCPCS into the coding schema."""
    import services.coding
    from rcm.cli.main import UserError, _settings
    from services.coding.codesets import load_all

    for f in (args.cpt_descriptors, args.hcpcs):
        if f and not Path(f).is_file():
            raise UserError(f"{f}: no such file")

    async def run() -> dict:
        conn = await _connect(_settings(), "coding", Path(services.coding.__file__).parent)
        try:
            return await load_all(
                conn,
                cpt_descriptors=Path(args.cpt_descriptors) if args.cpt_descriptors else None,
                hcpcs_file=Path(args.hcpcs) if args.hcpcs else None,
                force=args.force,
            )
        finally:
            await conn.close()

    try:
        counts = asyncio.run(run())
    except ValueError as e:
        raise UserError(str(e)) from e
    for system, n in counts.items():
        print(
            f"{system}: {n} codes loaded"
            if n
            else f"{system}: this release is already loaded (use --force)"
        )
    return 0


def cmd_chargemaster(args) -> int:
    """Validate a chargemaster CSV and make it the site's chargemaster (billing reads it at next start)."""
    import services.billing
    from rcm.cli.main import UserError, _settings
    from services.billing.domain.chargemaster import parse_chargemaster_csv

    try:
        text = Path(args.file).read_text()
    except OSError as e:
        raise UserError(f"{args.file}: cannot read ({e.strerror})") from e
    try:
        cm = parse_chargemaster_csv(text, name=args.file)
    except ValueError as e:
        raise UserError(str(e)) from e

    async def run() -> None:
        from services.billing import repository

        conn = await _connect(_settings(), "billing", Path(services.billing.__file__).parent)
        try:
            await repository.save_chargemaster(conn, args.site, text)
        finally:
            await conn.close()

    asyncio.run(run())
    print(f"chargemaster for site {args.site}: {len(cm)} items loaded (restart billing to apply)")
    return 0


def add_parsers(sub) -> None:
    s = sub.add_parser("codesets", help="code sets in Postgres")
    s.add_argument("action", choices=["load"])
    s.add_argument(
        "--cpt-descriptors",
        help="licensed CPT descriptor file (CSV code,descriptor or tab-separated)",
    )
    s.add_argument(
        "--hcpcs", help="CMS HCPCS Level II quarterly file (default: the bundled sample)"
    )
    s.add_argument("--force", action="store_true", help="reload a release that is already loaded")
    s.set_defaults(func=cmd_codesets)

    s = sub.add_parser("chargemaster", help="site chargemasters")
    s.add_argument("action", choices=["load"])
    s.add_argument("site")
    s.add_argument("file")
    s.set_defaults(func=cmd_chargemaster)
