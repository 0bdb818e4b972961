"""Admin commands: `rcm migrate`, `rcm codesets load|list`, `rcm chargemaster load SITE FILE`.

Imports are made inside the commands: every `rcm` call builds this module's parsers.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncpg

    from shared.settings import ServiceSettings


async def _connect(settings: ServiceSettings, schema: str, package_dir: Path) -> asyncpg.Connection:
    import asyncio

    import asyncpg

    from shared import db

    pool_conn = await asyncio.wait_for(asyncpg.connect(settings.dsn), 10)
    await db.migrate(pool_conn, schema, package_dir)
    return pool_conn


def _store_icd10cm(args):
    """Read the user's CMS ICD-10-CM files and keep the release for offline use; print what."""
    from rcm.cli.main import UserError
    from services.coding import codesets
    from shared import icd10cm

    try:
        rel = codesets.read_icd10cm([Path(f) for f in args.icd10cm], args.release)
        release = codesets.store_icd10cm(rel)
    except ValueError as e:
        raise UserError(str(e)) from e
    except OSError as e:
        raise UserError(f"{icd10cm.home()}: cannot store the release ({e.strerror})") from e
    billable = sum(1 for b, _ in rel.codes.values() if b)
    print(
        f"icd10cm {release.version}: {len(rel.codes)} codes ({billable} billable) for dates of"
        f" service from {release.effective_from} (fiscal year {release.fiscal_year}), kept in"
        f" {icd10cm.home() / 'codesets'} for rcm code/claim and the services"
        " (restart coding and billing to apply)"
    )
    return rel


def cmd_codesets(args) -> int:
    """`load`: ICD-10-CM (bundled, plus a release from CMS files with --icd10cm), CPT (own labels
    + optional licensed descriptors) and HCPCS into the coding schema. `list`: the ICD-10-CM
    releases dates of service are checked against."""
    import asyncio

    import services.coding
    from rcm.cli.main import UserError, _settings
    from services.coding.codesets import load_all, load_icd10cm_release

    if args.action == "list":
        return _list_icd10cm()
    for f in (args.cpt_descriptors, args.hcpcs, *(args.icd10cm or ())):
        if f and not Path(f).is_file():
            raise UserError(f"{f}: no such file")
    if args.release and not args.icd10cm:
        raise UserError("--release names the release of the --icd10cm files; give them too")
    if args.offline and not args.icd10cm:
        raise UserError("--offline stores --icd10cm files without the database; give them")
    rel = _store_icd10cm(args) if args.icd10cm else None
    if args.offline:
        return 0

    async def run() -> dict:
        conn = await _connect(_settings(), "coding", Path(services.coding.__file__).parent)
        try:
            counts = await load_all(
                conn,
                cpt_descriptors=Path(args.cpt_descriptors) if args.cpt_descriptors else None,
                hcpcs_file=Path(args.hcpcs) if args.hcpcs else None,
                force=args.force,
            )
            if rel is not None:
                counts[f"icd10cm {rel.version}"] = await load_icd10cm_release(
                    conn, rel, force=args.force
                )
            return counts
        finally:
            await conn.close()

    try:
        counts = asyncio.run(run())
    except ValueError as e:
        raise UserError(str(e)) from e
    except (OSError, TimeoutError) as e:
        kept = " (the --icd10cm release is kept for offline use)" if rel is not None else ""
        raise UserError(f"Postgres: cannot connect ({e}){kept}") from e
    for system, n in counts.items():
        print(
            f"{system}: {n} codes loaded"
            if n
            else f"{system}: this release is already loaded (use --force)"
        )
    return 0


def _list_icd10cm() -> int:
    """Each ICD-10-CM release and the dates of service it answers for (see icd10cm.release_for)."""
    from datetime import date, timedelta

    from shared import icd10cm

    releases = icd10cm.releases()
    for r in releases:
        same_year = [o for o in releases if o.fiscal_year == r.fiscal_year]
        first = same_year[0] == r
        later = [o.effective_from for o in same_year if o.effective_from > r.effective_from]
        start = date(r.fiscal_year - 1, 10, 1) if first else r.effective_from
        end = later[0] - timedelta(days=1) if later else r.fiscal_year_end
        origin = "bundled" if r.version == icd10cm.VERSION else "loaded"
        print(f"icd10cm {r.version}\tdates of service {start} to {end}\t{origin}")
    return 0


def cmd_chargemaster(args) -> int:
    """Validate a chargemaster CSV and make it the site's chargemaster (billing reads it at next start)."""
    import asyncio

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


def cmd_migrate(args) -> int:
    """Apply each named service's pending migrations (all deployable services by default), as a
    deployment's pre-install/pre-upgrade job does before new service versions start."""
    import asyncio
    import importlib

    from rcm.cli.main import SERVICE_MODULES, UserError, _settings
    from shared import db

    unknown = [n for n in args.services if n not in SERVICE_MODULES]
    if unknown:
        raise UserError(f"migrate: unknown service {unknown[0]!r}")
    names = args.services or [n for n in SERVICE_MODULES if n != "payer_sim"]

    async def run() -> None:
        # As the schema owner (RCM_DB_OWNER_URL) when set; it then grants the tables to
        # DATABASE_URL's role when that is another one (one service per job, then).
        settings = _settings()
        for name in names:
            spec = importlib.import_module(SERVICE_MODULES[name]).spec()
            applied = await db.migrate_as_owner(
                settings.owner_dsn, settings.dsn, spec.schema, spec.package_dir
            )
            print(
                f"{name}: {len(applied)} migration(s) applied"
                + (f": {', '.join(applied)}" if applied else "")
            )

    asyncio.run(run())
    return 0


def add_parsers(sub) -> None:
    from rcm.cli.main import SERVICE_MODULES

    s = sub.add_parser("migrate", help="apply the services' database migrations")
    s.add_argument("services", nargs="*", metavar="SERVICE", help=", ".join(SERVICE_MODULES))
    s.set_defaults(func=cmd_migrate)

    s = sub.add_parser("codesets", help="code sets: load into Postgres, list ICD-10-CM releases")
    s.add_argument("action", choices=["load", "list"])
    s.add_argument(
        "--icd10cm",
        action="append",
        metavar="FILE",
        help="a CMS ICD-10-CM release: icd10cm_order_YYYY.txt and/or icd10cm_tabular_YYYY.xml,"
        " plain or zipped (repeat for several files of one release)",
    )
    s.add_argument(
        "--release",
        help="the release of the --icd10cm files when their names do not say it:"
        " YYYY (October, fiscal year YYYY) or YYYY-04 (April update)",
    )
    s.add_argument(
        "--offline",
        action="store_true",
        help="only keep the --icd10cm release for rcm code/claim and the services (no database)",
    )
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
