"""Intake commands: `rcm code`, `rcm submit`, `rcm import`, `rcm sites load`, `rcm payers load`.

`rcm code` and `rcm submit` take FHIR R4 / native JSON files and HL7 v2 files (``.hl7``, or
any file that starts with MSH, FHS or BHS). Every problem in an input is listed (file, JSON
path or segment and field, what was expected), never a value from it; exit status 2.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

from rcm.cli.main import UserError, _settings, run_loop

NDJSON_SUFFIXES = (".ndjson", ".jsonl")
HL7_SUFFIXES = (".hl7", ".er7")
_HL7_STARTS = (b"MSH", b"FHS", b"BHS", b"\x0bMSH")


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

    if args.concept_map or args.snomed_map:
        from services.intake.settings import IntakeCodes

        maps = []
        for p in map(Path, args.concept_map or []):
            maps += IntakeCodes(concept_maps=p).concept_map_files()
        snomed = Path(args.snomed_map) if args.snomed_map else None
    elif _intake_environment():
        from services.intake.settings import IntakeCodes

        cfg = IntakeCodes()
        maps, snomed = cfg.concept_map_files(), cfg.snomed_map
    else:
        # No RCM_INTAKE_* variable: the settings would give no files. Not loading them
        # (pydantic-settings) is a tenth of a second of each `rcm code` call.
        maps, snomed = [], None
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


# --------------------------------------------------------------------------- HL7 v2 files


def is_hl7(path: str) -> bool:
    """An HL7 v2 file: named ``.hl7``/``.er7``, or starting (after a BOM and blank lines) with
    MSH, FHS or BHS."""
    if path.lower().endswith(HL7_SUFFIXES):
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError:
        return False
    return head.removeprefix(b"\xef\xbb\xbf").lstrip(b"\r\n \t").startswith(_HL7_STARTS)


def _read_bytes(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from e


def hl7_rules(site: str | None = None):
    """The intake service's HL7 v2 rules (RCM_INTAKE_HL7_*); ``site`` as the default site."""
    from dataclasses import replace

    from services.intake.settings import Hl7Settings

    rules = Hl7Settings().rules
    return replace(rules, default_site=site) if site else rules


def _control_id(step) -> str:
    meta = step.received.meta
    return f" (MSH-10 {meta.control_id})" if meta is not None and meta.control_id else ""


def hl7_encounters(paths: list[str], encounter_id: str | None, options: dict) -> tuple[list, int]:
    """The encounters of the visits HL7 v2 files assemble (the files of one command are one
    stream: a visit's messages may be in several), each with the files that made it; ready or
    not (a visit not ready for coding is said on stderr). Also the number of problems printed
    on stderr."""
    from services.intake.domain.hl7v2 import VisitAssembler, parse_messages, receive

    codes = options.get("codes")
    assembler = VisitAssembler(
        hl7_rules(options.get("site_id")),
        registry=options.get("registry"),
        concept_maps=codes.concept_maps if codes is not None else None,
    )
    problems = 0
    files_of: dict[str, list[str]] = {}
    for path in paths:
        messages, file_problems = parse_messages(_read_bytes(path))
        for p in file_problems:
            problems += p.is_error
            print(f"rcm: {path}: {'' if p.is_error else 'warning: '}{p}", file=sys.stderr)
        for n, message in enumerate(messages, 1):
            step = assembler.add(receive(message, assembler.rules, assembler.registry))
            where = f"{path}: message {n}{_control_id(step)}"
            problems += step.status == "rejected"
            for p in step.received.problems:
                print(f"rcm: {where}: {'' if p.is_error else 'warning: '}{p}", file=sys.stderr)
            if step.status == "ignored":
                meta = step.received.meta
                kind = f"{meta.message_type}^{meta.trigger}".rstrip("^") if meta else "?"
                print(f"rcm: {where}: {kind} is not a message intake uses", file=sys.stderr)
            key = step.received.visit_key
            if key is not None and step.status != "rejected":
                files = files_of.setdefault(key, [])
                if path not in files:
                    files.append(path)
    encounters = []
    for visit in assembler.visits():
        enc, where = visit.encounter, ", ".join(files_of.get(visit.key, paths))
        if encounter_id is not None and (enc is None or enc.encounter_id != encounter_id):
            continue
        if enc is None:
            problems += 1
            print(f"rcm: {where}: visit {_visit_label(visit.key)}: no date of service"
                  " (PV1-44, FT1-4 or TXA-4): not an encounter", file=sys.stderr)  # fmt: skip
            continue
        eid = enc.encounter_id
        if visit.cancelled:
            print(f"rcm: {where}: {eid}: the visit was cancelled (A11/A38): not coded",
                  file=sys.stderr)  # fmt: skip
            continue
        if visit.awaiting:
            print(f"rcm: {where}: {eid}: warning: not ready for coding (awaiting "
                  f"{', '.join(visit.awaiting)}); coded as it stands", file=sys.stderr)  # fmt: skip
        for w in visit.warnings:
            print(f"rcm: {where}: {eid}: warning: {w}", file=sys.stderr)
        if visit.missing:
            print(f"rcm: {where}: {eid}: missing billing data: {', '.join(visit.missing)}",
                  file=sys.stderr)  # fmt: skip
        encounters.append((where, enc))
    if encounter_id is not None and not encounters and not problems:
        held = ", ".join(v.encounter.encounter_id for v in assembler.visits() if v.encounter)
        raise UserError(
            f"{', '.join(paths)}: no encounter {encounter_id!r} (it holds: {held or 'none'})"
        )
    return encounters, problems


def _intake_environment() -> bool:
    """Whether any intake setting is in the environment (names are case-insensitive)."""
    return any(k.upper().startswith("RCM_INTAKE_") for k in os.environ)


def _visit_label(key: str) -> str:
    """A visit key without its identifier values (they may be PHI): site and fields."""
    site, fields, _ = (key.split("|", 2) + ["", ""])[:3]
    return f"{fields} at {site}"


# --------------------------------------------------------------------------- rcm code / submit


def cmd_code(args) -> int:
    """Code each encounter of each file offline; JSON on stdout, problems on stderr."""
    # pydantic looks for plugins (observability hooks) by reading every installed package's
    # metadata when it builds the first model: a twentieth of a second of each call, for
    # plugins an offline command has no use for. A value the user set is kept.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    from services.coding.domain import engine

    options = mapping_options(args)
    results, problems = [], 0
    hl7 = [f for f in args.files if is_hl7(f)]
    found = []
    for f in args.files:
        if f not in hl7:
            mapped = encounters_of(f, args.encounter, **options)
            problems += report_problems(f, mapped, warnings=True)
            found += [(f, m.encounter) for m in mapped.encounters]
    if hl7:
        encounters, n = hl7_encounters(hl7, args.encounter, options)
        problems += n
        found += encounters
    for f, enc in found:
        out = engine.offline_json(engine.code_encounter(enc))
        results.append({"file": f, "encounter_id": enc.encounter_id, **out})
    if len(results) == 1 and len(args.files) == 1:
        single = {k: v for k, v in results[0].items() if k not in ("file", "encounter_id")}
        print(json.dumps(single, indent=2, default=str))
    elif results:
        print(json.dumps(results, indent=2, default=str))
    if problems:
        raise UserError(f"{problems} problem(s) in the input; {len(results)} encounter(s) coded")
    return 0


def cmd_submit(args) -> int:
    import asyncio

    from rcm.cli.submit import submit_files

    hl7 = [f for f in args.files if is_hl7(f)]
    other = [f for f in args.files if f not in hl7]
    if hl7:
        asyncio.run(submit_hl7(hl7, args))
    if other:
        n = asyncio.run(
            submit_files(
                other,
                _settings(),
                url=args.url,
                encounter_id=args.encounter,
                token=_submit_token(args) if args.url else None,
            )
        )
        print(f"submitted {n} encounter(s)")
    return 0


MLLP_ATTEMPTS = 6
HTTP_BODY_BYTES = 1024 * 1024  # a request's messages (the service takes 2 MB by default)


def hl7_messages(path: str) -> list[bytes]:
    """Each message of an HL7 v2 file, in its own character set (MSH-18), segments ending CR."""
    from services.intake.domain.hl7v2 import Hl7Error, parse_message, split_messages
    from services.intake.domain.hl7v2.charset import codec_for

    split = split_messages(_read_bytes(path))
    for p in split.problems:
        print(f"rcm: {path}: {'' if p.is_error else 'warning: '}{p}", file=sys.stderr)
    out = []
    for raw in split.messages:
        try:
            charset = parse_message(raw).meta.charset
        except Hl7Error:
            charset = ""
        codec = (codec_for(charset) if charset else None) or "utf-8"
        if codec.startswith(("utf-16", "utf-32")):
            codec = "utf-8"
        out.append(raw.text.encode(codec, errors="replace"))
    return out


async def submit_hl7(files: list[str], args) -> None:
    """Send each message of each HL7 v2 file to the intake service, over MLLP (re-sent on a
    lost connection until acknowledged: the listener applies a re-sent message once) or to
    ``POST /hl7``; print each message's ACK code. Raises UserError when any was refused."""
    counts: dict[str, int] = {}
    for f in files:
        messages = hl7_messages(f)
        if not messages:
            raise UserError(f"{f}: no HL7 v2 message (MSH segment) in it")
        if args.url:
            acks = await _post_hl7(args.url.rstrip("/"), messages, _submit_token(args))
        else:
            acks = await _send_mllp(_mllp_target(args), messages, _mllp_tls(args))
        for n, ack in enumerate(acks, 1):
            code = ack.code or "?"
            counts[code] = counts.get(code, 0) + 1
            control = f" (MSH-10 {ack.control_id})" if ack.control_id else ""
            print(f"{f}: message {n}{control}: {code}")
            for e in ack.errors:
                print(f"rcm: {f}: message {n}{control}: {e}", file=sys.stderr)
    summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
    print(f"submitted {sum(counts.values())} HL7 v2 message(s): {summary}")
    refused = sum(v for k, v in counts.items() if k != "AA")
    if refused:
        raise UserError(f"{refused} message(s) not accepted (AE/AR)")


def _mllp_target(args) -> tuple[str, int]:
    if args.mllp:
        host, sep, port = args.mllp.rpartition(":")
        if not sep or not port.isdigit():
            raise UserError("--mllp: expected HOST:PORT")
        return host or "127.0.0.1", int(port)
    from services.intake.settings import MllpSettings

    port = MllpSettings().port
    if port is None:
        raise UserError(
            "HL7 v2 files go to the intake service: give --mllp HOST:PORT or --url URL"
            " (or set RCM_INTAKE_MLLP_PORT)"
        )
    return "127.0.0.1", port


def _mllp_tls(args):
    import ssl

    if not (args.mllp_tls or args.mllp_tls_ca):
        return None
    try:
        return ssl.create_default_context(cafile=args.mllp_tls_ca)
    except (OSError, ssl.SSLError) as e:
        raise UserError(f"--mllp-tls-ca: cannot use it ({type(e).__name__})") from e


async def _send_mllp(target: tuple[str, int], messages: list[bytes], tls) -> list:
    import asyncio

    from services.intake.mllp import MllpClient, MllpError, read_ack

    client = MllpClient(*target, tls=tls)
    acks = []
    try:
        for message in messages:
            for attempt in range(MLLP_ATTEMPTS):
                try:
                    acks.append(read_ack(await client.send(message)))
                    break
                except MllpError as e:
                    if attempt == MLLP_ATTEMPTS - 1:
                        raise UserError(f"{e}; gave up after {MLLP_ATTEMPTS} attempts") from e
                    await asyncio.sleep(min(0.5 * 2**attempt, 5.0))
    finally:
        await client.close()
    return acks


def _submit_token(args) -> str:
    if args.token:
        return args.token
    from shared.auth import DevSigner
    from shared.settings import AuthSettings, ConfigurationError, RuntimeSettings

    try:
        signer = DevSigner.build(AuthSettings(), RuntimeSettings())
    except ConfigurationError as e:
        raise UserError(f"--url needs --token (an integration token): {e}") from e
    return signer.sign("rcm-submit", ["integration"], ["*"], 600)


async def _post_hl7(url: str, messages: list[bytes], token: str) -> list:
    import httpx

    from services.intake.mllp import read_ack

    bodies, body = [], b""
    for m in messages:
        if body and len(body) + len(m) > HTTP_BODY_BYTES:
            bodies.append(body)
            body = b""
        body += m + b"\r"
    bodies.append(body)
    acks = []
    headers = {"authorization": f"Bearer {token}", "content-type": "x-application/hl7-v2+er7"}
    async with httpx.AsyncClient(timeout=120, headers=headers) as client:
        for body in bodies:
            try:
                r = await client.post(url + "/hl7", content=body)
            except httpx.HTTPError as e:
                raise UserError(f"intake service at {url} unreachable: {type(e).__name__}") from e
            if r.status_code != 200:
                try:
                    detail = r.json().get("detail")
                except ValueError:
                    detail = None
                if isinstance(detail, list):
                    detail = "; ".join(f"{p.get('path')}: {p.get('message')}" for p in detail)
                raise UserError(f"intake service answered HTTP {r.status_code}: {detail}")
            acks += [read_ack(a) for a in split_acks(r.content)]
    return acks


def split_acks(text: bytes) -> list[bytes]:
    """The ACK messages of a ``POST /hl7`` answer (each begins with MSH)."""
    out: list[bytes] = []
    for seg in text.replace(b"\r\n", b"\r").split(b"\r"):
        if seg.startswith(b"MSH"):
            out.append(seg + b"\r")
        elif seg and out:
            out[-1] += seg + b"\r"
    return out


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
                    _import_http(
                        args.url.rstrip("/"),
                        staging,
                        files,
                        summary,
                        args.concurrency,
                        _submit_token(args),
                    )
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


async def _import_http(url: str, staging, files, summary, concurrency: int, token: str) -> None:
    """POST each group to the intake service, ``concurrency`` requests in flight."""
    import asyncio

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

    async with httpx.AsyncClient(
        timeout=120, headers={"authorization": f"Bearer {token}"}
    ) as client:
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
    import asyncio

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
    import asyncio

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
    import asyncio

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
        help="code encounters offline (FHIR R4 of any shape, native JSON, or HL7 v2 .hl7 files"
        " assembled into visits); JSON on stdout",
    )
    s.add_argument("files", nargs="+", metavar="FILE")
    s.add_argument(
        "--encounter", metavar="ID", help="only this encounter of a multi-encounter input"
    )
    _registry_options(s)
    _mapping_options(s)
    s.set_defaults(func=cmd_code)

    s = sub.add_parser(
        "submit",
        help="send each encounter of each file to the pipeline (HL7 v2 .hl7 files: each message"
        " to the intake service over MLLP, or POST /hl7 with --url)",
    )
    s.add_argument("files", nargs="+", metavar="FILE")
    s.add_argument("--url", help="POST to this intake service URL instead of publishing to Kafka")
    s.add_argument("--encounter", metavar="ID", help="only this encounter (Kafka path)")
    s.add_argument(
        "--mllp",
        metavar="HOST:PORT",
        help="the intake MLLP listener for .hl7 files (default: 127.0.0.1:RCM_INTAKE_MLLP_PORT)",
    )
    s.add_argument("--mllp-tls", action="store_true", help="MLLP over TLS (the system's CAs)")
    s.add_argument("--mllp-tls-ca", metavar="FILE", help="MLLP over TLS, trusting these CAs")
    s.add_argument(
        "--token",
        help="bearer token (role integration) for --url (default: a development token)",
    )
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
    s.add_argument(
        "--token", help="bearer token (role integration) for --url (default: a development token)"
    )
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
    from services.intake.domain import registry_columns

    return getattr(registry_columns, name)
