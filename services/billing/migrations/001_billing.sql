-- billing: claims with their state history, submitted files, biller work items.

CREATE TABLE IF NOT EXISTS {schema}.claim (
    claim_id                   text PRIMARY KEY,
    encounter_id               text NOT NULL,
    site_id                    text NOT NULL,
    payer_id                   text,
    claim_type                 text NOT NULL CHECK (claim_type IN ('professional', 'institutional')),
    frequency_code             text NOT NULL CHECK (frequency_code IN ('1', '7', '8')),
    original_claim_id          text REFERENCES {schema}.claim (claim_id),
    payer_claim_control_number text,
    status                     text NOT NULL,
    total_charge               numeric(12,2) NOT NULL,
    service_date               date NOT NULL,
    coded                      jsonb NOT NULL,
    interchange_control_number text,
    file_name                  text,
    st_control_number          text,
    traceparent                text,  -- the encounter's trace, continued across mailbox hops
    created_at                 timestamptz NOT NULL DEFAULT now(),
    updated_at                 timestamptz NOT NULL DEFAULT now()
);
-- One original claim per encounter: a redelivered or re-coded encounter never bills twice.
CREATE UNIQUE INDEX IF NOT EXISTS claim_one_original ON {schema}.claim (encounter_id) WHERE frequency_code = '1';
CREATE INDEX IF NOT EXISTS claim_file ON {schema}.claim (interchange_control_number);

CREATE TABLE IF NOT EXISTS {schema}.claim_history (
    history_id bigserial PRIMARY KEY,
    claim_id   text NOT NULL REFERENCES {schema}.claim (claim_id),
    status     text NOT NULL,
    detail     jsonb,
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS claim_history_claim ON {schema}.claim_history (claim_id, history_id);

CREATE TABLE IF NOT EXISTS {schema}.submission_file (
    file_name                  text PRIMARY KEY,
    interchange_control_number text NOT NULL UNIQUE,
    group_control_number       text NOT NULL,
    claim_type                 text NOT NULL,
    payer_id                   text,
    claim_count                int NOT NULL,
    transactions               jsonb NOT NULL,
    spans                      jsonb NOT NULL,
    created_at                 timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS {schema}.work_item (
    work_item_id bigserial PRIMARY KEY,
    claim_id     text NOT NULL REFERENCES {schema}.claim (claim_id),
    site_id      text NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('scrub_hold', 'rejection')),
    reasons      jsonb NOT NULL,
    status       text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    resolved_at  timestamptz
);
CREATE INDEX IF NOT EXISTS billing_work_open ON {schema}.work_item (site_id) WHERE status = 'open';

-- Loaded chargemasters (rcm chargemaster load SITE FILE); absent site = bundled sample.
CREATE TABLE IF NOT EXISTS {schema}.chargemaster (
    site_id    text PRIMARY KEY,
    csv        text NOT NULL,
    loaded_at  timestamptz NOT NULL DEFAULT now()
);
