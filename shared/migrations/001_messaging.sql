-- Messaging tables every service schema has: inbox (dedupe), outbox (relay to
-- Kafka), dead letters (poison messages, also relayed to <topic>.dlq) and the
-- ledger of mailbox files ingested or written (exactly-once file handling).

CREATE TABLE IF NOT EXISTS {schema}.inbox (
    event_id    uuid PRIMARY KEY,
    topic       text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS {schema}.outbox (
    id          bigserial PRIMARY KEY,
    event_id    uuid NOT NULL UNIQUE,
    topic       text NOT NULL,
    key         bytea NOT NULL,
    body        bytea NOT NULL,
    headers     jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS {schema}.dead_letter (
    id               bigserial PRIMARY KEY,
    source_topic     text NOT NULL,
    source_partition int NOT NULL,
    source_offset    bigint NOT NULL,
    event_id         uuid,
    encounter_id     text,
    error            text NOT NULL,
    body             bytea NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source_topic, source_partition, source_offset)
);

-- Files taken from an inbound mailbox: one row per distinct content.
CREATE TABLE IF NOT EXISTS {schema}.mailbox_file (
    content_hash               text PRIMARY KEY,
    file_name                  text NOT NULL,
    interchange_control_number text,
    status                     text NOT NULL CHECK (status IN ('processed', 'failed', 'duplicate')),
    reason                     text,
    received_at                timestamptz NOT NULL DEFAULT now()
);

-- Files to write to an outbound mailbox, written by the file relay after commit.
CREATE TABLE IF NOT EXISTS {schema}.outbound_file (
    file_name   text PRIMARY KEY,
    directory   text NOT NULL,
    content     text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    written_at  timestamptz
);
CREATE INDEX IF NOT EXISTS outbound_file_pending ON {schema}.outbound_file (created_at) WHERE written_at IS NULL;

CREATE SEQUENCE IF NOT EXISTS {schema}.interchange_control_number MINVALUE 1 MAXVALUE 999999999 CYCLE;
CREATE SEQUENCE IF NOT EXISTS {schema}.group_control_number MINVALUE 1 MAXVALUE 999999999 CYCLE;
