"""`rcm status`: one screen on a running deployment (lag, outbox backlog, DLQs, work queues, claims,
intake's eligibility waits)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.settings import ServiceSettings


async def collect(settings: ServiceSettings) -> dict:
    # Imported here: the database and Kafka clients cost a third of a second that every other
    # `rcm` command (rcm code above all) would pay at start-up.
    import asyncio

    import asyncpg

    from rcm.queries import INTAKE, SCHEMAS, eligibility_waits, present_schemas  # asyncpg, too
    from shared.ops import group_lag, schema_snapshot

    conn = await asyncio.wait_for(asyncpg.connect(settings.dsn), 10)
    try:
        present = await present_schemas(conn)
        schemas = {}
        if INTAKE in present:  # first, in pipeline order; it consumes no topic (no lag)
            schemas[INTAKE] = await schema_snapshot(conn, INTAKE)
            schemas[INTAKE]["eligibility"] = await eligibility_waits(conn)
        schemas |= {s: await schema_snapshot(conn, s) for s in SCHEMAS if s in present}
    finally:
        await conn.close()
    lag = await asyncio.wait_for(
        group_lag(settings.kafka_servers, [f"rcm-{s}" for s in SCHEMAS if s != "payer_sim"]), 20
    )
    from shared.mailbox import mailbox_report

    # Files no poller will take by itself (hidden, temporary, stuck, failed), per mailbox.
    mailboxes = {
        name: mailbox_report(path, settings.mailbox.stuck_seconds)
        for name, path in (("inbound", settings.inbound_dir), ("outbound", settings.outbound_dir))
    }
    return {"consumer_lag": lag, "schemas": schemas, "mailboxes": mailboxes}


def render(data: dict) -> str:
    lines = [
        "rcm status",
        "",
        f"{'service':<12}{'lag':>8}{'outbox':>8}{'DLQ':>6}{'files':>7}{'failed':>8}  work queues / claims",
    ]
    for name, snap in data["schemas"].items():
        lag = data["consumer_lag"].get(f"rcm-{name}", "-")
        extra = ""
        if snap.get("work_queue_depth"):
            extra += "queues " + ", ".join(
                f"{k} {v}" for k, v in sorted(snap["work_queue_depth"].items())
            )
        if snap.get("claims_by_state"):
            extra += (
                ("; " if extra else "")
                + "claims "
                + ", ".join(f"{k} {v}" for k, v in sorted(snap["claims_by_state"].items()))
            )
        if elig := snap.get("eligibility"):
            extra += ("; " if extra else "") + (
                f"eligibility {elig['checks_waiting']} waiting, {elig['checks_retrying']} retrying,"
                f" {elig['encounters_held']} encounters held, {elig['work_items_open']} work open"
            )
        lines.append(
            f"{name:<12}{lag!s:>8}{snap['outbox_backlog']:>8}{snap['dead_letters']:>6}{snap['pending_files']:>7}"
            f"{snap['failed_files']:>8}  {extra}"
        )
    for name, box in data.get("mailboxes", {}).items():
        odd = {
            k: len(box[k])
            for k in ("stuck", "temporary", "hidden", "not_regular", "invalid_name", "retrying")
            if box[k]
        }
        lines.append(
            f"mailbox {name}: {box['waiting']} waiting, {box['failed']} failed"
            + "".join(f", {n} {k.replace('_', ' ')}" for k, n in odd.items())
        )
    return "\n".join(lines)


def cmd_status(args) -> int:
    import asyncio

    from rcm.cli.main import _settings

    data = asyncio.run(collect(_settings()))
    print(json.dumps(data, indent=2) if args.json else render(data))
    return 0


def add_parsers(sub) -> None:
    s = sub.add_parser("status", help="one-screen summary of a running deployment")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_status)
