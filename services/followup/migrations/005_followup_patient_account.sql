-- followup: what statements need beyond claim balances (issue 21 item 4).
--
-- patient_account: payments' patient account (the encounter), from payments.patient_account
-- events (the newest version kept): patient payments received less refunds, and the payment
-- plan, whose status pauses dunning while it is active.
-- encounter_coverage / encounter_adjudication: the encounter's coverages (from encounter.coded)
-- and the payers that adjudicated it (from remittance.received), so a statement waits until
-- the last payer did (patient responsibility moves to the patient only then).

CREATE TABLE IF NOT EXISTS {schema}.patient_account (
    encounter_id      text PRIMARY KEY,
    site_id           text NOT NULL,
    version           bigint NOT NULL,
    payments_received numeric(12,2) NOT NULL,
    credit            numeric(12,2) NOT NULL,
    plan_id           bigint,
    plan_status       text,
    plan_instalment   numeric(12,2),
    plan_period       text,
    plan_next_due     date,
    updated_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS {schema}.encounter_coverage (
    encounter_id text NOT NULL,
    sequence     text NOT NULL,
    payer_id     text NOT NULL,
    PRIMARY KEY (encounter_id, sequence)
);

CREATE TABLE IF NOT EXISTS {schema}.encounter_adjudication (
    encounter_id text NOT NULL,
    payer_id     text NOT NULL,
    first_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (encounter_id, payer_id)
);
