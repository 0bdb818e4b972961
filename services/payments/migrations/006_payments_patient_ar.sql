-- payments: patient A/R beyond a payment (issue 21 item 4): refunds of credit balances, payment
-- plans, crossovers that keep patient responsibility pending the next payer, and the version
-- of each account's state carried in payments.patient_account events.

CREATE TABLE IF NOT EXISTS {schema}.refund (
    refund_id        bigserial PRIMARY KEY,
    site_id          text NOT NULL,
    account          text NOT NULL,   -- the encounter id (migration 005)
    amount           numeric(12,2) NOT NULL CHECK (amount > 0),
    method           text NOT NULL CHECK (method IN ('check', 'card', 'cash')),
    reference        text,            -- check number or the outside processor's refund reference
    reason           text NOT NULL,
    state            text NOT NULL CHECK (state IN ('requested', 'approved', 'issued')),
    idempotency_key  text NOT NULL,
    fingerprint      text NOT NULL,
    requested_by     text NOT NULL,
    requested_at     timestamptz NOT NULL DEFAULT now(),
    approved_by      text,
    approved_at      timestamptz,
    issued_by        text,
    issued_at        timestamptz,
    UNIQUE (site_id, idempotency_key),
    -- Approved by someone else than the requester (the API says so first; this keeps it so).
    CHECK (approved_by IS NULL OR approved_by <> requested_by)
);
CREATE INDEX IF NOT EXISTS refund_account ON {schema}.refund (account);

CREATE TABLE IF NOT EXISTS {schema}.payment_plan (
    plan_id            bigserial PRIMARY KEY,
    site_id            text NOT NULL,
    account            text NOT NULL,
    total              numeric(12,2) NOT NULL CHECK (total > 0),
    instalment_amount  numeric(12,2) NOT NULL CHECK (instalment_amount > 0),
    period             text NOT NULL CHECK (period IN ('weekly', 'biweekly', 'monthly')),
    first_due_date     date NOT NULL,
    grace_days         int NOT NULL CHECK (grace_days BETWEEN 0 AND 60),
    status             text NOT NULL CHECK (status IN ('active', 'defaulted', 'completed')),
    idempotency_key    text NOT NULL,
    fingerprint        text NOT NULL,
    created_by         text NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    status_changed_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (site_id, idempotency_key)
);
-- One active plan per account at a time.
CREATE UNIQUE INDEX IF NOT EXISTS payment_plan_active ON {schema}.payment_plan (account)
    WHERE status = 'active';

-- A posted claim payment whose payer forwarded the claim to the next payer (CLP02 19/20,
-- MA18/N89): the encounter's patient responsibility waits for that payer's 835.
CREATE TABLE IF NOT EXISTS {schema}.crossover (
    remittance_id text PRIMARY KEY,
    claim_id      text NOT NULL,
    encounter_id  text NOT NULL,
    payer_id      text NOT NULL,
    recorded_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS crossover_encounter ON {schema}.crossover (encounter_id);

-- payments.patient_account events carry a version, so a consumer keeps the newest state.
CREATE SEQUENCE IF NOT EXISTS {schema}.patient_account_version;
