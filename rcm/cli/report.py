"""The demo report: figures read from every service's schema (the queries are in ``rcm.queries``)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal

import asyncpg

from rcm import queries
from services.followup.aging_view import aging_items, table_json
from services.followup.domain.aging import age_balances, render_aging_table

OUTCOMES = ("paid", "partially_paid", "denied", "held", "rejected")


async def collect(dsn: str, encounter_ids: list[str] | None = None) -> dict:
    """The report's figures: of these encounters when given, else of the whole database."""
    conn = await asyncpg.connect(dsn)
    try:
        sites: dict[str, dict] = defaultdict(
            lambda: {
                "encounters": 0,
                "auto_coded": 0,
                "coder_reviewed": 0,
                "claims_submitted": 0,
                **{o: 0 for o in OUTCOMES},
                "billed": Decimal(0),
                "paid_amount": Decimal(0),
                "patient_responsibility": Decimal(0),
                "open_work_items": 0,
            }
        )
        for r in await queries.outcomes_by_site(conn, encounter_ids):
            sites[r["site_id"]][r["outcome"]] += r["n"]
            sites[r["site_id"]]["encounters"] += r["n"]
        for r in await queries.coding_by_site(conn, encounter_ids):
            sites[r["site_id"]]["auto_coded"] = r["auto"]
            sites[r["site_id"]]["coder_reviewed"] = r["reviewed"]
        for r in await queries.claim_totals_by_site(conn, encounter_ids):
            s = sites[r["site_id"]]
            s["claims_submitted"] = r["submitted"]
            s["billed"], s["paid_amount"], s["patient_responsibility"] = (
                r["billed"],
                r["paid"],
                r["pr"],
            )
        for r in await queries.open_work_items_by_site(conn, encounter_ids):
            sites[r["site_id"]]["open_work_items"] = r["n"]
        claim_states = [
            dict(r) for r in await queries.billing_claims_by_status(conn, encounter_ids)
        ]
        denials = [dict(r) for r in await queries.denials_by_category(conn, encounter_ids)]
        unmatched = await queries.unmatched_remittance_count(conn, encounter_ids)
        dlq = {}
        for schema in queries.SCHEMAS:
            dlq[schema] = await queries.dead_letter_count(conn, schema, encounter_ids)
        aging = age_balances(
            aging_items(await queries.open_balances(conn, encounter_ids)),
            date.today(),
            "service",
            "payer",
        )
        statements = await queries.statements_by_cycle(conn, encounter_ids)
        recon = [dict(r) for r in await queries.reconciliation(conn, encounter_ids)]
        return {
            "sites": {k: sites[k] for k in sorted(sites)},
            "claim_states": claim_states,
            "denials": denials,
            "unmatched_remittances": unmatched,
            "dead_letters": dlq,
            "aging": table_json(aging),
            "aging_text": render_aging_table(aging),
            "statements": [
                {"cycle": r["cycle"], "count": r["n"], "amount_due": r["due"]} for r in statements
            ],
            "reconciliation": recon,
        }
    finally:
        await conn.close()


def _money(v) -> str:
    return f"{Decimal(v):,.2f}"


def render(data: dict) -> str:
    cols = [
        ("encounters", "enc"),
        ("auto_coded", "auto"),
        ("coder_reviewed", "coder"),
        ("claims_submitted", "submitted"),
        ("paid", "paid"),
        ("partially_paid", "partial"),
        ("denied", "denied"),
        ("held", "held"),
        ("rejected", "rejected"),
        ("billed", "billed"),
        ("paid_amount", "paid $"),
        ("patient_responsibility", "patient $"),
        ("open_work_items", "work items"),
    ]
    header = f"{'site':<20}" + "".join(f"{label:>12}" for _, label in cols)
    lines = ["", "rcm demo report", "=" * len(header), header, "-" * len(header)]
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for site, row in data["sites"].items():
        cells = []
        for key, _ in cols:
            v = row[key]
            totals[key] += Decimal(v)
            cells.append(f"{_money(v) if isinstance(v, Decimal) else v:>12}")
        lines.append(f"{site:<20}" + "".join(cells))
    lines.append("-" * len(header))
    lines.append(
        f"{'total':<20}"
        + "".join(
            f"{_money(totals[k]) if k in ('billed', 'paid_amount', 'patient_responsibility') else int(totals[k]):>12}"
            for k, _ in cols
        )
    )
    lines.append("")
    lines.append(
        "claims by state: " + ", ".join(f"{r['status']} {r['n']}" for r in data["claim_states"])
    )
    if data["denials"]:
        lines.append("denials by category -> action:")
        for r in data["denials"]:
            lines.append(
                f"  {r['category']:<32} -> {r['action']:<24} {r['n']:>4}  {_money(r['amount'] or 0):>12}"
            )
    lines.append(f"unmatched remittances: {data['unmatched_remittances']}")
    lines.append("")
    lines.append("A/R aging by payer (days from date of service):")
    lines.append(data["aging_text"])
    st = data["statements"]
    lines.append(
        "patient statements issued: "
        + (
            ", ".join(
                f"cycle {r['cycle']}: {r['count']} ({_money(r['amount_due'])} due)" for r in st
            )
            if st
            else "none"
        )
    )
    if data["reconciliation"]:
        lines.append("reconciliation (deposits vs posted cash, per payer per day):")
        for r in data["reconciliation"]:
            gap = (r["deposits"] or 0) - r["posted"] - r["held"] - r["unmatched"]
            lines.append(
                f"  {r['payer_id']:<10} {r['payment_date']!s:<12} deposits {_money(r['deposits'] or 0):>10}"
                f"  posted {_money(r['posted']):>10}  held {_money(r['held']):>8}"
                f"  unmatched {_money(r['unmatched']):>8}  unexplained {_money(gap):>6}"
            )
    lines.append("dead letters: " + ", ".join(f"{k} {v}" for k, v in data["dead_letters"].items()))
    if "elapsed_seconds" in data:
        lines.append(f"settled in {data['elapsed_seconds']} s")
    return "\n".join(lines)
