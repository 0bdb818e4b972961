"""The demo report and the cross-schema queries it reads, on real migrated schemas.

Rows are written straight into each service's tables for two sets of encounters (with
site, payer and claim ids no other test uses); the report of one set counts that set only.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import NamedTuple

import asyncpg
import pytest

from rcm import queries
from rcm.cli import report
from services.followup.aging_view import aging_table, table_json
from shared import db

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
# Each schema's migrations, as the services (and the payer simulator) apply them at start-up.
PACKAGES = {
    "coding": ROOT / "services" / "coding",
    "billing": ROOT / "services" / "billing",
    "payments": ROOT / "services" / "payments",
    "followup": ROOT / "services" / "followup",
    "payer_sim": ROOT / "rcm" / "simulation" / "payer",
    "intake": ROOT / "services" / "intake",
}
RUN = uuid.uuid4().hex[:8].upper()
SITE_1, SITE_2, SITE_3 = f"RPT{RUN}-1", f"RPT{RUN}-2", f"RPT{RUN}-3"
PAYER_A, PAYER_B = f"PA{RUN}", f"PB{RUN}"
D = Decimal
SERVICE_DATE = date.today() - timedelta(days=45)
PAYMENT_DATE = date.today() - timedelta(days=5)


def _enc(name: str) -> str:
    return f"E{RUN}{name}"


def _claim(name: str) -> str:
    return f"C{RUN}{name}"


class Enc(NamedTuple):
    site: str
    payer: str
    route: str
    coded_by: str
    billing_status: str
    followup_state: str  # and its outcome
    charge: Decimal
    paid: Decimal
    patient: Decimal
    payer_balance: Decimal


ENCOUNTERS = {
    "A1": Enc(SITE_1, PAYER_A, "auto", "auto", "paid", "paid", D("200"), D("150"), D("20"), D(0)),
    "A2": Enc(
        SITE_2, PAYER_A, "review", "coder-1", "denied", "denied", D("300"), D(0), D(0), D("300")
    ),
    "B1": Enc(SITE_1, PAYER_B, "auto", "auto", "paid", "paid", D("125"), D("100"), D(0), D(0)),
    # Billing and followup disagree about this one (written so, to show the check finds it).
    "B2": Enc(
        SITE_1,
        PAYER_B,
        "auto",
        "auto",
        "partially_paid",
        "paid",
        D("80"),
        D("40"),
        D("10"),
        D("30"),
    ),
}
SET_A = [_enc("A1"), _enc("A2")]
SET_B = [_enc("B1"), _enc("B2")]


async def _write_encounter(conn: asyncpg.Connection, name: str) -> None:
    e = ENCOUNTERS[name]
    enc, claim = _enc(name), _claim(name)
    submitted = datetime.now(UTC) - timedelta(days=30)
    await conn.execute(
        "INSERT INTO coding.encounter (encounter_id, site_id, service_date, status, route, coded_by,"
        " encounter, suggestions, edits, coded_at)"
        " VALUES ($1, $2, $3, 'coded', $4, $5, '{}', '[]', '[]', now())",
        enc,
        e.site,
        SERVICE_DATE,
        e.route,
        e.coded_by,
    )
    await conn.execute(
        "INSERT INTO billing.claim (claim_id, encounter_id, site_id, payer_id, claim_type,"
        " frequency_code, status, total_charge, service_date, coded)"
        " VALUES ($1, $2, $3, $4, 'professional', '1', $5, $6, $7, '{}')",
        claim,
        enc,
        e.site,
        e.payer,
        e.billing_status,
        e.charge,
        SERVICE_DATE,
    )
    await conn.execute(
        "INSERT INTO payments.claim (claim_id, encounter_id, site_id, payer_id, frequency_code,"
        " total_charge, service_date, submitted_at, lines) VALUES ($1, $2, $3, $4, '1', $5, $6, $7, '[]')",
        claim,
        enc,
        e.site,
        e.payer,
        e.charge,
        SERVICE_DATE,
        submitted,
    )
    await conn.execute(
        "INSERT INTO followup.claim (claim_id, encounter_id, site_id, payer_id, state, total_charge,"
        " paid, patient_responsibility, service_date, submitted_at, payer_balance, patient_balance)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $8)",
        claim,
        enc,
        e.site,
        e.payer,
        e.followup_state,
        e.charge,
        e.paid,
        e.patient,
        SERVICE_DATE,
        submitted,
        e.payer_balance,
    )
    await conn.execute(
        "INSERT INTO followup.encounter_outcome (encounter_id, site_id, claim_id, outcome)"
        " VALUES ($1, $2, $3, $4)",
        enc,
        e.site,
        claim,
        e.followup_state,
    )


async def _write_payment(
    conn: asyncpg.Connection, payer: str, trace: str, names: list[str], unmatched: str | None
) -> None:
    """One deposit paying ``names`` (posted to the ledger) and, if given, one claim payment
    for ``unmatched`` waiting for its claim."""
    paid = {n: ENCOUNTERS[n].paid for n in names}
    waiting = ENCOUNTERS[unmatched].paid if unmatched else D(0)
    advice = await conn.fetchval(
        "INSERT INTO payments.remittance_advice (payer_key, trace_number, file_name,"
        " st_control_number, payment_amount, payment_date, status)"
        " VALUES ($1, $2, $3, '0001', $4, $5, 'posted') RETURNING advice_id",
        payer,
        trace,
        f"835_{trace}.txt",
        sum(paid.values(), D(0)) + waiting,
        PAYMENT_DATE,
    )
    rows = [(n, _claim(n), "posted") for n in names]
    if unmatched:
        rows.append((unmatched, None, "unmatched"))
    for n, claim_id, state in rows:
        e = ENCOUNTERS[n]
        await conn.execute(
            "INSERT INTO payments.claim_payment (remittance_id, advice_id, claim_id,"
            " patient_control_number, payer_id, status_code, charge, paid, patient_responsibility,"
            " state, posted_at) VALUES ($1, $2, $3, $4, $5, '1', $6, $7, $8, $9,"
            " CASE WHEN $9 = 'posted' THEN now() END)",
            f"{trace}:{n}",
            advice,
            claim_id,
            _claim(n),
            payer,
            e.charge,
            e.paid,
            e.patient,
            state,
        )
        if state != "posted" or not e.paid:
            continue
        entry = await conn.fetchval(
            "INSERT INTO payments.journal_entry (kind, source, claim_id, payer_id, advice_id)"
            " VALUES ('payment', $1, $2, $3, $4) RETURNING entry_id",
            f"{trace}:{n}",
            claim_id,
            payer,
            advice,
        )
        await conn.execute(  # one statement: the ledger checks each statement balances
            "INSERT INTO payments.journal_line (entry_id, account, claim_id, payer_id, amount)"
            " VALUES ($1, 'cash_clearing', $2, $3, $4), ($1, 'payer_receivable', $2, $3, -$4::numeric)",
            entry,
            claim_id,
            payer,
            e.paid,
        )


async def _write_all(conn: asyncpg.Connection) -> None:
    for name in ENCOUNTERS:
        await _write_encounter(conn, name)
    await _write_payment(conn, PAYER_A, f"TA{RUN}", ["A1"], None)
    await _write_payment(conn, PAYER_B, f"TB{RUN}", ["B1"], unmatched="B2")
    # A denial work item (open) for A2; a resolved one for B1.
    for name, status in (("A2", "open"), ("B1", "resolved")):
        e = ENCOUNTERS[name]
        await conn.execute(
            "INSERT INTO followup.work_item (source_key, claim_id, encounter_id, site_id, payer_id,"
            " category, action, label, amount, status)"
            " VALUES ($1, $2, $3, $4, $5, $6, 'appeal', 'denied', $7, $8)",
            f"denial:{_claim(name)}:CO-50",
            _claim(name),
            _enc(name),
            e.site,
            e.payer,
            f"medical_necessity_{RUN}",
            e.charge,
            status,
        )
    # One patient statement, for A1's patient balance.
    await conn.execute(
        "INSERT INTO followup.statement (statement_id, site_id, account_key, encounter_id,"
        " claim_ids, amount_due, cycle, statement_date, due_date, file_name)"
        " VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8, $9)",
        f"S{RUN}A1",
        SITE_1,
        f"K{RUN}",
        _enc("A1"),
        [_claim("A1")],
        D("20.00"),
        date.today(),
        date.today() + timedelta(days=30),
        f"statement_{RUN}.json",
    )
    # A dead letter in coding about A1, one in billing about B1.
    for schema, name in (("coding", "A1"), ("billing", "B1")):
        await conn.execute(
            f"INSERT INTO {schema}.dead_letter (source_topic, source_partition, source_offset,"
            " encounter_id, error, body) VALUES ($1, 0, 1, $2, 'test', '\\x00')",
            f"rcm.test.{RUN}",
            _enc(name),
        )


# --------------------------------------------------------------------------- beyond the primary payer
# Set C, on a site of its own: C1 has a primary, a secondary and a tertiary payer, C2 a primary
# that forwarded the claim (crossover). Eligibility checks, estimates and patient A/R for both.
SET_C = [_enc("C1"), _enc("C2")]
PAYER_S, PAYER_T, PAYER_X = f"PS{RUN}", f"PT{RUN}", f"PX{RUN}"


async def _billing_claim(conn, name: str, seq: str, payer: str, status: str, coverages: int):
    claim = _claim(name)
    await conn.execute(
        "INSERT INTO billing.claim (claim_id, encounter_id, site_id, payer_id, claim_type,"
        " frequency_code, status, total_charge, service_date, coded, cob_sequence,"
        " primary_claim_id) VALUES ($1, $2, $3, $4, 'professional', '1', $5, 200, $6, $7::jsonb,"
        " $8, $9)",
        claim,
        _enc(name[:2]),
        SITE_3,
        payer,
        status,
        SERVICE_DATE,
        json.dumps({"encounter": {"coverages": [{}] * coverages}}),
        seq,
        None if seq == "primary" else _claim(name[:2]),
    )
    await conn.execute(
        "INSERT INTO payments.claim (claim_id, encounter_id, site_id, payer_id, frequency_code,"
        " total_charge, service_date, submitted_at, lines)"
        " VALUES ($1, $2, $3, $4, '1', 200, $5, now(), '[]')",
        claim,
        _enc(name[:2]),
        SITE_3,
        payer,
        SERVICE_DATE,
    )


async def _posted(conn, name: str, claim_name: str, payer: str, paid: Decimal, pr: Decimal):
    """A posted claim payment of ``paid`` by ``payer`` on ``claim_name``'s claim (its own
    deposit; ledger lines are not needed by the report's figures)."""
    advice = await conn.fetchval(
        "INSERT INTO payments.remittance_advice (payer_key, trace_number, file_name,"
        " st_control_number, payment_amount, payment_date, status)"
        " VALUES ($1, $2, 'era.txt', '0001', $3, $4, 'posted') RETURNING advice_id",
        payer,
        f"T{name}{RUN}",
        paid,
        PAYMENT_DATE,
    )
    await conn.execute(
        "INSERT INTO payments.claim_payment (remittance_id, advice_id, claim_id,"
        " patient_control_number, payer_id, status_code, charge, paid, patient_responsibility,"
        " state, posted_at) VALUES ($1, $2, $3, $3, $4, '2', 200, $5, $6, 'posted', now())",
        f"{payer}:{name}{RUN}",
        advice,
        _claim(claim_name),
        payer,
        paid,
        pr,
    )
    await conn.execute(
        "INSERT INTO billing.remitted_patient_responsibility (remittance_id, claim_id,"
        " encounter_id, payer_id, outcome, patient_responsibility, is_reversal)"
        " VALUES ($1, $2, $3, $4, 'paid', $5, false)",
        f"{payer}:{name}{RUN}",
        _claim(claim_name),
        _enc(claim_name[:2]),
        payer,
        pr,
    )


async def _check(conn, name: str, seq: str, attempt: int, outcome, reason=None, summary=None):
    await conn.execute(
        "INSERT INTO intake.eligibility_check (trace_number, coverage_key, encounter_id,"
        " site_id, sequence, payer_id, payer_name, service_date, request, attempt,"
        " retry_seconds, retry_max_seconds, max_attempts, requested_by, state, outcome,"
        " reason_code, summary, created_at) VALUES ($1, $2, $3, $4, $5, 'P', 'payer', $6, '{}',"
        " $7::int, 60, 3600, 5, 'intake', $8, $9, $10, $11::jsonb, now() + make_interval(secs => $7::int))",
        f"TRN{RUN}{name}{seq}{attempt}",
        f"K{RUN}{name}{seq}",
        _enc(name),
        SITE_3,
        seq,
        SERVICE_DATE,
        attempt,
        {None: "sent", "retry": "retried", "rejected": "rejected"}.get(outcome, "answered"),
        None if outcome == "retry" else outcome,
        reason,
        json.dumps(summary) if summary else None,
    )


async def _ledger(conn, kind: str, source: str, claim: str | None, lines) -> None:
    entry = await conn.fetchval(
        "INSERT INTO payments.journal_entry (kind, source, claim_id) VALUES ($1, $2, $3)"
        " RETURNING entry_id",
        kind,
        source,
        claim,
    )
    await conn.execute(  # one statement: the ledger checks each statement balances
        "INSERT INTO payments.journal_line (entry_id, account, claim_id, amount, patient_account)"
        " SELECT $1, a, $2, m, $3 FROM unnest($4::text[], $5::numeric[]) AS l(a, m)",
        entry,
        claim,
        _enc("C1"),
        [a for a, _ in lines],
        [m for _, m in lines],
    )


async def _write_beyond_primary(conn: asyncpg.Connection) -> None:
    for name in SET_C:
        await conn.execute(
            "INSERT INTO followup.encounter_outcome (encounter_id, site_id, claim_id, outcome)"
            " VALUES ($1, $2, $3, 'paid')",
            name,
            SITE_3,
            name.replace(f"E{RUN}", f"C{RUN}"),
        )
    await _billing_claim(conn, "C1", "primary", PAYER_A, "paid", 3)
    await _billing_claim(conn, "C1S", "secondary", PAYER_S, "partially_paid", 3)
    await _billing_claim(conn, "C1T", "tertiary", PAYER_T, "denied", 3)
    await _billing_claim(conn, "C2", "primary", PAYER_A, "paid", 2)
    await _posted(conn, "C1", "C1", PAYER_A, D("100.00"), D("60.00"))
    await _posted(conn, "C1S", "C1S", PAYER_S, D("30.00"), D("30.00"))
    await _posted(conn, "C1T", "C1T", PAYER_T, D("0.00"), D("25.00"))
    await _posted(conn, "C2", "C2", PAYER_A, D("80.00"), D("40.00"))
    # Medicare forwarded C2's claim; the crossover payer's 835 came and paid on the same claim.
    await conn.execute(
        "INSERT INTO billing.crossover_wait (primary_claim_id, cob_sequence, site_id, payer_id,"
        " due_at, status) VALUES ($1, 'secondary', $2, $3, now(), 'received')",
        _claim("C2"),
        SITE_3,
        PAYER_X,
    )
    await _posted(conn, "C2X", "C2", PAYER_X, D("32.00"), D("8.00"))
    # Eligibility: C1's primary active (another payer named primary), its secondary down once
    # (AAA 42) then active, its tertiary not found (AAA 75); C2's primary inactive.
    await _check(conn, "C1", "primary", 1, "active", summary={"other_primary_payer_id": "X"})
    await _check(conn, "C1", "secondary", 1, "retry", reason="42")
    await _check(conn, "C1", "secondary", 2, "active", summary={"status": "active"})
    await _check(conn, "C1", "tertiary", 1, "rejected", reason="75")
    await _check(conn, "C2", "primary", 1, "inactive", summary={"status": "inactive"})
    # Estimates: C1 a copay, C2 (inactive: self-pay) a Good Faith Estimate.
    for name, basis, pr in (("C1", "copay", D("25.00")), ("C2", "self_pay", D("200.00"))):
        await conn.execute(
            "INSERT INTO billing.patient_estimate (encounter_id, claim_id, site_id, basis,"
            " total_charge, patient_responsibility, detail) VALUES ($1, $2, $3, $4, 200, $5,"
            " '{}')",
            _enc(name),
            _claim(name),
            SITE_3,
            basis,
            pr,
        )
    # Patient A/R on C1: 15.00 paid (7.00 allocated by the patient), 3.00 credit applied by
    # payments when responsibility arrived, a refund of 4.00 issued and one still requested;
    # a plan on C2. Credit left: 15 - 7 - 3 - 4 = 1.00.
    pid = await conn.fetchval(
        "INSERT INTO payments.patient_payment (site_id, idempotency_key, fingerprint, account,"
        " amount, method, received_date, created_by) VALUES ($1, $2, 'f', $3, 15.00, 'cash',"
        " $4, 'tester') RETURNING payment_id",
        SITE_3,
        f"K{RUN}",
        _enc("C1"),
        PAYMENT_DATE,
    )
    await _ledger(
        conn,
        "patient_payment",
        f"patient-payment:{pid}",
        None,
        [("cash_clearing", D("15.00")), ("patient_credit", D("-15.00"))],
    )
    await _ledger(
        conn,
        "credit_applied",
        f"patient-payment:{pid}:{_claim('C1T')}",
        _claim("C1T"),
        [("patient_credit", D("7.00")), ("patient_receivable", D("-7.00"))],
    )
    await _ledger(
        conn,
        "credit_applied",
        f"credit-applied:{_claim('C1T')}:{RUN}",
        _claim("C1T"),
        [("patient_credit", D("3.00")), ("patient_receivable", D("-3.00"))],
    )
    await _ledger(
        conn,
        "refund",
        f"refund:{RUN}",
        None,
        [("patient_credit", D("4.00")), ("cash_clearing", D("-4.00"))],
    )
    for n, (state, amount) in enumerate((("issued", "4.00"), ("requested", "1.00"))):
        await conn.execute(
            "INSERT INTO payments.refund (site_id, account, amount, method, reason, state,"
            " idempotency_key, fingerprint, requested_by) VALUES ($1, $2, $3, 'check',"
            " 'overpaid', $4, $5, 'f', 'biller')",
            SITE_3,
            _enc("C1"),
            D(amount),
            state,
            f"R{RUN}{n}",
        )
    await conn.execute(
        "INSERT INTO payments.payment_plan (site_id, account, total, instalment_amount, period,"
        " first_due_date, grace_days, status, idempotency_key, fingerprint, created_by)"
        " VALUES ($1, $2, 8.00, 4.00, 'monthly', $3, 15, 'active', $4, 'f', 'biller')",
        SITE_3,
        _enc("C2"),
        date.today() + timedelta(days=30),
        f"P{RUN}",
    )


@pytest.fixture(scope="module")
def dsn(stack_endpoints) -> str:
    async def setup() -> None:
        conn = await asyncpg.connect(stack_endpoints["postgres"])
        try:
            for schema, package in PACKAGES.items():
                await db.migrate(conn, schema, package)
            async with conn.transaction():
                await _write_all(conn)
                await _write_beyond_primary(conn)
        finally:
            await conn.close()

    asyncio.run(setup())
    return stack_endpoints["postgres"]


def _mine(data: dict) -> dict:
    """The report's per-site rows of this module's sites."""
    return {k: v for k, v in data["sites"].items() if k in (SITE_1, SITE_2)}


async def test_the_report_of_given_encounters_counts_only_those(dsn):
    data = await report.collect(dsn, SET_A)

    sites = data["sites"]
    assert set(sites) == {SITE_1, SITE_2}
    one, two = sites[SITE_1], sites[SITE_2]
    assert (one["encounters"], one["paid"], one["partially_paid"], one["denied"]) == (1, 1, 0, 0)
    assert (two["encounters"], two["paid"], two["denied"]) == (1, 0, 1)
    assert (one["auto_coded"], one["coder_reviewed"]) == (1, 0)
    assert (two["auto_coded"], two["coder_reviewed"]) == (0, 1)
    assert one["claims_submitted"] == 1 and two["claims_submitted"] == 1
    assert (one["billed"], one["paid_amount"], one["patient_responsibility"]) == (
        D("200.00"),
        D("150.00"),
        D("20.00"),
    )
    assert (two["billed"], two["paid_amount"]) == (D("300.00"), D("0.00"))
    assert (one["open_work_items"], two["open_work_items"]) == (0, 1)
    assert data["claim_states"] == [{"status": "denied", "n": 1}, {"status": "paid", "n": 1}]
    assert [(r["category"], r["n"], r["amount"]) for r in data["denials"]] == [
        (f"medical_necessity_{RUN}", 1, D("300.00"))
    ]
    assert data["unmatched_remittances"] == 0
    assert data["dead_letters"] == {
        "coding": 1,
        "billing": 0,
        "payments": 0,
        "followup": 0,
        "payer_sim": 0,
    }
    # Aging: A2's payer balance under its payer, A1's patient balance under self-pay.
    assert set(data["aging"]["rows"]) == {PAYER_A, "PATIENT"}
    assert data["aging"]["rows"][PAYER_A]["total"] == "300.00"
    assert data["aging"]["grand_total"] == "320.00"
    assert data["statements"] == [{"cycle": 0, "count": 1, "amount_due": D("20.00")}]
    recon = [
        (r["payer_id"], r["deposits"], r["posted"], r["unmatched"]) for r in data["reconciliation"]
    ]
    assert recon == [(PAYER_A, D("150"), D("150"), D(0))]
    # Nothing beyond the primary payer in this set: every site's figures are zero.
    for section, (_, zero) in report.BEYOND_PRIMARY.items():
        assert data[section] == {SITE_1: zero, SITE_2: zero}, section
    assert "rcm demo report" in report.render(data)


async def test_the_other_set_and_both_sets_and_the_whole_database(dsn):
    b = await report.collect(dsn, SET_B)
    assert set(b["sites"]) == {SITE_1}
    one = b["sites"][SITE_1]
    assert (one["encounters"], one["paid"], one["denied"], one["open_work_items"]) == (2, 2, 0, 0)
    assert one["billed"] == D("205.00")
    assert b["claim_states"] == [{"status": "paid", "n": 1}, {"status": "partially_paid", "n": 1}]
    assert [(r["category"], r["n"]) for r in b["denials"]] == [(f"medical_necessity_{RUN}", 1)]
    assert b["unmatched_remittances"] == 1  # B2's payment, waiting for a claim it names
    assert b["dead_letters"]["coding"] == 0 and b["dead_letters"]["billing"] == 1
    assert b["statements"] == []
    # The deposit that paid B1 is reconciled whole: B1 posted, B2's payment unmatched.
    recon = [
        (r["payer_id"], r["deposits"], r["posted"], r["unmatched"]) for r in b["reconciliation"]
    ]
    assert recon == [(PAYER_B, D("140"), D("100"), D("40"))]

    both = await report.collect(dsn, SET_A + SET_B)
    assert both["sites"][SITE_1]["encounters"] == 3 and both["sites"][SITE_2]["encounters"] == 1
    assert both["sites"][SITE_1]["billed"] == D("405.00")
    assert both["unmatched_remittances"] == 1

    # Without encounters the report reads the whole database: these sites count both sets.
    everything = await report.collect(dsn)
    assert _mine(everything) == _mine(both)
    assert everything["unmatched_remittances"] >= 1
    assert sum(everything["dead_letters"].values()) >= 2
    assert json.dumps(everything, default=str)  # the demo's --json prints it


async def test_outcome_disagreements_name_the_claims_billing_and_followup_read_differently(dsn):
    conn = await asyncpg.connect(dsn)
    try:
        assert await queries.remittance_outcome_disagreements(conn, SET_A) == []
        rows = await queries.remittance_outcome_disagreements(conn, SET_A + SET_B)
    finally:
        await conn.close()
    assert [tuple(r) for r in rows] == [(_claim("B2"), "partially_paid", "paid")]


async def test_the_bench_and_chaos_queries_read_what_the_services_wrote(dsn):
    conn = await asyncpg.connect(dsn)
    try:
        windows = await queries.stage_windows(conn, SET_A)
        posted = await queries.posted_at_by_encounter(conn, SET_A + SET_B)
        hops = {r["encounter_id"]: r for r in await queries.hop_times(conn, SET_A)}
        settled = await queries.settled_encounters(conn, [*SET_A, f"E{RUN}-none"])
        outcomes = await queries.outcome_rows_per_encounter(conn, SET_A)
        originals = await queries.encounters_with_several_originals(conn, SET_A + SET_B)
        ledger = {r["claim_id"]: r for r in await queries.claim_ledger_totals(conn, SET_A)}
        dead = await queries.dead_letter_sources(conn, "coding")
        checks = [
            await queries.claims_adjudicated_twice(conn),
            await queries.claims_posted_twice(conn),
            await queries.claims_followed_up_twice(conn),
            await queries.duplicate_statements(conn),
            await queries.unbalanced_journal_entries(conn),
        ]
        total = await queries.ledger_total(conn)
        with pytest.raises(ValueError, match="unknown schema"):
            await queries.dead_letter_count(conn, "pg_catalog", None)
        schemas = await queries.present_schemas(conn)
    finally:
        await conn.close()
    assert list(windows) == ["coding", "billing", "payments", "followup"]
    assert [windows[s][2] for s in windows] == [2, 2, 1, 2]  # A2 was denied: nothing posted
    assert {r["encounter_id"] for r in posted} == {_enc("A1"), _enc("B1")}
    assert hops[_enc("A1")]["route"] == "auto" and hops[_enc("A2")]["route"] == "review"
    assert hops[_enc("A1")]["posted"] >= hops[_enc("A1")]["remitted"]
    assert hops[_enc("A2")]["posted"] is None and hops[_enc("A1")]["submitted"] is None
    assert settled == set(SET_A)
    assert sorted((r["encounter_id"], r["n"]) for r in outcomes) == [(e, 1) for e in SET_A]
    assert originals == 0
    a1 = ledger[_claim("A1")]
    assert (a1["total_charge"], a1["cash"], a1["payer"], a1["fu_paid"]) == (
        D("200"),
        D("150"),
        D("-150"),
        D("150"),
    )
    assert _claim("A2") not in ledger  # no ledger lines
    assert (f"rcm.test.{RUN}", 0, 1) in dead
    assert all(isinstance(n, int) and n >= 0 for n in checks)
    assert isinstance(total, Decimal)
    assert schemas >= set(queries.SCHEMAS)


async def test_eligibility_estimates_later_payers_and_patient_payments_per_site(dsn):
    data = await report.collect(dsn, SET_C)

    assert set(data["sites"]) == {SITE_3}
    assert data["eligibility"] == {
        SITE_3: {
            "checked": 4,  # C1 primary, secondary, tertiary; C2 primary
            "active": 2,
            "inactive": 1,
            "other_primary": 1,
            "unverified": 1,  # the tertiary: AAA 75
            "inquiries": 5,  # the secondary was asked twice
            "aaa": 2,  # 42 and 75
        }
    }
    assert data["estimates"] == {
        SITE_3: {
            "made": 2,
            "self_pay": 1,
            "unknown": 0,
            "remitted_count": 2,
            "estimated": D("225.00"),
            # C1: the tertiary decided (25.00); C2: Medicare's and the crossover payer's
            # remittances are both on the primary claim (40.00 + 8.00).
            "remitted": D("73.00"),
        }
    }
    assert data["later_payers"] == {
        SITE_3: {
            "with_next_payer": 2,
            "secondary": 1,
            "tertiary": 1,
            "later_paid": 1,
            "later_denied": 1,
            "later_held": 0,
            "later_paid_amount": D("30.00"),
            "crossovers": 1,
            "crossovers_received": 1,
            "crossover_paid_amount": D("32.00"),
        }
    }
    assert data["patient_ar"] == {
        SITE_3: {
            "payments": 1,
            "payments_amount": D("15.00"),
            "refunds": 2,
            "refunds_issued": 1,
            "refunded_amount": D("4.00"),
            "plans": 1,
            "plans_active": 1,
            "plans_defaulted": 0,
            "plans_completed": 0,
            "credits_applied": 1,  # payments' own; the patient's allocation is not counted
            "credit_applied_amount": D("3.00"),
            "credit_balance": D("1.00"),
        }
    }
    text = report.render(data)
    lines = text.splitlines()

    def row(title: str) -> list[str]:
        at = next(i for i, line in enumerate(lines) if line.startswith(title))
        return lines[at + 2].split()

    assert row("eligibility (270/271)") == [SITE_3, "4", "2", "1", "1", "1", "5", "2"]
    assert row("patient estimates") == [SITE_3, "2", "1", "0", "225.00", "2", "73.00"]
    assert row("secondary and tertiary payers") == [
        *[SITE_3, "2", "1", "1", "1", "1", "0", "30.00", "1", "1", "32.00"]
    ]
    assert row("patient payments") == [
        *[SITE_3, "1", "15.00", "2", "1", "4.00", "1", "1", "1", "3.00", "1.00"]
    ]
    assert json.dumps(data, default=str)  # --json


async def test_statement_accounts_name_what_the_patient_owes_per_claim(dsn):
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO followup.statement (statement_id, site_id, account_key, encounter_id,"
            " claim_ids, amount_due, cycle, statement_date, due_date, file_name)"
            " VALUES ($1, $2, $3, $4, $5, 12.00, 0, $6, $7, 's.json')",
            f"S{RUN}C1",
            SITE_3,
            f"K{RUN}C1",
            _enc("C1"),
            [_claim("C1T")],
            date.today(),
            date.today() + timedelta(days=30),
        )
        await _ledger(
            conn,
            "payment",
            f"pr:{RUN}",
            _claim("C1T"),
            [("patient_receivable", D("22.00")), ("payer_receivable", D("-22.00"))],
        )
        rows = await queries.statement_accounts(conn, [*SET_C, f"E{RUN}-none"])
    finally:
        await conn.close()
    assert [(r["encounter_id"], r["site_id"], r["amount_due"]) for r in rows] == [
        (_enc("C1"), SITE_3, D("12.00"))
    ]
    # 22.00 owed less the 7.00 allocated and 3.00 applied.
    assert json.loads(rows[0]["balances"]) == {_claim("C1T"): 12.0}


async def test_the_reports_aging_nets_patient_payments_as_followups_aging_does(dsn):
    """A patient owing 50.00 on a claim who paid 30.00 shows 20.00 in the PATIENT row, and the
    report's aging is followup's (GET /aging's table) for the same claims."""
    site, enc, claim = f"RPT{RUN}-P", _enc("P1"), _claim("P1")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO followup.claim (claim_id, encounter_id, site_id, payer_id, state,"
            " total_charge, service_date, submitted_at, payer_balance, patient_balance,"
            " account_key) VALUES ($1, $2, $3, $4, 'paid', 150.00, $5, $6, 25.00, 50.00, $7)",
            claim,
            enc,
            site,
            PAYER_A,
            SERVICE_DATE,
            datetime.now(UTC) - timedelta(days=30),
            f"K{RUN}P1",
        )
        await conn.execute(
            "INSERT INTO followup.patient_account (encounter_id, site_id, version,"
            " payments_received, credit) VALUES ($1, $2, 1, 30.00, 0)",
            enc,
            site,
        )
        followup = table_json(await aging_table(conn, date.today(), sites=[site]))
    finally:
        await conn.close()
    data = await report.collect(dsn, [enc])
    assert data["aging"]["rows"]["PATIENT"]["total"] == "20.00"  # 50.00 owed less 30.00 paid
    assert data["aging"]["rows"][PAYER_A]["total"] == "25.00"
    assert data["aging"]["grand_total"] == "45.00"
    assert data["aging"] == followup
