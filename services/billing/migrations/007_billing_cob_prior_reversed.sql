-- Coordination of benefits: a prior payer reversing its decision (CLP02 22) after the next
-- payer's claim was billed on it opens a biller work item on that claim.
ALTER TABLE {schema}.work_item DROP CONSTRAINT IF EXISTS work_item_kind_check;
ALTER TABLE {schema}.work_item ADD CONSTRAINT work_item_kind_check
    CHECK (kind IN ('scrub_hold', 'rejection', 'crossover_overdue', 'prior_payer_reversed'));
