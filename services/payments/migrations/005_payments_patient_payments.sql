-- payments: patient payments (issue 21 item 4) and the patient credit they leave.
--
-- payments knows a claim's encounter, not the patient behind it (claim.submitted carries the
-- guarantor, which payments does not keep): the patient account here is the encounter id, so a
-- patient's credit is kept per encounter and applied to that encounter's claims.

CREATE TABLE IF NOT EXISTS {schema}.patient_payment (
    payment_id          bigserial PRIMARY KEY,
    site_id             text NOT NULL,
    idempotency_key     text NOT NULL,
    fingerprint         text NOT NULL,   -- sha-256 of the request body: same key, same body
    account             text NOT NULL,   -- the encounter id (see above)
    amount              numeric(12,2) NOT NULL CHECK (amount > 0),
    method              text NOT NULL CHECK (method IN ('cash', 'check', 'card')),
    check_number        text,
    processor_reference text,
    received_date       date NOT NULL,
    created_by          text NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (site_id, idempotency_key)
);

CREATE TABLE IF NOT EXISTS {schema}.patient_payment_allocation (
    payment_id bigint NOT NULL REFERENCES {schema}.patient_payment (payment_id),
    claim_id   text NOT NULL REFERENCES {schema}.claim (claim_id),
    amount     numeric(12,2) NOT NULL CHECK (amount > 0),
    PRIMARY KEY (payment_id, claim_id)
);

-- The patient account a patient_credit line belongs to (credit is kept per account).
ALTER TABLE {schema}.journal_line ADD COLUMN IF NOT EXISTS patient_account text;
CREATE INDEX IF NOT EXISTS journal_line_patient_credit ON {schema}.journal_line (patient_account)
    WHERE account = 'patient_credit';
