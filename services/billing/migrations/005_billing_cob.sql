-- Coordination of benefits: a claim per payer of an encounter (primary, then secondary and
-- tertiary built from the prior payers' adjudications), the adjudications they carry, and
-- the wait for a crossover payer's 835.

ALTER TABLE {schema}.claim ADD COLUMN IF NOT EXISTS cob_sequence text NOT NULL DEFAULT 'primary'
    CHECK (cob_sequence IN ('primary', 'secondary', 'tertiary'));
-- The encounter's claim billed to the primary payer (NULL on that claim itself).
ALTER TABLE {schema}.claim ADD COLUMN IF NOT EXISTS primary_claim_id text REFERENCES {schema}.claim (claim_id);

-- One original claim per encounter and payer: a redelivered remittance never bills the
-- secondary twice.
DROP INDEX IF EXISTS {schema}.claim_one_original;
CREATE UNIQUE INDEX IF NOT EXISTS claim_one_original_per_payer
    ON {schema}.claim (encounter_id, cob_sequence) WHERE frequency_code = '1';

-- Each payer's adjudication of an encounter's claims, keyed by the primary claim: what the
-- next payer's 837 (2320/2330B/2430) is built from.
CREATE TABLE IF NOT EXISTS {schema}.prior_adjudication (
    primary_claim_id text NOT NULL REFERENCES {schema}.claim (claim_id),
    cob_sequence     text NOT NULL CHECK (cob_sequence IN ('primary', 'secondary', 'tertiary')),
    remittance_id    text NOT NULL,
    payer_id         text NOT NULL,
    adjudication     jsonb NOT NULL,
    recorded_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (primary_claim_id, cob_sequence)
);

-- A payer that forwarded the claim to the next one (crossover): its 835 is awaited until due_at.
CREATE TABLE IF NOT EXISTS {schema}.crossover_wait (
    primary_claim_id text NOT NULL REFERENCES {schema}.claim (claim_id),
    cob_sequence     text NOT NULL CHECK (cob_sequence IN ('secondary', 'tertiary')),
    site_id          text NOT NULL,
    payer_id         text NOT NULL,  -- the payer whose 835 is awaited
    due_at           timestamptz NOT NULL,
    status           text NOT NULL DEFAULT 'waiting' CHECK (status IN ('waiting', 'received', 'overdue')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (primary_claim_id, cob_sequence)
);
CREATE INDEX IF NOT EXISTS crossover_waiting ON {schema}.crossover_wait (due_at) WHERE status = 'waiting';

ALTER TABLE {schema}.work_item DROP CONSTRAINT IF EXISTS work_item_kind_check;
ALTER TABLE {schema}.work_item ADD CONSTRAINT work_item_kind_check
    CHECK (kind IN ('scrub_hold', 'rejection', 'crossover_overdue'));
