-- intake: the encounter documents received (versioned) and the master data registries.

-- The current version of each encounter: one row per encounter id, owned by one site.
CREATE TABLE IF NOT EXISTS {schema}.encounter (
    encounter_id      text PRIMARY KEY,
    site_id           text NOT NULL,
    version           int NOT NULL CHECK (version >= 1),
    content_hash      text NOT NULL,
    first_received_at timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- Every version received: the encounter as intake mapped it (PHI: this table is its place),
-- what intake warned about and which billing fields were missing.
CREATE TABLE IF NOT EXISTS {schema}.encounter_document (
    encounter_id text NOT NULL REFERENCES {schema}.encounter (encounter_id),
    version      int NOT NULL,
    site_id      text NOT NULL,
    content_hash text NOT NULL,
    event_id     uuid NOT NULL UNIQUE,
    source       text NOT NULL,          -- http, import (later: mllp)
    document     jsonb NOT NULL,
    warnings     jsonb NOT NULL DEFAULT '[]',
    missing      jsonb NOT NULL DEFAULT '[]',
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (encounter_id, version)
);
ALTER TABLE {schema}.encounter_document SET (toast_tuple_target = 8160);

-- Master data (services.intake.domain.registry): billing sites (an organisation with its NPI,
-- EIN, taxonomy and billing address), rendering providers by NPI (with the site they bill
-- under, when known), payers with the ids, aliases and filing indicator claims need.
CREATE TABLE IF NOT EXISTS {schema}.site (
    site_id       text PRIMARY KEY,
    name          text NOT NULL,
    npi           text,
    tax_id        text,
    taxonomy      text,
    address_line1 text,
    address_line2 text,
    city          text,
    state         text,
    postal_code   text,
    aliases       text[] NOT NULL DEFAULT '{}',
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS {schema}.provider (
    npi        text PRIMARY KEY,
    first_name text NOT NULL,
    last_name  text NOT NULL,
    taxonomy   text,
    site_id    text,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS provider_site ON {schema}.provider (site_id);

CREATE TABLE IF NOT EXISTS {schema}.payer (
    payer_id         text PRIMARY KEY,
    name             text NOT NULL,
    filing_indicator text,
    self_pay         boolean NOT NULL DEFAULT false,
    aliases          text[] NOT NULL DEFAULT '{}',
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- Bumped by every registry change in the same transaction: intake instances rebuild their
-- in-memory registry when it moved.
CREATE TABLE IF NOT EXISTS {schema}.registry_state (
    id         int PRIMARY KEY CHECK (id = 1),
    generation bigint NOT NULL
);
INSERT INTO {schema}.registry_state (id, generation) VALUES (1, 0) ON CONFLICT DO NOTHING;
