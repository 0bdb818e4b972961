-- Patient estimates (issue 21 item 2): what the patient is expected to owe for an encounter,
-- made when billing builds its claim from the coverage's eligibility benefits (271), and what
-- the payers' 835s then said the patient owes (remittance.received), shown side by side.

CREATE TABLE IF NOT EXISTS {schema}.patient_estimate (
    encounter_id           text PRIMARY KEY,
    claim_id               text NOT NULL REFERENCES {schema}.claim (claim_id),
    site_id                text NOT NULL,
    basis                  text NOT NULL
        CHECK (basis IN ('copay', 'deductible_coinsurance', 'self_pay', 'unknown')),
    total_charge           numeric(12,2) NOT NULL,
    patient_responsibility numeric(12,2),  -- NULL: the 271 stated no benefits (basis unknown)
    payer_responsibility   numeric(12,2),
    detail                 jsonb NOT NULL,  -- lines, benefits used, breakdown; codes and amounts only
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now()
);

-- Each claim payment's patient responsibility (CLP05), as payments decided and sent it.
CREATE TABLE IF NOT EXISTS {schema}.remitted_patient_responsibility (
    remittance_id          text PRIMARY KEY,
    claim_id               text NOT NULL,
    encounter_id           text NOT NULL,
    payer_id               text NOT NULL,
    outcome                text,
    patient_responsibility numeric(12,2) NOT NULL,
    is_reversal            boolean NOT NULL,
    received_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS remitted_patient_responsibility_encounter
    ON {schema}.remitted_patient_responsibility (encounter_id);
