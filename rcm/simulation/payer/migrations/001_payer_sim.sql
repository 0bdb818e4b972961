-- payer_sim keeps only what makes it idempotent: the shared mailbox tables
-- (files ingested exactly once; files to write) and its own adjudication log.
CREATE TABLE IF NOT EXISTS {schema}.adjudication (
    claim_id    text PRIMARY KEY,
    status      text NOT NULL,
    paid        numeric(12,2) NOT NULL,
    file_name   text NOT NULL,
    at          timestamptz NOT NULL DEFAULT now()
);
