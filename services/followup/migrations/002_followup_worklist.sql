-- followup: ledger-mirroring balances, the parties a 276 needs, the biller work queue's
-- appeals / write-offs / patient transfers, claim status history and patient statements.

ALTER TABLE {schema}.claim
    ADD COLUMN IF NOT EXISTS filing_indicator text,
    ADD COLUMN IF NOT EXISTS claim_type       text,
    ADD COLUMN IF NOT EXISTS file_name        text,
    ADD COLUMN IF NOT EXISTS account_key      text,      -- opaque patient account (hash), never a name
    -- What payments' ledger holds for the claim, mirrored from the events it posts from
    -- (charge, ERA claim payments, write-offs); patient_balance also takes local transfers.
    ADD COLUMN IF NOT EXISTS payer_balance    numeric(12,2) NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS patient_balance  numeric(12,2) NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS last_inquiry_date date,     -- last 276 sent
    ADD COLUMN IF NOT EXISTS last_status_category text;  -- latest 277 / 277CA category
CREATE INDEX IF NOT EXISTS followup_claim_open ON {schema}.claim (site_id) WHERE payer_balance <> 0 OR patient_balance <> 0;
CREATE INDEX IF NOT EXISTS followup_claim_waiting ON {schema}.claim (submitted_at) WHERE remitted_at IS NULL;

-- From encounter.coded: who the claim is for and who billed it (PHI: for 276s and statements only).
CREATE TABLE IF NOT EXISTS {schema}.encounter_party (
    encounter_id     text PRIMARY KEY,
    site_id          text NOT NULL,
    account_key      text NOT NULL,
    billing_provider jsonb NOT NULL,
    patient          jsonb NOT NULL,
    subscriber       jsonb,          -- NULL when the patient is the subscriber
    member_id        text,
    relationship     text NOT NULL DEFAULT 'self',
    received_at      timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE {schema}.work_item
    ADD COLUMN IF NOT EXISTS escalation     text NOT NULL DEFAULT 'normal',
    ADD COLUMN IF NOT EXISTS recommendation text,
    ADD COLUMN IF NOT EXISTS evidence       text,
    ADD COLUMN IF NOT EXISTS leased_at      timestamptz,
    ADD COLUMN IF NOT EXISTS resolved_by    text,
    ADD COLUMN IF NOT EXISTS updated_at     timestamptz NOT NULL DEFAULT now();
-- 'waiting': out of the queue until something external answers (an appeal decision).
ALTER TABLE {schema}.work_item DROP CONSTRAINT IF EXISTS work_item_status_check;
ALTER TABLE {schema}.work_item ADD CONSTRAINT work_item_status_check
    CHECK (status IN ('open', 'leased', 'waiting', 'resolved'));
CREATE INDEX IF NOT EXISTS followup_work_claim ON {schema}.work_item (claim_id);
CREATE INDEX IF NOT EXISTS followup_work_audit_item ON {schema}.work_audit (work_item_id);

CREATE TABLE IF NOT EXISTS {schema}.appeal (
    appeal_id        bigserial PRIMARY KEY,
    work_item_id     bigint NOT NULL,
    claim_id         text NOT NULL,
    site_id          text NOT NULL,
    level            int NOT NULL DEFAULT 1,
    filed_by         text NOT NULL,
    filed_at         timestamptz NOT NULL DEFAULT now(),
    deadline_date    date,           -- last day the appeal could be filed
    note             text,
    outcome          text CHECK (outcome IN ('overturned', 'partial', 'upheld')),
    amount_recovered numeric(12,2),
    outcome_by       text,
    outcome_at       timestamptz
);
CREATE INDEX IF NOT EXISTS followup_appeal_claim ON {schema}.appeal (claim_id);

-- Write-offs asked of payments (followup.writeoff_requested); payments owns the ledger.
CREATE TABLE IF NOT EXISTS {schema}.writeoff_request (
    request_id   uuid PRIMARY KEY,
    work_item_id bigint,
    claim_id     text NOT NULL,
    amount       numeric(12,2) NOT NULL CHECK (amount > 0),
    category     text NOT NULL,
    reason       text NOT NULL,
    requested_by text NOT NULL,
    requested_at timestamptz NOT NULL DEFAULT now()
);

-- Balances moved from the payer to the patient. No event carries this (the contract has
-- none): it is followup's decision, reflected in patient_balance and so in statements.
CREATE TABLE IF NOT EXISTS {schema}.patient_transfer (
    transfer_id   bigserial PRIMARY KEY,
    work_item_id  bigint,
    claim_id      text NOT NULL,
    amount        numeric(12,2) NOT NULL CHECK (amount > 0),
    reason        text,
    requested_by  text NOT NULL,
    requested_at  timestamptz NOT NULL DEFAULT now()
);

-- What we asked (276) and what payers said (277, 277CA acks via billing's events).
CREATE TABLE IF NOT EXISTS {schema}.claim_status_history (
    history_id        bigserial PRIMARY KEY,
    claim_id          text NOT NULL,
    source            text NOT NULL CHECK (source IN ('276', '277', '277CA', '999')),
    status_category   text,
    status_code       text,
    outcome           text NOT NULL,
    effective_date    date,
    payer_claim_control_number text,
    file_name         text,
    recorded_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS followup_status_history_claim ON {schema}.claim_status_history (claim_id, recorded_at);

CREATE TABLE IF NOT EXISTS {schema}.statement (
    statement_id   text PRIMARY KEY,
    site_id        text NOT NULL,
    account_key    text NOT NULL,
    encounter_id   text NOT NULL,   -- event key: the latest claim's encounter
    claim_ids      text[] NOT NULL,
    amount_due     numeric(12,2) NOT NULL,
    cycle          int NOT NULL CHECK (cycle BETWEEN 0 AND 3),
    statement_date date NOT NULL,
    due_date       date NOT NULL,
    file_name      text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (site_id, account_key, cycle)
);
