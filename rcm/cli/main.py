"""The `rcm` command line: one entry point for users, tests and benchmarks.

Every failure a user can cause (bad file, unreachable broker or database, bad
arguments) ends as one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

# Deployable services live in services/; the simulator is tooling.
SERVICE_MODULES = {
    "intake": "services.intake.app",
    "coding": "services.coding.app",
    "billing": "services.billing.app",
    "payments": "services.payments.app",
    "followup": "services.followup.app",
    "workbench": "services.workbench.app",
    "payer_sim": "rcm.simulation.payer.app",
}
SERVICES = tuple(SERVICE_MODULES)
COMMAND_MODULES = (
    "intake_cmds",
    "followup_cmds",
    "admin_cmds",
    "status",
    "security_cmds",
    "stack_cmds",
    "eligibility_cmds",
    "patient_cmds",
)


class UserError(Exception):
    """Reported as one line; exit status 2."""


def _settings(cls=None):
    from shared.settings import ServiceSettings

    return (cls or ServiceSettings)()


# --------------------------------------------------------------------------- commands


def run_loop(coro):
    """Run a long-lived command (a service, demo, bench) on uvloop: its event loop and socket
    I/O cost a fraction of asyncio's own, which every service pays per message and request."""
    import uvloop

    return uvloop.run(coro)


def cmd_serve(args) -> int:
    from shared.service import run

    module = importlib.import_module(SERVICE_MODULES[args.service])
    service = module.spec()
    settings = _settings(service.settings)
    if args.http_port is not None:
        settings.http.port = args.http_port
    if args.mllp_port is not None:
        if not hasattr(settings, "mllp"):
            raise UserError("--mllp-port is for rcm serve intake")
        settings.mllp.port = args.mllp_port  # start-up checks (production senders) still apply
    workers = args.workers if args.workers is not None else settings.http.workers
    if workers < 1:
        raise UserError("serve: --workers must be at least 1")
    if args.worker is None and workers > 1:
        return _serve_workers(args, service.name, settings, workers)
    if args.worker is not None and settings.telemetry.rcm_metrics_port:
        settings.telemetry.rcm_metrics_port += args.worker  # one metrics port per worker
    run_loop(run(service, settings, reuse_port=args.worker is not None))
    return 0


def _serve_workers(args, name: str, settings, workers: int) -> int:
    """``workers`` copies of the service on one port (SO_REUSEPORT), each its own process."""
    from shared import logs
    from shared.service import run_workers

    if settings.http.port == 0:
        raise UserError("serve: --workers needs a fixed --http-port (each worker binds it)")
    if getattr(getattr(settings, "mllp", None), "port", None) is not None:
        raise UserError("serve: --workers cannot share the MLLP port; run one intake for MLLP")
    if not sys.platform.startswith("linux"):
        raise UserError("serve: --workers needs Linux (SO_REUSEPORT)")
    command = [sys.executable, "-m", "rcm.cli.main", "serve", args.service]
    if settings.http.port is not None:
        command += ["--http-port", str(settings.http.port)]
    logs.configure(name, settings.telemetry.rcm_log_level)
    return run_workers(name, [[*command, "--worker", str(k)] for k in range(workers)])


def cmd_claim(args) -> int:
    if args.after:  # the next payer's claim, from the prior payers' 835s
        from rcm.cli.eligibility_cmds import cmd_claim_after

        return cmd_claim_after(args)
    from datetime import UTC, datetime

    from rcm.cli.eligibility_cmds import priced_claim, scrubbed
    from services.billing.domain.x12_837 import build_837

    claim = priced_claim(args)
    scrubbed(args.file, claim)
    batch = build_837(
        [claim], interchange_control_number=1, group_control_number=1, created_at=datetime.now(UTC)
    )
    sys.stdout.write(batch.text)
    return 0


def cmd_era(args) -> int:
    from services.payments.domain.era import parse_835
    from services.payments.domain.era_json import era_to_json

    return print_x12_json(args.file, parse_835, era_to_json)


def read_x12(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from e


def print_x12_json(path: str, parse, as_json) -> int:
    """The X12 file at ``path`` parsed and printed as JSON; one line naming the file and the
    segment at fault when it cannot be read or parsed."""
    from shared.x12 import X12Error

    text = read_x12(path)
    try:
        parsed = parse(text)
    except X12Error as e:
        raise UserError(f"{path}: {e}") from e
    print(json.dumps(as_json(parsed), indent=2))
    return 0


def cmd_demo(args) -> int:
    from rcm.cli.demo import run_demo

    return run_loop(
        run_demo(
            _settings(),
            n=args.encounters,
            seed=args.seed,
            keep=args.keep,
            as_json=args.json,
            timeout=args.timeout,
        )
    )


def cmd_trace(args) -> int:
    from rcm.cli.trace import print_trace

    return print_trace(_settings(), args.encounter_id)


def cmd_bench(args) -> int:
    from rcm.bench.bench import BenchError, run_bench

    if args.encounters < 1 or args.instances < 1:
        raise UserError("bench: --encounters and --instances must be at least 1")
    if args.rate is not None and not args.rate > 0:  # also refuses nan
        raise UserError("bench: --rate must be a positive number of encounters per second")
    if args.partitions is not None and args.partitions < 1:
        raise UserError("bench: --partitions must be at least 1")
    if args.brokers < 1:
        raise UserError("bench: --brokers must be at least 1")
    if not args.timeout > 0:
        raise UserError("bench: --timeout must be a positive number of seconds")
    try:
        return run_loop(
            run_bench(
                n=args.encounters,
                instances=args.instances,
                seed=args.seed,
                chaos_seed=args.seed if args.chaos else None,
                as_json=args.json,
                out=Path(args.out) if args.out else None,
                timeout=args.timeout,
                partitions=args.partitions,
                rate=args.rate,
                brokers=args.brokers,
                review_after_auto=args.review_after_auto,
            )
        )
    except BenchError as e:
        raise UserError(f"bench: {e}") from e


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rcm", description="Revenue-cycle management: coding, claims, payments, follow-up"
    )
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run one service process")
    s.add_argument("service", choices=SERVICES)
    s.add_argument("--http-port", type=int, default=None)
    s.add_argument(
        "--mllp-port",
        type=int,
        default=None,
        help="intake: also listen for HL7 v2 over MLLP on this port",
    )
    s.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes serving the HTTP port together (SO_REUSEPORT, Linux); "
        "default RCM_HTTP_WORKERS or 1. One that dies stops the others, exit non-zero",
    )
    # Set by --workers for each process it starts: its index (metrics port + index).
    s.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser("claim", help="code and bill one encounter offline; print the 837")
    s.add_argument("file")
    s.add_argument("--chargemaster", help="chargemaster CSV to price with")
    s.add_argument("--encounter", metavar="ID", help="the encounter of a multi-encounter input")
    s.add_argument(
        "--after",
        action="append",
        metavar="ERA.835",
        help="a prior payer's 835, primary first: print the next payer's 837",
    )
    s.set_defaults(func=cmd_claim)

    s = sub.add_parser("era", help="parse one 835 file offline; print JSON")
    s.add_argument("file")
    s.set_defaults(func=cmd_era)

    s = sub.add_parser(
        "demo", help="run the whole pipeline on sample encounters and print a report"
    )
    s.add_argument("--keep", action="store_true", help="leave the stack and services running")
    s.add_argument(
        "--json", action="store_true", help="print the report as JSON (the table goes to stderr)"
    )
    s.add_argument("-n", "--encounters", type=int, default=60)
    s.add_argument("--seed", type=int, default=7)
    s.add_argument("--timeout", type=float, default=300)
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser(
        "bench", help="run the full pipeline under load and report throughput and latency"
    )
    s.add_argument("-n", "--encounters", type=int, default=10_000)
    s.add_argument(
        "--instances",
        type=int,
        default=1,
        help="instances of each service (also runs K=1 to compare)",
    )
    s.add_argument("--seed", type=int, default=11)
    s.add_argument(
        "--chaos",
        action="store_true",
        help="kill processes, the broker and Postgres on a seeded schedule",
    )
    s.add_argument(
        "--partitions", type=int, default=None, help="partitions per topic (default max(4, 2K))"
    )
    s.add_argument(
        "--brokers",
        type=int,
        default=1,
        help="Kafka brokers (3: replicated; with --chaos, killed one at a time)",
    )
    s.add_argument(
        "--rate",
        type=float,
        default=None,
        help="publish at this many encounters/s (default: all at once, measuring drain capacity)",
    )
    s.add_argument("--timeout", type=float, default=1800)
    s.add_argument(
        "--review-after-auto",
        action="store_true",
        help="start the simulated coders once the auto-coded encounters have settled;"
        " CPU reported per phase (auto path, review path)",
    )
    s.add_argument(
        "--json", action="store_true", help="print the results as JSON (the table goes to stderr)"
    )
    s.add_argument("--out", help="results file (default bench-results-<time>.json)")
    s.set_defaults(func=cmd_bench)

    s = sub.add_parser("trace", help="print an encounter's trace across services")
    s.add_argument("encounter_id")
    s.set_defaults(func=cmd_trace)

    # Each command module adds its own subcommands.
    for name in COMMAND_MODULES:
        importlib.import_module(f"rcm.cli.{name}").add_parsers(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except UserError as e:
        print(f"rcm: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as e:
        # The settings and the local stack (pydantic-settings; Kafka, Postgres: costly to
        # import) raised these only if they were loaded; `rcm code` loads neither.
        for module, error in (
            ("shared.settings", "ConfigurationError"),
            ("rcm.localstack", "StackError"),
        ):
            loaded = sys.modules.get(module)
            if loaded is not None and isinstance(e, getattr(loaded, error)):
                print(f"rcm: {e}", file=sys.stderr)
                return 2
        raise


if __name__ == "__main__":
    # `python -m rcm.cli.main` runs this file as __main__: hand over to the importable module,
    # so the command modules' `from rcm.cli.main import UserError` is the class caught above.
    from rcm.cli.main import main as _main

    sys.exit(_main())
