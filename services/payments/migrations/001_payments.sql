-- payments: claims known from billing, 835 remittances, the double-entry ledger.

CREATE TABLE IF NOT EXISTS {schema}.claim (
    claim_id                   text PRIMARY KEY,
    encounter_id               text NOT NULL,
    site_id                    text NOT NULL,
    payer_id                   text NOT NULL,
    payer_name                 text,
    frequency_code             text NOT NULL,
    original_claim_id          text,
    payer_claim_control_number text,
    total_charge               numeric(12,2) NOT NULL,
    service_date               date NOT NULL,
    submitted_at               timestamptz NOT NULL,
    traceparent                text,  -- the encounter's trace, continued across mailbox hops
    lines                      jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS payments_claim_pccn ON {schema}.claim (payer_claim_control_number);

-- One row per 835 transaction (ST/SE): the deposit it announces.
CREATE TABLE IF NOT EXISTS {schema}.remittance_advice (
    advice_id          bigserial PRIMARY KEY,
    payer_key          text NOT NULL,
    trace_number       text NOT NULL,
    file_name          text NOT NULL,
    st_control_number  text NOT NULL,
    payment_amount     numeric(12,2) NOT NULL,
    payment_method     text,
    payment_date       date,
    status             text NOT NULL CHECK (status IN ('posted', 'held')),
    reason             text,
    received_at        timestamptz NOT NULL DEFAULT now(),
    -- The same check/EFT (trace number + payer) never posts twice, whatever file it arrives in.
    UNIQUE (payer_key, trace_number)
);

CREATE TABLE IF NOT EXISTS {schema}.claim_payment (
    remittance_id              text PRIMARY KEY,
    advice_id                  bigint NOT NULL REFERENCES {schema}.remittance_advice (advice_id),
    claim_id                   text REFERENCES {schema}.claim (claim_id),
    patient_control_number     text NOT NULL,
    payer_id                   text NOT NULL,
    status_code                text NOT NULL,
    charge                     numeric(12,2) NOT NULL,
    paid                       numeric(12,2) NOT NULL,
    patient_responsibility     numeric(12,2) NOT NULL,
    payer_claim_control_number text,
    state                      text NOT NULL CHECK (state IN ('posted', 'unmatched', 'held')),
    match_method               text,
    reason                     text,
    detail                     jsonb NOT NULL,
    created_at                 timestamptz NOT NULL DEFAULT now(),
    posted_at                  timestamptz
);
CREATE INDEX IF NOT EXISTS claim_payment_unmatched ON {schema}.claim_payment (patient_control_number) WHERE state = 'unmatched';
CREATE INDEX IF NOT EXISTS claim_payment_claim ON {schema}.claim_payment (claim_id);

CREATE TABLE IF NOT EXISTS {schema}.journal_entry (
    entry_id      bigserial PRIMARY KEY,
    kind          text NOT NULL,   -- charge, payment, reversal, plb, writeoff, transfer
    source        text NOT NULL UNIQUE, -- idempotency key: what caused this entry
    claim_id      text,
    payer_id      text,
    advice_id     bigint,
    memo          text,
    posted_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS {schema}.journal_line (
    line_id   bigserial PRIMARY KEY,
    entry_id  bigint NOT NULL REFERENCES {schema}.journal_entry (entry_id),
    account   text NOT NULL,
    claim_id  text,
    payer_id  text,
    amount    numeric(12,2) NOT NULL CHECK (amount <> 0)
);
CREATE INDEX IF NOT EXISTS journal_line_entry ON {schema}.journal_line (entry_id);
CREATE INDEX IF NOT EXISTS journal_line_claim ON {schema}.journal_line (claim_id, account);

-- Every journal entry sums to zero: checked for each statement that inserts lines
-- (entries are always written whole, in one statement).
CREATE OR REPLACE FUNCTION {schema}.journal_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE bad bigint;
BEGIN
    SELECT l.entry_id INTO bad FROM {schema}.journal_line l
     WHERE l.entry_id IN (SELECT DISTINCT entry_id FROM new_lines)
     GROUP BY l.entry_id HAVING sum(l.amount) <> 0 LIMIT 1;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'journal entry % does not balance', bad USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS journal_line_balanced ON {schema}.journal_line;
CREATE TRIGGER journal_line_balanced AFTER INSERT ON {schema}.journal_line
    REFERENCING NEW TABLE AS new_lines FOR EACH STATEMENT EXECUTE FUNCTION {schema}.journal_balanced();

-- The ledger is append-only: corrections are new (reversing) entries.
CREATE OR REPLACE FUNCTION {schema}.journal_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only (% on %)', TG_OP, TG_TABLE_NAME USING ERRCODE = 'check_violation';
END $$;
DROP TRIGGER IF EXISTS journal_line_append_only ON {schema}.journal_line;
CREATE TRIGGER journal_line_append_only BEFORE UPDATE OR DELETE ON {schema}.journal_line
    FOR EACH ROW EXECUTE FUNCTION {schema}.journal_append_only();

-- Write-off requests from followup (ledger ownership stays here).
CREATE TABLE IF NOT EXISTS {schema}.writeoff (
    request_id  text PRIMARY KEY,
    claim_id    text NOT NULL,
    amount      numeric(12,2) NOT NULL,
    status      text NOT NULL CHECK (status IN ('posted', 'rejected')),
    reason      text,
    at          timestamptz NOT NULL DEFAULT now()
);
