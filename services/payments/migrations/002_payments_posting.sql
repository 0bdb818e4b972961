-- payments: what posting, rematching, reconciliation and the balances API look things up by.

-- Order of a claim payment within its 835 transaction (CLP ordinal), so a claim's
-- unmatched remittances are posted in file order when the claim becomes known
-- (a payment before its reversal).
ALTER TABLE {schema}.claim_payment ADD COLUMN IF NOT EXISTS position int;

-- A check/EFT (payer + TRN02) that arrived again in another file: not posted, but visible.
CREATE TABLE IF NOT EXISTS {schema}.advice_duplicate (
    id                 bigserial PRIMARY KEY,
    payer_key          text NOT NULL,
    trace_number       text NOT NULL,
    file_name          text NOT NULL,
    st_control_number  text NOT NULL,
    payment_amount     numeric(12,2) NOT NULL,
    received_at        timestamptz NOT NULL DEFAULT now()
);

-- Reversals look up the claim's payment entries; reconciliation sums cash per advice.
CREATE INDEX IF NOT EXISTS journal_entry_claim ON {schema}.journal_entry (claim_id, kind);
CREATE INDEX IF NOT EXISTS journal_entry_advice ON {schema}.journal_entry (advice_id) WHERE advice_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS claim_payment_advice ON {schema}.claim_payment (advice_id);
-- Service-line matching fallback (same payer, same charge) and the balances API.
CREATE INDEX IF NOT EXISTS claim_payer_charge ON {schema}.claim (payer_id, total_charge);
CREATE INDEX IF NOT EXISTS claim_site_payer ON {schema}.claim (site_id, payer_id);
CREATE INDEX IF NOT EXISTS remittance_advice_day ON {schema}.remittance_advice (payer_key, payment_date);

-- The payer's name (N1*PR) as the 835 gave it, for remittances posted later from the unmatched queue.
ALTER TABLE {schema}.remittance_advice ADD COLUMN IF NOT EXISTS payer_name text;

-- The reconstructable copy of a claim payment is kept only while it waits (unmatched or held);
-- a posted one lives on in the ledger and in its remittance.received event.
ALTER TABLE {schema}.claim_payment ALTER COLUMN detail DROP NOT NULL;
