"""Named read-only queries over the services' schemas, for the operator tooling.

The demo report (``rcm/cli/report.py``), ``rcm status``, the bench and its chaos
verifier read what every service recorded; this module is the one place that SQL
lives. Each function takes a connection and answers one question. Where an
``encounter_ids`` argument is ``None`` the whole database is read; a list restricts
every count and sum to those encounters (``= ANY($1)``).

The services own their tables: a migration that renames a column read here must
change the query here (the integration tests run these against the migrated schemas).
"""

from __future__ import annotations

from decimal import Decimal

import asyncpg

# Every schema the local deployment creates (the four consuming services and the payer
# simulator), in pipeline order.
SCHEMAS = ("coding", "billing", "payments", "followup", "payer_sim")
# Intake consumes no topic (no consumer lag) but has an outbox, dead letters, 270 files to
# write and eligibility waits: `rcm status` lists it first.
INTAKE = "intake"

Ids = list[str] | None

# --------------------------------------------------------------------------- demo report


async def outcomes_by_site(conn: asyncpg.Connection, encounter_ids: Ids) -> list[asyncpg.Record]:
    """(site_id, outcome, n): encounters per site by followup's terminal outcome."""
    return await conn.fetch(
        "SELECT site_id, outcome, count(*) AS n FROM followup.encounter_outcome"
        " WHERE ($1::text[] IS NULL OR encounter_id = ANY($1)) GROUP BY 1, 2",
        encounter_ids,
    )


async def coding_by_site(conn: asyncpg.Connection, encounter_ids: Ids) -> list[asyncpg.Record]:
    """(site_id, auto, reviewed): encounters coded by the engine, and by a coder after review."""
    return await conn.fetch(
        "SELECT site_id, count(*) FILTER (WHERE coded_by = 'auto') AS auto,"
        " count(*) FILTER (WHERE route = 'review' AND status = 'coded') AS reviewed"
        " FROM coding.encounter WHERE ($1::text[] IS NULL OR encounter_id = ANY($1)) GROUP BY 1",
        encounter_ids,
    )


async def coding_routes(conn: asyncpg.Connection, encounter_ids: list[str]) -> dict[str, int]:
    """Encounters among these the engine has routed, per route (auto, review). One index
    probe per id, like ``settled_encounters``: the bench polls it on the database it measures."""
    rows = await conn.fetch(
        "SELECT e.route, count(*) AS n FROM unnest($1::text[]) AS m(id)"
        " JOIN coding.encounter e ON e.encounter_id = m.id GROUP BY 1",
        encounter_ids,
    )
    return {r["route"]: r["n"] for r in rows}


async def claim_totals_by_site(
    conn: asyncpg.Connection, encounter_ids: Ids
) -> list[asyncpg.Record]:
    """(site_id, submitted, billed, paid, pr): claims sent, their charges, what payers paid and
    what patients owe, from followup's claim projection."""
    return await conn.fetch(
        "SELECT site_id, count(*) FILTER (WHERE submitted_at IS NOT NULL) AS submitted,"
        " coalesce(sum(total_charge) FILTER (WHERE submitted_at IS NOT NULL), 0) AS billed,"
        " coalesce(sum(paid), 0) AS paid, coalesce(sum(patient_responsibility), 0) AS pr"
        " FROM followup.claim WHERE ($1::text[] IS NULL OR encounter_id = ANY($1)) GROUP BY 1",
        encounter_ids,
    )


async def open_work_items_by_site(
    conn: asyncpg.Connection, encounter_ids: Ids
) -> list[asyncpg.Record]:
    """(site_id, n): followup work items not yet resolved."""
    return await conn.fetch(
        "SELECT site_id, count(*) AS n FROM followup.work_item WHERE status <> 'resolved'"
        " AND ($1::text[] IS NULL OR encounter_id = ANY($1)) GROUP BY 1",
        encounter_ids,
    )


async def billing_claims_by_status(
    conn: asyncpg.Connection, encounter_ids: Ids
) -> list[asyncpg.Record]:
    """(status, n): billing's claims (originals and corrections) by their status."""
    return await conn.fetch(
        "SELECT status, count(*) AS n FROM billing.claim"
        " WHERE ($1::text[] IS NULL OR encounter_id = ANY($1)) GROUP BY 1 ORDER BY 1",
        encounter_ids,
    )


async def denials_by_category(conn: asyncpg.Connection, encounter_ids: Ids) -> list[asyncpg.Record]:
    """(category, action, n, amount): denial work items, the most frequent first."""
    return await conn.fetch(
        "SELECT category, action, count(*) AS n, sum(amount) AS amount FROM followup.work_item"
        " WHERE source_key LIKE 'denial:%' AND ($1::text[] IS NULL OR encounter_id = ANY($1))"
        " GROUP BY 1, 2 ORDER BY 3 DESC",
        encounter_ids,
    )


async def unmatched_remittance_count(conn: asyncpg.Connection, encounter_ids: Ids) -> int:
    """Claim payments waiting for their claim. An unmatched payment has no claim yet, so it is
    counted for an encounter when its patient control number is one of billing's claim ids."""
    return await conn.fetchval(
        "SELECT count(*) FROM payments.claim_payment WHERE state = 'unmatched'"
        " AND ($1::text[] IS NULL OR patient_control_number IN"
        "  (SELECT claim_id FROM billing.claim WHERE encounter_id = ANY($1)))",
        encounter_ids,
    )


async def dead_letter_count(conn: asyncpg.Connection, schema: str, encounter_ids: Ids) -> int:
    """Messages ``schema``'s consumer dead-lettered (with encounters: those naming one of them).
    Raises ``ValueError`` for a schema that is not one of ``SCHEMAS``."""
    return await conn.fetchval(
        f"SELECT count(*) FROM {_schema(schema)}.dead_letter"
        " WHERE ($1::text[] IS NULL OR encounter_id = ANY($1))",
        encounter_ids,
    )


async def open_balances(conn: asyncpg.Connection, encounter_ids: Ids) -> list[asyncpg.Record]:
    """Followup's claims with a payer or patient balance, the rows its aging is built from
    (``services.followup.aging_view.aging_items``): the same columns as followup's own query."""
    return await conn.fetch(
        "SELECT c.claim_id, c.site_id, coalesce(c.payer_id, '(unknown)') AS payer_id,"
        " c.service_date, c.submitted_at, c.payer_balance, c.patient_balance,"
        " coalesce(p.account_key, c.account_key, 'E' || c.encounter_id) AS account_key"
        " FROM followup.claim c LEFT JOIN followup.encounter_party p USING (encounter_id)"
        " WHERE (c.payer_balance <> 0 OR c.patient_balance <> 0) AND c.service_date IS NOT NULL"
        "   AND ($1::text[] IS NULL OR c.encounter_id = ANY($1))",
        encounter_ids,
    )


async def statements_by_cycle(conn: asyncpg.Connection, encounter_ids: Ids) -> list[asyncpg.Record]:
    """(cycle, n, due): patient statements issued per dunning cycle and the amount they ask.
    With encounters: the statements that bill a claim of one of them."""
    return await conn.fetch(
        "SELECT cycle, count(*) AS n, coalesce(sum(amount_due), 0) AS due FROM followup.statement s"
        " WHERE ($1::text[] IS NULL OR EXISTS (SELECT 1 FROM followup.claim c"
        "  WHERE c.claim_id = ANY(s.claim_ids) AND c.encounter_id = ANY($1)))"
        " GROUP BY 1 ORDER BY 1",
        encounter_ids,
    )


async def reconciliation(conn: asyncpg.Connection, encounter_ids: Ids) -> list[asyncpg.Record]:
    """Per payer and payment date: deposits announced (BPR02), cash posted from them, and what
    waits (held, unmatched), as payments' ``GET /reconciliation`` reports them.

    A deposit is one remittance advice and pays many claims, so with encounters the advices
    that pay any of them are reconciled whole (posted + held + unmatched = deposits still holds).
    """
    return await conn.fetch(
        "WITH ra AS (SELECT * FROM payments.remittance_advice WHERE $1::text[] IS NULL"
        "  OR advice_id IN (SELECT cp.advice_id FROM payments.claim_payment cp"
        "   JOIN billing.claim b ON b.claim_id IN (cp.claim_id, cp.patient_control_number)"
        "   WHERE b.encounter_id = ANY($1))),"
        " cash AS (SELECT e.advice_id, sum(l.amount) AS amount"
        "  FROM payments.journal_entry e JOIN payments.journal_line l USING (entry_id)"
        "  WHERE e.advice_id IN (SELECT advice_id FROM ra) AND l.account = 'cash_clearing'"
        "  GROUP BY 1),"
        " waiting AS (SELECT advice_id, sum(paid) FILTER (WHERE state = 'held') AS held,"
        "  sum(paid) FILTER (WHERE state = 'unmatched') AS unmatched"
        "  FROM payments.claim_payment WHERE advice_id IN (SELECT advice_id FROM ra) GROUP BY 1)"
        " SELECT ra.payer_key AS payer_id, ra.payment_date, count(*) AS advices,"
        " count(*) FILTER (WHERE ra.status = 'held') AS held_advices,"
        " sum(ra.payment_amount) AS deposits, coalesce(sum(cash.amount), 0) AS posted,"
        " coalesce(sum(CASE WHEN ra.status = 'held' THEN ra.payment_amount ELSE w.held END), 0)"
        "  AS held,"
        " coalesce(sum(CASE WHEN ra.status = 'posted' THEN w.unmatched END), 0) AS unmatched"
        " FROM ra LEFT JOIN cash USING (advice_id) LEFT JOIN waiting w USING (advice_id)"
        " GROUP BY 1, 2 ORDER BY 1, 2",
        encounter_ids,
    )


# --------------------------------------------------------------------------- rcm status


async def present_schemas(conn: asyncpg.Connection) -> set[str]:
    """The names of the schemas that exist in the database."""
    return {r[0] for r in await conn.fetch("SELECT schema_name FROM information_schema.schemata")}


# --------------------------------------------------------------------------- bench

_STAGE_WINDOWS = {
    "coding": "SELECT min(coded_at), max(coded_at), count(coded_at) FROM coding.encounter"
    " WHERE encounter_id = ANY($1)",
    "billing": "SELECT min(created_at), max(created_at), count(*) FROM billing.claim"
    " WHERE encounter_id = ANY($1)",
    "payments": "SELECT min(cp.posted_at), max(cp.posted_at), count(cp.posted_at)"
    " FROM payments.claim_payment cp JOIN payments.claim c USING (claim_id)"
    " WHERE c.encounter_id = ANY($1)",
    "followup": "SELECT min(at), max(at), count(*) FROM followup.encounter_outcome"
    " WHERE encounter_id = ANY($1)",
}


async def stage_windows(
    conn: asyncpg.Connection, encounter_ids: list[str]
) -> dict[str, asyncpg.Record]:
    """Per pipeline stage (coding, billing, payments, followup): (first, last, count) of the
    times it finished its work on these encounters."""
    return {stage: await conn.fetchrow(sql, encounter_ids) for stage, sql in _STAGE_WINDOWS.items()}


async def posted_at_by_encounter(
    conn: asyncpg.Connection, encounter_ids: list[str]
) -> list[asyncpg.Record]:
    """(encounter_id, posted epoch seconds): when payments posted each encounter's remittance."""
    return await conn.fetch(
        "SELECT c.encounter_id, extract(epoch FROM cp.posted_at) AS posted"
        " FROM payments.claim_payment cp JOIN payments.claim c USING (claim_id)"
        " WHERE c.encounter_id = ANY($1) AND cp.state = 'posted'",
        encounter_ids,
    )


async def hop_times(conn: asyncpg.Connection, encounter_ids: list[str]) -> list[asyncpg.Record]:
    """Per encounter with an original claim: its coding route and the epoch seconds at which
    each hop's service recorded it (Postgres now() of the writing transaction): received,
    coded, claimed, submitted (837 written), remitted (835 read), posted; None if not yet."""
    return await conn.fetch(
        """
SELECT e.encounter_id, e.route,
       extract(epoch FROM e.received_at) AS received, extract(epoch FROM e.coded_at) AS coded,
       extract(epoch FROM c.created_at) AS claimed,
       (SELECT extract(epoch FROM min(h.at)) FROM billing.claim_history h
         WHERE h.claim_id = c.claim_id AND h.status = 'submitted') AS submitted,
       (SELECT extract(epoch FROM min(ra.received_at)) FROM payments.claim_payment cp
         JOIN payments.remittance_advice ra USING (advice_id) WHERE cp.claim_id = c.claim_id)
         AS remitted,
       (SELECT extract(epoch FROM min(cp.posted_at)) FROM payments.claim_payment cp
         WHERE cp.claim_id = c.claim_id AND cp.state = 'posted') AS posted
  FROM coding.encounter e
  JOIN billing.claim c ON c.encounter_id = e.encounter_id AND c.frequency_code = '1'
   AND c.cob_sequence = 'primary'
 WHERE e.encounter_id = ANY($1)
""",
        encounter_ids,
    )


_STAGE_TIMES = {
    "coded": "SELECT extract(epoch FROM coded_at) FROM coding.encounter"
    " WHERE encounter_id = ANY($1) AND coded_at IS NOT NULL",
    "claimed": "SELECT extract(epoch FROM created_at) FROM billing.claim"
    " WHERE encounter_id = ANY($1) AND frequency_code = '1' AND cob_sequence = 'primary'",
    "posted": "SELECT extract(epoch FROM cp.posted_at)"
    " FROM payments.claim_payment cp JOIN payments.claim c USING (claim_id)"
    " WHERE c.encounter_id = ANY($1) AND cp.posted_at IS NOT NULL",
    "settled": "SELECT extract(epoch FROM at) FROM followup.encounter_outcome"
    " WHERE encounter_id = ANY($1)",
}


async def stage_times(conn: asyncpg.Connection, encounter_ids: list[str]) -> dict[str, list[float]]:
    """Per pipeline stage (coded, claimed: the original claim, posted, settled: a terminal
    outcome), the epoch seconds at which each of these encounters passed it."""
    return {
        stage: [float(r[0]) for r in await conn.fetch(sql, encounter_ids)]
        for stage, sql in _STAGE_TIMES.items()
    }


async def settled_encounters(conn: asyncpg.Connection, encounter_ids: list[str]) -> set[str]:
    """Which of these encounters have a terminal outcome in followup.

    One index probe per id: ``= ANY($1)`` with thousands of ids compared every row with every
    id, and the bench polls this twice a second on the database it measures.
    """
    rows = await conn.fetch(
        "SELECT o.encounter_id FROM unnest($1::text[]) AS m(id)"
        " JOIN followup.encounter_outcome o ON o.encounter_id = m.id",
        encounter_ids,
    )
    return {r["encounter_id"] for r in rows}


# --------------------------------------------------------------------------- chaos invariants


async def outcome_rows_per_encounter(
    conn: asyncpg.Connection, encounter_ids: list[str]
) -> list[asyncpg.Record]:
    """(encounter_id, n): the encounters among these that reached a terminal outcome."""
    return await conn.fetch(
        "SELECT encounter_id, count(*) AS n FROM followup.encounter_outcome"
        " WHERE encounter_id = ANY($1) GROUP BY 1",
        encounter_ids,
    )


async def encounters_with_several_originals(
    conn: asyncpg.Connection, encounter_ids: list[str]
) -> int:
    """Encounters among these that billing made more than one original claim for, to one payer
    in the coordination of benefits (a secondary's claim is an original to another payer)."""
    return await conn.fetchval(
        "SELECT count(*) FROM (SELECT encounter_id FROM billing.claim WHERE encounter_id = ANY($1)"
        " AND frequency_code = '1' GROUP BY encounter_id, cob_sequence HAVING count(*) > 1) x",
        encounter_ids,
    )


async def claims_adjudicated_twice(conn: asyncpg.Connection) -> int:
    """Adjudications by the payer simulator beyond one per claim."""
    return await conn.fetchval(
        "SELECT count(*) - count(DISTINCT claim_id) FROM payer_sim.adjudication"
    )


async def claims_posted_twice(conn: asyncpg.Connection) -> int:
    """Claims with more than one posted primary/secondary/tertiary payment (CLP02 1-4) from
    the same payer."""
    return await conn.fetchval(
        "SELECT count(*) FROM (SELECT claim_id, payer_id FROM payments.claim_payment"
        " WHERE state = 'posted' AND status_code IN ('1', '2', '3', '4')"
        " GROUP BY 1, 2 HAVING count(*) > 1) x"
    )


async def claims_followed_up_twice(conn: asyncpg.Connection) -> int:
    """Claims for which followup applied more than one remittance that is not a reversal from
    the same payer (a crossover payer's 835 pays the claim the primary forwarded to it; the
    remittance id starts with the payer id)."""
    return await conn.fetchval(
        "SELECT count(*) FROM (SELECT claim_id FROM followup.remittance"
        " WHERE status_code <> '22' GROUP BY claim_id, split_part(remittance_id, ':', 1)"
        " HAVING count(*) > 1) x"
    )


async def duplicate_statements(conn: asyncpg.Connection) -> int:
    """Patient statements recorded more than once (0 where followup has no statement table)."""
    if not await conn.fetchval("SELECT to_regclass('followup.statement') IS NOT NULL"):
        return 0
    return await conn.fetchval(
        "SELECT count(*) - count(DISTINCT statement_id) FROM followup.statement"
    )


async def unbalanced_journal_entries(conn: asyncpg.Connection) -> int:
    """Journal entries in payments' ledger whose lines do not sum to zero."""
    return await conn.fetchval(
        "SELECT count(*) FROM (SELECT entry_id FROM payments.journal_line"
        " GROUP BY 1 HAVING sum(amount) <> 0) x"
    )


async def ledger_total(conn: asyncpg.Connection) -> Decimal:
    """The sum of every line in payments' ledger (zero when the books balance)."""
    return await conn.fetchval("SELECT coalesce(sum(amount), 0) FROM payments.journal_line")


async def claim_ledger_totals(
    conn: asyncpg.Connection, encounter_ids: list[str]
) -> list[asyncpg.Record]:
    """Per original claim of these encounters with ledger lines: its encounter and charge,
    payments' ledger by account (cash, patient, payer, adj: contractual and other adjustments,
    credit: patient payments' credit applied to it, billed: gross charges recognised on it,
    none on a next payer's claim, which a transfer opens) and what followup says was paid
    (``fu_paid``, None when followup has no such claim)."""
    return await conn.fetch(
        "WITH led AS (SELECT claim_id,"
        "  sum(amount) FILTER (WHERE account = 'cash_clearing') AS cash,"
        "  sum(amount) FILTER (WHERE account = 'patient_receivable') AS patient,"
        "  sum(amount) FILTER (WHERE account = 'payer_receivable') AS payer,"
        "  sum(amount) FILTER (WHERE account IN ('contractual_adjustment', 'other_adjustment'))"
        "   AS adj,"
        "  sum(amount) FILTER (WHERE account = 'patient_credit') AS credit,"
        "  -sum(amount) FILTER (WHERE account = 'gross_charges') AS billed"
        "  FROM payments.journal_line WHERE claim_id IS NOT NULL GROUP BY 1)"
        " SELECT c.claim_id, c.encounter_id, c.total_charge, coalesce(l.cash, 0) AS cash,"
        " coalesce(l.patient, 0) AS patient, coalesce(l.payer, 0) AS payer,"
        " coalesce(l.adj, 0) AS adj, coalesce(l.credit, 0) AS credit,"
        " coalesce(l.billed, 0) AS billed, f.paid AS fu_paid"
        " FROM payments.claim c JOIN led l USING (claim_id)"
        " LEFT JOIN followup.claim f USING (claim_id)"
        " WHERE c.encounter_id = ANY($1) AND c.frequency_code = '1'",
        encounter_ids,
    )


async def dead_letter_sources(conn: asyncpg.Connection, schema: str) -> set[tuple[str, int, int]]:
    """(topic, partition, offset) of every message ``schema``'s consumer dead-lettered.
    Raises ``ValueError`` for a schema that is not one of ``SCHEMAS``."""
    rows = await conn.fetch(
        f"SELECT source_topic, source_partition, source_offset FROM {_schema(schema)}.dead_letter"
    )
    return {(r["source_topic"], r["source_partition"], r["source_offset"]) for r in rows}


# --------------------------------------------------------------------------- consistency

REMITTANCE_OUTCOMES = ("paid", "partially_paid", "denied")


async def remittance_outcome_disagreements(
    conn: asyncpg.Connection, encounter_ids: Ids
) -> list[asyncpg.Record]:
    """(claim_id, billing_status, followup_state): claims where billing's status and
    followup's state disagree about a remittance outcome (paid, partially_paid, denied): one
    of the two holds an outcome and the other holds something else, or has no such claim.
    Both read the outcome payments decided (``remittance.received``), so this is empty."""
    return await conn.fetch(
        "SELECT claim_id, b.status AS billing_status, f.state AS followup_state"
        " FROM (SELECT claim_id, status, encounter_id FROM billing.claim"
        "  WHERE $1::text[] IS NULL OR encounter_id = ANY($1)) b"
        " FULL JOIN (SELECT claim_id, state, encounter_id FROM followup.claim"
        "  WHERE $1::text[] IS NULL OR encounter_id = ANY($1)) f USING (claim_id)"
        " WHERE (b.status = ANY($2) OR f.state = ANY($2))"
        "  AND b.status IS DISTINCT FROM f.state"
        " ORDER BY claim_id",
        encounter_ids,
        list(REMITTANCE_OUTCOMES),
    )


def _schema(name: str) -> str:
    if name not in SCHEMAS:
        raise ValueError(f"unknown schema {name!r}; expected one of {', '.join(SCHEMAS)}")
    return name


# --------------------------------------------------------------------------- COB and patient payments (chaos)

_LATER_PAYER = (
    " FROM billing.claim c WHERE c.encounter_id = ANY($1) AND c.frequency_code = '1'"
    " AND c.cob_sequence = 'primary' AND jsonb_array_length(c.coded->'encounter'->'coverages') > 1"
)


async def cob_counts(conn: asyncpg.Connection, encounter_ids: list[str]) -> asyncpg.Record:
    """Coordination of benefits for these encounters: ``with_next_payer`` (primary claims with
    another coverage on file), ``secondary`` and ``tertiary`` claims, ``crossovers`` (billing
    waited for a forwarded claim's 835) and ``crossovers_received``; ``unrecorded``: claims
    whose payer's decision payments posted but billing never recorded; ``unbilled``: recorded
    decisions with a coverage after them on file but neither that payer's claim nor a
    crossover wait for it; ``in_flight``: secondary/tertiary claims sent and not answered."""
    return await conn.fetchrow(
        f"SELECT (SELECT count(*) {_LATER_PAYER}) AS with_next_payer,"
        " (SELECT count(*) FROM billing.claim WHERE encounter_id = ANY($1)"
        "  AND frequency_code = '1' AND cob_sequence = 'secondary') AS secondary,"
        " (SELECT count(*) FROM billing.claim WHERE encounter_id = ANY($1)"
        "  AND frequency_code = '1' AND cob_sequence = 'tertiary') AS tertiary,"
        " (SELECT count(*) FROM billing.crossover_wait w JOIN billing.claim c"
        "  ON c.claim_id = w.primary_claim_id WHERE c.encounter_id = ANY($1)) AS crossovers,"
        " (SELECT count(*) FROM billing.crossover_wait w JOIN billing.claim c"
        "  ON c.claim_id = w.primary_claim_id WHERE c.encounter_id = ANY($1)"
        "  AND w.status = 'received') AS crossovers_received,"
        " (SELECT count(*) FROM billing.claim c WHERE c.encounter_id = ANY($1)"
        "  AND c.frequency_code = '1' AND EXISTS (SELECT FROM payments.claim_payment p"
        "  WHERE p.claim_id = c.claim_id AND p.payer_id = c.payer_id AND p.state = 'posted'"
        "  AND p.status_code <> '22') AND NOT EXISTS (SELECT FROM billing.prior_adjudication a"
        "  WHERE a.primary_claim_id = coalesce(c.primary_claim_id, c.claim_id)"
        "  AND a.cob_sequence = c.cob_sequence)) AS unrecorded,"
        " (WITH rk(seq, n) AS (VALUES ('primary', 1), ('secondary', 2), ('tertiary', 3))"
        "  SELECT count(*) FROM billing.claim c"
        "  JOIN billing.prior_adjudication a ON a.primary_claim_id = c.claim_id"
        "  JOIN rk done ON done.seq = a.cob_sequence"
        "  CROSS JOIN LATERAL (SELECT r.seq FROM"
        "   jsonb_array_elements(c.coded->'encounter'->'coverages') v"
        "   JOIN rk r ON r.seq = v->>'sequence' WHERE r.n > done.n ORDER BY r.n LIMIT 1) nxt"
        "  WHERE c.encounter_id = ANY($1) AND c.frequency_code = '1'"
        "  AND c.cob_sequence = 'primary'"
        "  AND NOT EXISTS (SELECT FROM billing.claim n WHERE n.primary_claim_id = c.claim_id"
        "  AND n.cob_sequence = nxt.seq) AND NOT EXISTS (SELECT FROM billing.crossover_wait w"
        "  WHERE w.primary_claim_id = c.claim_id AND w.cob_sequence = nxt.seq)) AS unbilled,"
        " (SELECT count(*) FROM billing.claim WHERE encounter_id = ANY($1)"
        "  AND frequency_code = '1' AND cob_sequence <> 'primary'"
        "  AND status IN ('created', 'submitted', 'accepted')) AS in_flight",
        encounter_ids,
    )


async def later_claims_in_flight(
    conn: asyncpg.Connection, encounter_ids: list[str]
) -> list[asyncpg.Record]:
    """The secondary/tertiary claims ``cob_counts`` counts as in flight, with where each
    stopped: its status, whether it went out in a file, and what payments holds for it."""
    return await conn.fetch(
        "SELECT c.claim_id, c.cob_sequence, c.status, c.payer_id, c.file_name IS NOT NULL AS sent,"
        " (SELECT string_agg(p.state || ':' || coalesce(p.status_code, ''), ',')"
        "  FROM payments.claim_payment p WHERE p.claim_id = c.claim_id) AS payments"
        " FROM billing.claim c WHERE c.encounter_id = ANY($1) AND c.frequency_code = '1'"
        " AND c.cob_sequence <> 'primary' AND c.status IN ('created', 'submitted', 'accepted')"
        " ORDER BY c.claim_id",
        encounter_ids,
    )


async def patient_balances(
    conn: asyncpg.Connection, encounter_ids: list[str]
) -> list[asyncpg.Record]:
    """(encounter_id, claim_id, site_id, balance): the encounters' original claims on which
    the patient owes something in payments' ledger."""
    return await conn.fetch(
        "SELECT c.encounter_id, c.claim_id, c.site_id, sum(l.amount) AS balance"
        " FROM payments.claim c JOIN payments.journal_line l ON l.claim_id = c.claim_id"
        " WHERE c.encounter_id = ANY($1) AND c.frequency_code = '1'"
        " AND l.account = 'patient_receivable' GROUP BY 1, 2, 3 HAVING sum(l.amount) > 0",
        encounter_ids,
    )


async def patient_payments_by_key(
    conn: asyncpg.Connection, keys: list[str]
) -> list[asyncpg.Record]:
    """Per patient payment taken under one of these Idempotency-Keys: its key, amount, the
    cash its receipt entry posted, the allocations recorded and the credit their entries
    applied to claims."""
    return await conn.fetch(
        "SELECT p.idempotency_key AS key, p.payment_id, p.amount,"
        " (SELECT coalesce(sum(l.amount), 0) FROM payments.journal_entry e"
        "  JOIN payments.journal_line l USING (entry_id)"
        "  WHERE e.source = 'patient-payment:' || p.payment_id AND l.account = 'cash_clearing')"
        "  AS cash,"
        " (SELECT coalesce(sum(a.amount), 0) FROM payments.patient_payment_allocation a"
        "  WHERE a.payment_id = p.payment_id) AS allocated,"
        " (SELECT coalesce(sum(l.amount), 0) FROM payments.journal_entry e"
        "  JOIN payments.journal_line l USING (entry_id)"
        "  WHERE e.source LIKE 'patient-payment:' || p.payment_id || ':%'"
        "  AND l.account = 'patient_credit') AS applied"
        " FROM payments.patient_payment p WHERE p.idempotency_key = ANY($1)",
        keys,
    )


# --------------------------------------------------------------------------- demo report: beyond the primary payer
# Eligibility (intake), estimates and coordination of benefits (billing), patient A/R (payments),
# per site. Counted over the given encounters (a patient account is the encounter id).


async def eligibility_by_site(conn: asyncpg.Connection, encounter_ids: Ids) -> list[asyncpg.Record]:
    """Per site, intake's eligibility checks (270/271): ``inquiries`` (270s sent, retries
    included), ``aaa`` (answers that were AAA rejections) and, by each coverage's newest check,
    ``checked`` (coverages asked about), ``active``, ``inactive``, ``other_primary`` (active, but
    the 271 named another payer primary) and ``unverified`` (no answer yet, a rejection or
    retries spent: the coverage went to billing unverified)."""
    return await conn.fetch(
        "WITH c AS (SELECT * FROM intake.eligibility_check"
        "  WHERE $1::text[] IS NULL OR encounter_id = ANY($1)),"
        " newest AS (SELECT DISTINCT ON (encounter_id, sequence) site_id, outcome, summary FROM c"
        "  ORDER BY encounter_id, sequence, created_at DESC, attempt DESC),"
        " per AS (SELECT site_id, count(*) AS checked,"
        "  count(*) FILTER (WHERE outcome = 'active') AS active,"
        "  count(*) FILTER (WHERE outcome = 'inactive') AS inactive,"
        "  count(*) FILTER (WHERE outcome = 'active'"
        "   AND coalesce(summary->>'other_primary_payer_id', summary->>'other_primary_payer')"
        "   IS NOT NULL) AS other_primary,"
        "  count(*) FILTER (WHERE outcome IS NULL OR outcome NOT IN ('active', 'inactive'))"
        "   AS unverified FROM newest GROUP BY 1),"
        " sent AS (SELECT site_id, count(*) AS inquiries,"
        "  count(*) FILTER (WHERE reason_code IS NOT NULL) AS aaa FROM c GROUP BY 1)"
        " SELECT * FROM per JOIN sent USING (site_id) ORDER BY site_id",
        encounter_ids,
    )


async def estimates_by_site(conn: asyncpg.Connection, encounter_ids: Ids) -> list[asyncpg.Record]:
    """Per site, billing's patient estimates: ``made``, ``self_pay`` (Good Faith Estimates),
    ``unknown`` (the 271 stated no benefits: no amount), ``estimated`` (the patient
    responsibility they foresaw), ``remitted_count`` (those an 835 answered) and ``remitted``
    (what the 835s then said the patient owes: the last payer that adjudicated decides, its
    remittances summed with reversals netting out, as billing's ``GET /encounters/{id}/estimate``
    reads it; 'primary' < 'secondary' < 'tertiary' sort as the payers follow each other)."""
    return await conn.fetch(
        "WITH r AS (SELECT r.encounter_id, r.patient_responsibility,"
        "  coalesce(c.cob_sequence, 'primary') AS seq"
        "  FROM billing.remitted_patient_responsibility r"
        "  LEFT JOIN billing.claim c ON c.claim_id = r.claim_id"
        "  WHERE $1::text[] IS NULL OR r.encounter_id = ANY($1)),"
        " last AS (SELECT encounter_id, sum(patient_responsibility) AS pr FROM r"
        "  WHERE (encounter_id, seq) IN (SELECT encounter_id, max(seq) FROM r GROUP BY 1)"
        "  GROUP BY 1)"
        " SELECT e.site_id, count(*) AS made,"
        " count(*) FILTER (WHERE e.basis = 'self_pay') AS self_pay,"
        " count(*) FILTER (WHERE e.basis = 'unknown') AS unknown,"
        " coalesce(sum(e.patient_responsibility), 0) AS estimated,"
        " count(last.pr) AS remitted_count, coalesce(sum(last.pr), 0) AS remitted"
        " FROM billing.patient_estimate e LEFT JOIN last USING (encounter_id)"
        " WHERE $1::text[] IS NULL OR e.encounter_id = ANY($1) GROUP BY 1 ORDER BY 1",
        encounter_ids,
    )


async def later_payers_by_site(
    conn: asyncpg.Connection, encounter_ids: Ids
) -> list[asyncpg.Record]:
    """Per site, coordination of benefits: ``with_next_payer`` (primary claims with another
    coverage on file), ``secondary`` and ``tertiary`` claims built, those ``later_paid``
    (paid or partially paid), ``later_denied`` and ``later_held``, the cash their payers posted
    (``later_paid_amount``), ``crossovers`` (a payer forwarded the claim), ``crossovers_received``
    (the next payer's 835 came) and the cash crossover payers posted (``crossover_paid_amount``)."""
    return await conn.fetch(
        "WITH cl AS (SELECT * FROM billing.claim WHERE frequency_code = '1'"
        "  AND ($1::text[] IS NULL OR encounter_id = ANY($1))),"
        " later AS (SELECT site_id,"
        "  count(*) FILTER (WHERE cob_sequence = 'secondary') AS secondary,"
        "  count(*) FILTER (WHERE cob_sequence = 'tertiary') AS tertiary,"
        "  count(*) FILTER (WHERE status IN ('paid', 'partially_paid')) AS later_paid,"
        "  count(*) FILTER (WHERE status = 'denied') AS later_denied,"
        "  count(*) FILTER (WHERE status = 'held') AS later_held,"
        "  coalesce(sum((SELECT sum(p.paid) FROM payments.claim_payment p"
        "   WHERE p.claim_id = cl.claim_id AND p.state = 'posted')), 0) AS later_paid_amount"
        "  FROM cl WHERE cob_sequence <> 'primary' GROUP BY 1),"
        " firsts AS (SELECT site_id, count(*) FILTER (WHERE"
        "  jsonb_array_length(coalesce(coded->'encounter'->'coverages', '[]')) > 1)"
        "  AS with_next_payer FROM cl WHERE cob_sequence = 'primary' GROUP BY 1),"
        " xo AS (SELECT w.site_id, count(*) AS crossovers,"
        "  count(*) FILTER (WHERE w.status = 'received') AS crossovers_received,"
        "  coalesce(sum((SELECT sum(p.paid) FROM payments.claim_payment p"
        "   WHERE p.claim_id = w.primary_claim_id AND p.payer_id = w.payer_id"
        "   AND p.state = 'posted')), 0) AS crossover_paid_amount"
        "  FROM billing.crossover_wait w JOIN cl ON cl.claim_id = w.primary_claim_id GROUP BY 1)"
        " SELECT site_id, coalesce(f.with_next_payer, 0) AS with_next_payer,"
        " coalesce(l.secondary, 0) AS secondary, coalesce(l.tertiary, 0) AS tertiary,"
        " coalesce(l.later_paid, 0) AS later_paid, coalesce(l.later_denied, 0) AS later_denied,"
        " coalesce(l.later_held, 0) AS later_held,"
        " coalesce(l.later_paid_amount, 0) AS later_paid_amount,"
        " coalesce(x.crossovers, 0) AS crossovers,"
        " coalesce(x.crossovers_received, 0) AS crossovers_received,"
        " coalesce(x.crossover_paid_amount, 0) AS crossover_paid_amount"
        " FROM firsts f FULL JOIN later l USING (site_id) FULL JOIN xo x USING (site_id)"
        " ORDER BY site_id",
        encounter_ids,
    )


async def patient_ar_by_site(conn: asyncpg.Connection, encounter_ids: Ids) -> list[asyncpg.Record]:
    """Per site, patient A/R in payments: patient ``payments`` and their ``payments_amount``;
    ``refunds`` (any state), ``refunds_issued`` and ``refunded_amount`` (issued); payment
    ``plans`` and those ``plans_active``, ``plans_defaulted``, ``plans_completed``; credit
    applied by payments when patient responsibility arrived (``credits_applied``,
    ``credit_applied_amount``; a patient's own allocations are not counted) and the unapplied
    ``credit_balance`` left on the accounts."""
    return await conn.fetch(
        "WITH pay AS (SELECT site_id, count(*) AS payments, sum(amount) AS payments_amount"
        "  FROM payments.patient_payment WHERE $1::text[] IS NULL OR account = ANY($1)"
        "  GROUP BY 1),"
        " ref AS (SELECT site_id, count(*) AS refunds,"
        "  count(*) FILTER (WHERE state = 'issued') AS refunds_issued,"
        "  coalesce(sum(amount) FILTER (WHERE state = 'issued'), 0) AS refunded_amount"
        "  FROM payments.refund WHERE $1::text[] IS NULL OR account = ANY($1) GROUP BY 1),"
        " plan AS (SELECT site_id, count(*) AS plans,"
        "  count(*) FILTER (WHERE status = 'active') AS plans_active,"
        "  count(*) FILTER (WHERE status = 'defaulted') AS plans_defaulted,"
        "  count(*) FILTER (WHERE status = 'completed') AS plans_completed"
        "  FROM payments.payment_plan WHERE $1::text[] IS NULL OR account = ANY($1) GROUP BY 1),"
        " applied AS (SELECT c.site_id, count(DISTINCT e.entry_id) AS credits_applied,"
        "  sum(l.amount) AS credit_applied_amount FROM payments.journal_entry e"
        "  JOIN payments.journal_line l USING (entry_id) JOIN payments.claim c"
        "  ON c.claim_id = e.claim_id WHERE e.kind = 'credit_applied'"
        "  AND e.source LIKE 'credit-applied:%' AND l.account = 'patient_credit'"
        "  AND ($1::text[] IS NULL OR c.encounter_id = ANY($1)) GROUP BY 1),"
        " credit AS (SELECT (SELECT c.site_id FROM payments.claim c"
        "   WHERE c.encounter_id = l.patient_account LIMIT 1) AS site_id,"
        "  -sum(l.amount) AS credit_balance FROM payments.journal_line l"
        "  WHERE l.account = 'patient_credit' AND l.patient_account IS NOT NULL"
        "  AND ($1::text[] IS NULL OR l.patient_account = ANY($1)) GROUP BY l.patient_account)"
        " SELECT site_id, coalesce(pay.payments, 0) AS payments,"
        " coalesce(pay.payments_amount, 0) AS payments_amount,"
        " coalesce(ref.refunds, 0) AS refunds, coalesce(ref.refunds_issued, 0) AS refunds_issued,"
        " coalesce(ref.refunded_amount, 0) AS refunded_amount, coalesce(plan.plans, 0) AS plans,"
        " coalesce(plan.plans_active, 0) AS plans_active,"
        " coalesce(plan.plans_defaulted, 0) AS plans_defaulted,"
        " coalesce(plan.plans_completed, 0) AS plans_completed,"
        " coalesce(applied.credits_applied, 0) AS credits_applied,"
        " coalesce(applied.credit_applied_amount, 0) AS credit_applied_amount,"
        " coalesce(cr.credit_balance, 0) AS credit_balance"
        " FROM pay FULL JOIN ref USING (site_id) FULL JOIN plan USING (site_id)"
        " FULL JOIN applied USING (site_id)"
        " FULL JOIN (SELECT site_id, sum(credit_balance) AS credit_balance FROM credit"
        "  WHERE site_id IS NOT NULL GROUP BY 1) cr USING (site_id) ORDER BY site_id",
        encounter_ids,
    )


async def statement_accounts(
    conn: asyncpg.Connection, encounter_ids: list[str]
) -> list[asyncpg.Record]:
    """(encounter_id, site_id, amount_due, balances): the encounters among these that a patient
    statement billed, with the amount the newest one asked and, per original claim, the
    patient receivable in payments' ledger (``balances``: {claim_id: amount} where positive).
    What the demo's patients pay against, as a patient portal would."""
    return await conn.fetch(
        "WITH st AS (SELECT DISTINCT ON (encounter_id) encounter_id, site_id, amount_due"
        "  FROM followup.statement WHERE encounter_id = ANY($1)"
        "  ORDER BY encounter_id, statement_date DESC, cycle DESC)"
        " SELECT st.encounter_id, st.site_id, st.amount_due,"
        " (SELECT coalesce(jsonb_object_agg(b.claim_id, b.balance), '{}') FROM"
        "  (SELECT c.claim_id, sum(l.amount) AS balance FROM payments.claim c"
        "   JOIN payments.journal_line l ON l.claim_id = c.claim_id"
        "   WHERE c.encounter_id = st.encounter_id AND l.account = 'patient_receivable'"
        "   GROUP BY 1 HAVING sum(l.amount) > 0) b) AS balances"
        " FROM st ORDER BY st.encounter_id",
        encounter_ids,
    )


# --------------------------------------------------------------------------- rcm status: intake


async def eligibility_waits(conn: asyncpg.Connection) -> dict[str, int]:
    """Intake's eligibility work in flight: ``checks_waiting`` (270s sent, no 271 yet),
    ``checks_retrying`` (to be sent again at their retry time), ``encounters_held`` (encounters
    whose encounter.documented waits for their 271s) and ``work_items_open`` (registration and
    review work AAA rejections opened)."""
    row = await conn.fetchrow(
        "SELECT"
        " (SELECT count(*) FROM intake.eligibility_check WHERE state = 'sent') AS checks_waiting,"
        " (SELECT count(*) FROM intake.eligibility_check WHERE state = 'retry')"
        "  AS checks_retrying,"
        " (SELECT count(DISTINCT encounter_id) FROM intake.eligibility_hold) AS encounters_held,"
        " (SELECT count(*) FROM intake.eligibility_work_item WHERE status = 'open')"
        "  AS work_items_open"
    )
    return dict(row)


# --------------------------------------------------------------------------- patient payments in the aging


async def patient_payments(conn: asyncpg.Connection, encounter_ids: Ids) -> list[asyncpg.Record]:
    """Encounters whose patient has paid (less refunds), each with its patient account and
    oldest claim: followup's ``aging_view.patient_payments`` (``payments_received`` as
    ``patient_accounts.statement_facts`` reads it), which ``aging_items`` nets the PATIENT row by."""
    return await conn.fetch(
        "SELECT DISTINCT ON (c.encounter_id) c.encounter_id, c.claim_id, c.site_id,"
        " c.service_date, c.submitted_at, a.payments_received,"
        " coalesce(p.account_key, c.account_key, 'E' || c.encounter_id) AS account_key"
        " FROM followup.patient_account a JOIN followup.claim c USING (encounter_id)"
        " LEFT JOIN followup.encounter_party p USING (encounter_id)"
        " WHERE a.payments_received <> 0 AND c.service_date IS NOT NULL"
        "   AND ($1::text[] IS NULL OR c.encounter_id = ANY($1))"
        " ORDER BY c.encounter_id, c.service_date, c.claim_id",
        encounter_ids,
    )
