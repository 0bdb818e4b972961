-- followup: a projection of each claim's life, encounter outcomes, biller work items.

CREATE TABLE IF NOT EXISTS {schema}.claim (
    claim_id               text PRIMARY KEY,
    encounter_id           text NOT NULL,
    site_id                text NOT NULL,
    payer_id               text,
    payer_name             text,
    state                  text NOT NULL,
    frequency_code         text NOT NULL DEFAULT '1',
    original_claim_id      text,
    total_charge           numeric(12,2) NOT NULL DEFAULT 0,
    paid                   numeric(12,2) NOT NULL DEFAULT 0,
    contractual            numeric(12,2) NOT NULL DEFAULT 0,
    other_adjustments      numeric(12,2) NOT NULL DEFAULT 0,
    patient_responsibility numeric(12,2) NOT NULL DEFAULT 0,
    service_date           date,
    submitted_at           timestamptz,
    acknowledged_at        timestamptz,
    remitted_at            timestamptz,
    interchange_control_number text,
    payer_claim_control_number text,
    guarantor              jsonb,   -- PHI: for statements only
    lines                  jsonb,
    updated_at             timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS followup_claim_encounter ON {schema}.claim (encounter_id);

-- Where each encounter ended up: one row per encounter, terminal outcomes only.
CREATE TABLE IF NOT EXISTS {schema}.encounter_outcome (
    encounter_id text PRIMARY KEY,
    site_id      text NOT NULL,
    claim_id     text NOT NULL,
    outcome      text NOT NULL CHECK (outcome IN ('paid', 'partially_paid', 'denied', 'held', 'rejected')),
    at           timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS {schema}.remittance (
    remittance_id          text PRIMARY KEY,
    claim_id               text NOT NULL,
    status_code            text NOT NULL,
    paid                   numeric(12,2) NOT NULL,
    patient_responsibility numeric(12,2) NOT NULL,
    adjustments            jsonb NOT NULL,
    remarks                jsonb NOT NULL,
    received_at            timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS {schema}.work_item (
    work_item_id     bigserial PRIMARY KEY,
    source_key       text NOT NULL UNIQUE, -- what opened it (remittance+reason, hold, rejection): opens once
    claim_id         text NOT NULL,
    encounter_id     text NOT NULL,
    site_id          text NOT NULL,
    payer_id         text,
    category         text NOT NULL,
    action           text NOT NULL,
    label            text NOT NULL,
    group_code       text,
    carc             text,
    rarc             jsonb NOT NULL DEFAULT '[]',
    amount           numeric(12,2) NOT NULL DEFAULT 0,
    deadline_date    date,
    priority         int NOT NULL DEFAULT 0,
    status           text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'leased', 'resolved')),
    leased_by        text,
    lease_token      uuid,
    lease_expires_at timestamptz,
    resolution       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    resolved_at      timestamptz
);
CREATE INDEX IF NOT EXISTS followup_work_queue ON {schema}.work_item (site_id, category, priority DESC) WHERE status <> 'resolved';

CREATE TABLE IF NOT EXISTS {schema}.work_audit (
    audit_id     bigserial PRIMARY KEY,
    work_item_id bigint NOT NULL,
    user_id      text NOT NULL,
    action       text NOT NULL,
    detail       jsonb,
    at           timestamptz NOT NULL DEFAULT now()
);
