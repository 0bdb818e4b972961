-- The last day the payer accepts the claim: billing's (it owns the filing limit), as
-- claim.submitted carries it. NULL for claims projected before it was carried, and for stubs
-- of events that outran their claim.submitted: no filing deadline is known for those.
ALTER TABLE {schema}.claim ADD COLUMN IF NOT EXISTS filing_deadline date;
