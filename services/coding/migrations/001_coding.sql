-- coding: encounters received, their coding, and the coder work queue.

CREATE TABLE IF NOT EXISTS {schema}.intake (
    encounter_id text PRIMARY KEY,
    site_id      text NOT NULL,
    event_id     uuid NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS {schema}.encounter (
    encounter_id text PRIMARY KEY,
    site_id      text NOT NULL,
    service_date date NOT NULL,
    status       text NOT NULL CHECK (status IN ('review', 'coded')),
    route        text NOT NULL CHECK (route IN ('auto', 'review')),
    coded_by     text,
    encounter    jsonb NOT NULL,
    suggestions  jsonb NOT NULL,
    edits        jsonb NOT NULL,
    final_coding jsonb,
    received_at  timestamptz NOT NULL DEFAULT now(),
    coded_at     timestamptz
);

CREATE TABLE IF NOT EXISTS {schema}.work_item (
    work_item_id     bigserial PRIMARY KEY,
    encounter_id     text NOT NULL UNIQUE REFERENCES {schema}.encounter (encounter_id),
    site_id          text NOT NULL,
    status           text NOT NULL CHECK (status IN ('queued', 'leased', 'completed')),
    leased_by        text,
    lease_token      uuid,
    lease_expires_at timestamptz,
    leased_at        timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    completed_at     timestamptz,
    completed_by     text
);
CREATE INDEX IF NOT EXISTS work_item_queue ON {schema}.work_item (site_id, created_at) WHERE status <> 'completed';

CREATE TABLE IF NOT EXISTS {schema}.coding_audit (
    audit_id     bigserial PRIMARY KEY,
    encounter_id text NOT NULL,
    work_item_id bigint,
    user_id      text NOT NULL,
    action       text NOT NULL,
    before       jsonb,
    after        jsonb,
    reason       text,
    at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS coding_audit_encounter ON {schema}.coding_audit (encounter_id);
