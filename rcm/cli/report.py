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

# Beyond the primary payer, per site: each section's query and its figures (with their zero).
_COUNT, _CASH = 0, Decimal("0.00")
BEYOND_PRIMARY = {
    "eligibility": (
        queries.eligibility_by_site,
        dict.fromkeys(
            ("checked", "active", "inactive", "other_primary", "unverified", "inquiries", "aaa"),
            _COUNT,
        ),
    ),
    "estimates": (
        queries.estimates_by_site,
        {
            **dict.fromkeys(("made", "self_pay", "unknown", "remitted_count"), _COUNT),
            "estimated": _CASH,
            "remitted": _CASH,
        },
    ),
    "later_payers": (
        queries.later_payers_by_site,
        {
            **dict.fromkeys(
                (
                    "with_next_payer",
                    "secondary",
                    "tertiary",
                    "later_paid",
                    "later_denied",
                    "later_held",
                    "crossovers",
                    "crossovers_received",
                ),
                _COUNT,
            ),
            "later_paid_amount": _CASH,
            "crossover_paid_amount": _CASH,
        },
    ),
    "patient_ar": (
        queries.patient_ar_by_site,
        {
            **dict.fromkeys(
                (
                    "payments",
                    "refunds",
                    "refunds_issued",
                    "plans",
                    "plans_active",
                    "plans_defaulted",
                    "plans_completed",
                    "credits_applied",
                ),
                _COUNT,
            ),
            "payments_amount": _CASH,
            "refunded_amount": _CASH,
            "credit_applied_amount": _CASH,
            "credit_balance": _CASH,
        },
    ),
}


def _per_site(rows, sites: dict, zero: dict) -> dict[str, dict]:
    """{site: figures} for every site of the report (zeros where the query found nothing)."""
    out = {site: dict(zero) for site in sites}
    for r in rows:
        out[r["site_id"]] = {k: r[k] if r[k] is not None else zero[k] for k in zero}
    return {k: out[k] for k in sorted(out)}


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
            aging_items(
                await queries.open_balances(conn, encounter_ids),
                await queries.patient_payments(conn, encounter_ids),  # netted as followup does
            ),
            date.today(),
            "service",
            "payer",
        )
        statements = await queries.statements_by_cycle(conn, encounter_ids)
        recon = [dict(r) for r in await queries.reconciliation(conn, encounter_ids)]
        beyond = {
            name: _per_site(await query(conn, encounter_ids), sites, zero)
            for name, (query, zero) in BEYOND_PRIMARY.items()
        }
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
            **beyond,
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
    lines += _render_beyond_primary(data)
    lines.append("dead letters: " + ", ".join(f"{k} {v}" for k, v in data["dead_letters"].items()))
    if "elapsed_seconds" in data:
        lines.append(f"settled in {data['elapsed_seconds']} s")
    return "\n".join(lines)


def _section(title: str, rows: dict[str, dict], cols: list[tuple[str, str]]) -> list[str]:
    """One per-site table with a total row; money columns are the Decimal ones."""
    header = f"  {'site':<20}" + "".join(f"{label:>12}" for _, label in cols)
    lines = ["", title, header]
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for site, row in rows.items():
        lines.append(f"  {site:<20}" + "".join(f"{_cell(row[k]):>12}" for k, _ in cols))
        for k, _ in cols:
            totals[k] += row[k]
    if len(rows) > 1:
        money = {k for k, _ in cols if any(isinstance(r[k], Decimal) for r in rows.values())}
        lines.append(
            f"  {'total':<20}"
            + "".join(f"{_money(totals[k]) if k in money else int(totals[k]):>12}" for k, _ in cols)
        )
    return lines


def _cell(v) -> str:
    return _money(v) if isinstance(v, Decimal) else str(v)


def _render_beyond_primary(data: dict) -> list[str]:
    """Eligibility, estimates, later payers and patient A/R, per site (absent: no lines)."""
    if "eligibility" not in data:
        return []
    return [
        *_section(
            "eligibility (270/271), by each coverage's newest check:",
            data["eligibility"],
            [
                ("checked", "checked"),
                ("active", "active"),
                ("inactive", "inactive"),
                ("other_primary", "other prim."),
                ("unverified", "unverified"),
                ("inquiries", "270s sent"),
                ("aaa", "AAA"),
            ],
        ),
        *_section(
            "patient estimates (from the 271's benefits; self-pay: Good Faith Estimate):",
            data["estimates"],
            [
                ("made", "made"),
                ("self_pay", "GFE"),
                ("unknown", "no benefits"),
                ("estimated", "estimated $"),
                ("remitted_count", "835 said"),
                ("remitted", "835 pat. $"),
            ],
        ),
        *_section(
            "secondary and tertiary payers (coordination of benefits):",
            data["later_payers"],
            [
                ("with_next_payer", "2+ payers"),
                ("secondary", "secondary"),
                ("tertiary", "tertiary"),
                ("later_paid", "paid"),
                ("later_denied", "denied"),
                ("later_held", "held"),
                ("later_paid_amount", "paid $"),
                ("crossovers", "crossover"),
                ("crossovers_received", "xover 835"),
                ("crossover_paid_amount", "xover $"),
            ],
        ),
        *_section(
            "patient payments (patient A/R):",
            data["patient_ar"],
            [
                ("payments", "payments"),
                ("payments_amount", "amount $"),
                ("refunds", "refunds"),
                ("refunds_issued", "issued"),
                ("refunded_amount", "refunded $"),
                ("plans", "plans"),
                ("plans_active", "active"),
                ("credits_applied", "credit used"),
                ("credit_applied_amount", "applied $"),
                ("credit_balance", "credit $"),
            ],
        ),
    ]
