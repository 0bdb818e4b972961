"""Intake commands: `rcm code`, `rcm submit`, `rcm import`, `rcm sites load`, `rcm payers load`.

Every problem in an input is listed (file, JSON path or line, what was expected), never a
value from it; exit status 2.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

from rcm.cli.main import UserError, _settings, run_loop

NDJSON_SUFFIXES = (".ndjson", ".jsonl")


# --------------------------------------------------------------------------- reading inputs


def read_input(path: str) -> object:
    """A file's content for the mapping: parsed JSON, or the bytes of an NDJSON file."""
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from e
    if path.endswith(NDJSON_SUFFIXES):
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError as e:
        raise UserError(
            f"{path}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})"
        ) from e
    except ValueError as e:
        raise UserError(f"{path}: not valid JSON (expected UTF-8 text)") from e


def encounters_of(path: str, encounter_id: str | None = None, **options):
    """The mapped encounters of one file (only ``encounter_id`` when given: the encounter id
    or the FHIR Encounter's id) and its problems. ``options`` go to the mapping (registry,
    codes, site_id). Raises UserError when the file holds no such encounter."""
    from services.intake.mapping import Mapped, parse

    mapped = parse(read_input(path), **options)
    if encounter_id is None:
        return mapped
    chosen = [
        m
        for m in mapped.encounters
        if encounter_id in (m.encounter.encounter_id, getattr(m, "fhir_id", None))
    ]
    if not chosen and not mapped.problems:
        held = ", ".join(m.encounter.encounter_id for m in mapped.encounters[:20]) or "none"
        raise UserError(f"{path}: no encounter {encounter_id!r} (it holds: {held})")
    return Mapped(chosen, mapped.problems, mapped.warnings)


def mapping_options(args) -> dict:
    """The mapping's registry (offline CSVs), code files and default site from the arguments;
    code files default to the intake service's settings (RCM_INTAKE_CONCEPT_MAPS, ...)."""
    return {
        "registry": offline_registry(args) if hasattr(args, "sites") else None,
        "codes": load_code_files(args),
        "site_id": args.site,
    }


def load_code_files(args):
    from services.intake.domain.problems import IntakeError
    from services.intake.mapping import load_codes
    from services.intake.settings import IntakeCodes

    if args.concept_map or args.snomed_map:
        maps = []
        for p in map(Path, args.concept_map or []):
            maps += IntakeCodes(concept_maps=p).concept_map_files()
        snomed = Path(args.snomed_map) if args.snomed_map else None
    else:
        cfg = IntakeCodes()
        maps, snomed = cfg.concept_map_files(), cfg.snomed_map
    try:
        return load_codes(maps, snomed)
    except OSError as e:
        raise UserError(f"{e.filename}: cannot read ({e.strerror})") from e
    except IntakeError as e:
        for p in e.errors:
            print(f"rcm: code files: {p['path']}: {p['message']}", file=sys.stderr)
        raise UserError(f"code files: {len(e.errors)} problem(s)") from e


def report_problems(path: str, mapped, *, warnings: bool = False) -> int:
    """Print each problem (and, with ``warnings``, each warning and missing billing field) on
    stderr; return the number of problems."""
    from services.intake.mapping import plain

    for p in mapped.problems:
        print(f"rcm: {path}: {p['path']}: {p['message']}", file=sys.stderr)
    if warnings:
        for w in mapped.warnings:
            print(f"rcm: {path}: warning: {w['path']}: {w['message']}", file=sys.stderr)
        for m in mapped.encounters:
            eid = m.encounter.encounter_id
            for w in map(plain, m.warnings):
                text = f"{w['path']}: {w['message']}" if isinstance(w, dict) else str(w)
                print(f"rcm: {path}: {eid}: warning: {text}", file=sys.stderr)
            if m.missing:
                fields = ", ".join(_field(x) for x in m.missing)
                print(f"rcm: {path}: {eid}: missing billing data: {fields}", file=sys.stderr)
    return len(mapped.problems)


def _field(item) -> str:
    from services.intake.mapping import plain

    item = plain(item)
    return str(item.get("field") or item.get("path")) if isinstance(item, dict) else str(item)


def one_encounter(path: str, encounter_id: str | None = None):
    """The one encounter of a file (for `rcm claim`); raises UserError listing its problems."""
    mapped = encounters_of(path, encounter_id)
    if mapped.problems and not mapped.encounters:
        report_problems(path, mapped)
        first = mapped.problems[0]
        more = f" (+{len(mapped.problems) - 1} more)" if len(mapped.problems) > 1 else ""
        raise UserError(f"{path}: {first['path']}: {first['message']}{more}")
    if len(mapped.encounters) > 1:
        ids = ", ".join(m.encounter.encounter_id for m in mapped.encounters[:20])
        raise UserError(
            f"{path}: holds {len(mapped.encounters)} encounters ({ids}); pick one with --encounter ID"
        )
    return mapped.encounters[0].encounter


def offline_registry(args):
    """A registry from `--sites/--providers/--payers` CSV files, or None."""
    if not (args.sites or args.providers or args.payers):
        return None
    from services.intake.domain.problems import IntakeError
    from services.intake.domain.registry import (
        Registry,
        parse_payers_csv,
        parse_providers_csv,
        parse_sites_csv,
    )

    def read(path, parser):
        if not path:
            return []
        try:
            return parser(Path(path).read_text())
        except OSError as e:
            raise UserError(f"{path}: cannot read ({e.strerror})") from e
        except IntakeError as e:
            _print_csv_problems(path, e)
            raise UserError(f"{path}: {len(e.errors)} problem(s); nothing loaded") from e

    return Registry(
        read(args.sites, parse_sites_csv),
        read(args.providers, parse_providers_csv),
        read(args.payers, parse_payers_csv),
    )


def _print_csv_problems(path: str, e) -> None:
    for p in e.errors:
        print(f"rcm: {path}: {p['path']}: {p['message']}", file=sys.stderr)


# --------------------------------------------------------------------------- rcm code / submit


def cmd_code(args) -> int:
    """Code each encounter of each file offline; JSON on stdout, problems on stderr."""
    from services.coding.domain import engine

    options = mapping_options(args)
    results, problems = [], 0
    for f in args.files:
        mapped = encounters_of(f, args.encounter, **options)
        problems += report_problems(f, mapped, warnings=True)
        for m in mapped.encounters:
            out = engine.offline_json(engine.code_encounter(m.encounter))
            results.append({"file": f, "encounter_id": m.encounter.encounter_id, **out})
    if len(results) == 1 and len(args.files) == 1:
        single = {k: v for k, v in results[0].items() if k not in ("file", "encounter_id")}
        print(json.dumps(single, indent=2, default=str))
    elif results:
        print(json.dumps(results, indent=2, default=str))
    if problems:
        raise UserError(f"{problems} problem(s) in the input; {len(results)} encounter(s) coded")
    return 0


def cmd_submit(args) -> int:
    from rcm.cli.submit import submit_files

    n = asyncio.run(
        submit_files(args.files, _settings(), url=args.url, encounter_id=args.encounter)
    )
    print(f"submitted {n} encounter(s)")
    return 0


# --------------------------------------------------------------------------- rcm import


class Progress:
    """A live line on a terminal, a line every 10 s in a log."""

    def __init__(self, label: str, total: int, unit: str = ""):
        self.label, self.total, self.unit = label, max(total, 1), unit
        self.started = time.monotonic()
        self._last = 0.0
        self.tty = sys.stderr.isatty()

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        if not self.tty and now - self._last < 10 and done < self.total:
            return
        if self.tty and now - self._last < 0.1 and done < self.total:
            return
        self._last = now
        pct = min(100, 100 * done // self.total)
        bar = "#" * (pct // 4) + "-" * (25 - pct // 4)
        rate = done / max(now - self.started, 1e-6)
        text = f"  {self.label} [{bar}] {pct:3d}% {_amount(done, self.unit)} ({_amount(rate, self.unit)}/s)"
        print(
            ("\r" + text) if self.tty else text,
            end="" if self.tty else "\n",
            file=sys.stderr,
            flush=True,
        )

    def close(self) -> None:
        if self.tty:
            print(file=sys.stderr)


def _amount(n: float, unit: str) -> str:
    if unit == "B":
        return f"{n / 1e6:.1f} MB"
    return f"{n:,.0f}"


def cmd_import(args) -> int:
    from services.intake.bulk_import import Summary, ndjson_files, stage_files
    from services.intake.staging import Staging

    try:
        files = ndjson_files([Path(p) for p in args.paths])
    except ValueError as e:
        raise UserError(str(e)) from e
    if args.batch < 1 or args.concurrency < 1:
        raise UserError("import: --batch and --concurrency must be at least 1")
    if args.url and (args.site or args.concept_map or args.snomed_map):
        raise UserError("import: --site, --concept-map and --snomed-map apply without --url")
    options = None if args.url else mapping_options(args)
    summary = Summary()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="rcm-import-", dir=args.staging_dir) as tmp:
        staging = Staging(Path(tmp) / "staging.sqlite")
        try:
            bar = Progress("reading", sum(f.stat().st_size for f in files), "B")
            stage_files(files, staging, summary, bar)
            bar.close()
            summary.seconds["read"] = time.monotonic() - started
            if args.url:
                run_loop(
                    _import_http(args.url.rstrip("/"), staging, files, summary, args.concurrency)
                )
            else:
                run_loop(_import_db(_settings(), staging, files, summary, args.batch, options))
        finally:
            staging.close()
    summary.seconds["total"] = time.monotonic() - started
    report = summary.as_json()
    print(_summary_text(report), file=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps(report, indent=2))
    refused = summary.bad_lines + summary.rejected + summary.conflicts
    return 1 if refused else 0


async def _import_db(settings, staging, files, summary, batch_size: int, options: dict) -> None:
    """Map each group here and store it straight into intake's schema; publish its outbox."""
    import services.intake
    from services.intake.bulk_import import import_staged
    from services.intake.registry_cache import load_registry
    from shared import db
    from shared.kafka import ensure_topics, start_producer
    from shared.relay import OutboxRelay

    pool = await db.create_pool(settings.dsn, max_size=3)
    producer = None
    try:
        async with pool.acquire() as conn:
            await db.migrate(conn, "intake", Path(services.intake.__file__).parent)
            options = {**options, "registry": await load_registry(conn)}
        await ensure_topics(settings.kafka_servers)
        producer = await start_producer(settings.kafka_servers)
        bar = Progress("encounters", staging.encounter_count())
        await import_staged(
            pool,
            OutboxRelay(pool, "intake", producer),
            staging,
            files,
            summary,
            batch_size=batch_size,
            options=options,
            on_progress=bar,
        )
        bar(summary.encounters)
        bar.close()
    finally:
        if producer is not None:
            await producer.stop()
        await pool.close()


async def _import_http(url: str, staging, files, summary, concurrency: int) -> None:
    """POST each group to the intake service, ``concurrency`` requests in flight."""
    import httpx

    from services.intake.bulk_import import groups

    bar = Progress("encounters", staging.encounter_count())
    slots = asyncio.Semaphore(concurrency)
    failures: list[BaseException] = []

    async def post(client: httpx.AsyncClient, group) -> None:
        try:
            r = await client.post(
                url + "/encounters",
                content=group.bundle_text().encode(),
                headers={"content-type": "application/json"},
            )
            answer = r.json()
            summary.encounters += 1
            if r.status_code == 422:
                summary.rejected += 1
                for p in answer.get("detail", []):
                    summary.problem(group.locate(p["path"]), p["message"])
            elif r.status_code == 409 and "encounters" not in answer:
                summary.conflicts += 1
            elif r.status_code >= 400 and r.status_code != 409:
                raise UserError(f"intake service answered HTTP {r.status_code}")
            else:
                summary.count(answer.get("encounters", [answer]))
                for p in answer.get("problems", []):
                    summary.problem(group.locate(p["path"]), p["message"])
            bar(summary.encounters)
        except (httpx.HTTPError, UserError) as e:
            failures.append(e)
        finally:
            slots.release()

    async with httpx.AsyncClient(timeout=120) as client:
        tasks = set()
        for group in groups(staging, files):
            await slots.acquire()
            if failures:
                break
            task = asyncio.create_task(post(client, group))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)
    bar.close()
    if failures:
        e = failures[0]
        raise UserError(f"import stopped: {e if isinstance(e, UserError) else type(e).__name__}")


def _summary_text(r: dict) -> str:
    lines = [
        f"rcm import: {r['files']} file(s), {r['lines']:,} lines, {r['bytes'] / 1e6:.1f} MB"
        f" in {r['seconds'].get('total', 0):.1f} s",
        "  resources used:    "
        + (", ".join(f"{k} {v:,}" for k, v in r["resources"].items()) or "none"),
        "  resources skipped: "
        + (", ".join(f"{k} {v:,}" for k, v in r["skipped"].items()) or "none")
        + " (billing does not read them)",
        f"  encounters: {r['encounters']:,} found, {r['accepted']:,} accepted"
        f" ({r['new_versions']:,} as a new version), {r['unchanged']:,} unchanged,"
        f" {r['rejected']:,} refused, {r['conflicts']:,} conflicting",
    ]
    if r["unmatched_resources"]:
        lines.append(
            f"  {r['unmatched_resources']:,} resource(s) name an Encounter the export does not hold"
            " (matched by patient and date instead)"
        )
    if r["duplicate_resources"]:
        lines.append(f"  {r['duplicate_resources']:,} repeated resource id(s): the first was kept")
    if r["missing"]:
        lines.append(
            "  missing billing data (a biller fills it in): "
            + ", ".join(f"{k} {v:,}" for k, v in r["missing"].items())
        )
    if r["warnings"]:
        lines.append(f"  warnings: {r['warnings']:,}")
    if r["problems"]:
        lines.append(f"  problems ({r['bad_lines']:,} bad lines):")
        lines += [f"    {n:,} x {msg}" for msg, n in r["problems"].items()]
        lines.append("  first problems:")
        lines += [f"    {p['path']}: {p['message']}" for p in r["examples"]]
    return "\n".join(lines)


# --------------------------------------------------------------------------- registries


def cmd_sites_load(args) -> int:
    from services.intake.domain.registry import parse_providers_csv, parse_sites_csv

    sites = _parse_csv(args.file, parse_sites_csv)
    providers = _parse_csv(args.providers, parse_providers_csv) if args.providers else []
    asyncio.run(load_registry_records(_settings().dsn, sites=sites, providers=providers))
    print(
        f"sites: {len(sites)} loaded"
        + (f", providers: {len(providers)} loaded" if providers else "")
    )
    return 0


def cmd_payers_load(args) -> int:
    from services.intake.domain.registry import parse_payers_csv

    payers = _parse_csv(args.file, parse_payers_csv)
    asyncio.run(load_registry_records(_settings().dsn, payers=payers))
    print(f"payers: {len(payers)} loaded")
    return 0


def _parse_csv(path: str, parser) -> list:
    from services.intake.domain.problems import IntakeError

    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from e
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: expected UTF-8 text") from e
    try:
        return parser(text)
    except IntakeError as e:
        _print_csv_problems(path, e)
        raise UserError(f"{path}: {len(e.errors)} problem(s); nothing loaded") from e


async def load_registry_records(dsn: str, *, sites=(), providers=(), payers=()) -> None:
    """Store sites, providers and payers in intake's schema, in one transaction."""
    import asyncpg

    import services.intake
    from services.intake import repository as repo
    from shared import db

    try:
        conn = await asyncio.wait_for(asyncpg.connect(dsn), 10)
    except (OSError, asyncpg.PostgresError, TimeoutError) as e:
        raise UserError(f"Postgres unreachable at {db.redact(dsn)}: {type(e).__name__}") from e
    try:
        await db.migrate(conn, "intake", Path(services.intake.__file__).parent)
        async with conn.transaction():
            await repo.upsert_sites(conn, sites)
            await repo.upsert_providers(conn, providers)
            await repo.upsert_payers(conn, payers)
    finally:
        await conn.close()


def sample_registry_files() -> dict[str, Path]:
    """The bundled registry CSVs of the demo sites and payers."""
    import services.intake

    data = Path(services.intake.__file__).parent / "data"
    return {k: data / f"sample_{k}.csv" for k in ("sites", "providers", "payers")}


# --------------------------------------------------------------------------- parsers


def _registry_options(s) -> None:
    s.add_argument("--sites", help="sites CSV to fill missing billing data from (offline registry)")
    s.add_argument("--providers", help="rendering providers CSV (offline registry)")
    s.add_argument("--payers", help="payers CSV (offline registry)")


def _mapping_options(s) -> None:
    s.add_argument(
        "--concept-map",
        action="append",
        metavar="PATH",
        help="concept-map file (FHIR ConceptMap JSON or CSV) or a directory of them; repeatable"
        " (default: RCM_INTAKE_CONCEPT_MAPS)",
    )
    s.add_argument(
        "--snomed-map",
        metavar="FILE",
        help="NLM SNOMED CT to ICD-10-CM map (default: RCM_INTAKE_SNOMED_MAP)",
    )
    s.add_argument("--site", metavar="ID", help="site of encounters whose organisation names none")


def add_parsers(sub) -> None:
    s = sub.add_parser(
        "code",
        help="code encounters offline (FHIR R4 of any shape or native JSON); JSON on stdout",
    )
    s.add_argument("files", nargs="+", metavar="FILE")
    s.add_argument(
        "--encounter", metavar="ID", help="only this encounter of a multi-encounter input"
    )
    _registry_options(s)
    _mapping_options(s)
    s.set_defaults(func=cmd_code)

    s = sub.add_parser("submit", help="send each encounter of each file to the pipeline")
    s.add_argument("files", nargs="+", metavar="FILE")
    s.add_argument("--url", help="POST to this intake service URL instead of publishing to Kafka")
    s.add_argument("--encounter", metavar="ID", help="only this encounter (Kafka path)")
    _registry_options(s)
    _mapping_options(s)
    s.set_defaults(func=cmd_submit)

    s = sub.add_parser(
        "import",
        help="stream a bulk FHIR $export (NDJSON files, or directories of them) into intake",
    )
    s.add_argument("paths", nargs="+", metavar="DIR|FILE")
    s.add_argument(
        "--url", help="POST each encounter to this intake service URL instead of the database"
    )
    s.add_argument(
        "--batch", type=int, default=500, help="encounters per transaction (default 500)"
    )
    s.add_argument("--concurrency", type=int, default=8, help="requests in flight with --url")
    s.add_argument("--staging-dir", help="where the on-disk staging store goes (default: TMPDIR)")
    s.add_argument("--json", action="store_true", help="the summary as JSON on stdout")
    _mapping_options(s)
    s.set_defaults(func=cmd_import)

    s = sub.add_parser("sites", help="the site and provider registry")
    s.add_argument("action", choices=["load"])
    s.add_argument("file", help="sites CSV: " + ",".join(_columns("SITE_COLUMNS")))
    s.add_argument("--providers", help="providers CSV: " + ",".join(_columns("PROVIDER_COLUMNS")))
    s.set_defaults(func=cmd_sites_load)

    s = sub.add_parser("payers", help="the payer registry")
    s.add_argument("action", choices=["load"])
    s.add_argument("file", help="payers CSV: " + ",".join(_columns("PAYER_COLUMNS")))
    s.set_defaults(func=cmd_payers_load)


def _columns(name: str) -> tuple[str, ...]:
    from services.intake.domain import registry

    return getattr(registry, name)
