"""`rcm stack up|down|status`: the local Kafka (one broker or a replicated cluster), PostgreSQL
and, with ``--traces``, the trace viewer.

``up`` prints the endpoints as JSON (what ``<run dir>/stack.json`` holds: ``kafka`` is the
bootstrap list of every broker); ``status`` prints each component, Kafka per broker.
"""

from __future__ import annotations

import json
import sys


def cmd_stack(args) -> int:
    from rcm import localstack as stack
    from rcm.cli.main import UserError
    from shared.settings import ServiceSettings

    if args.action != "up" and (args.brokers is not None or args.traces):
        raise UserError("stack: --brokers and --traces go with `rcm stack up`")
    if args.brokers is not None and args.brokers < 1:
        raise UserError("stack: --brokers must be at least 1 (3 for a replicated cluster)")
    s = ServiceSettings()
    if args.action == "up":
        endpoints = stack.up(s, brokers=args.brokers, traces=args.traces)
        print(json.dumps(endpoints))
        if "zipkin" in endpoints:
            url = endpoints["zipkin"]
            print(
                f"rcm: trace viewer at {url}/zipkin/; services export to it with"
                f" OTEL_EXPORTER_ZIPKIN_ENDPOINT={url}/api/v2/spans",
                file=sys.stderr,
            )
    elif args.action == "down":
        stack.down(s)
        print("stack stopped")
    else:
        print(json.dumps(stack.status(s), indent=2))
    return 0


def add_parsers(sub) -> None:
    s = sub.add_parser("stack", help="the local Kafka + Postgres (and trace viewer)")
    s.add_argument("action", choices=["up", "down", "status"])
    s.add_argument(
        "--brokers",
        type=int,
        default=None,
        metavar="N",
        help="Kafka brokers to run (3: replication factor 3, min.insync.replicas 2); "
        "default: as many as the run dir holds, else 1",
    )
    s.add_argument(
        "--traces",
        action="store_true",
        help="also start the trace viewer (Zipkin) and point the services at it",
    )
    s.set_defaults(func=cmd_stack)
