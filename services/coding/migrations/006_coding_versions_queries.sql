-- Re-sent documentation, trace continuity, provider queries (docs/coding-queries.md).

-- The document version intake numbered (a re-send with different content is the next one)
-- and the trace the documentation arrived in: a coder's completion, hours later, continues it.
ALTER TABLE {schema}.encounter ADD COLUMN IF NOT EXISTS document_version int NOT NULL DEFAULT 1;
ALTER TABLE {schema}.encounter ADD COLUMN IF NOT EXISTS traceparent text;
-- GET /stats/routes counts encounters per site and day.
CREATE INDEX IF NOT EXISTS encounter_received ON {schema}.encounter (received_at);

-- A work item waits (out of the queue) while a query to the provider is open.
ALTER TABLE {schema}.work_item DROP CONSTRAINT IF EXISTS work_item_status_check;
ALTER TABLE {schema}.work_item ADD CONSTRAINT work_item_status_check
    CHECK (status IN ('queued', 'leased', 'waiting', 'completed'));

CREATE TABLE IF NOT EXISTS {schema}.provider_query (
    query_id         bigserial PRIMARY KEY,
    encounter_id     text NOT NULL REFERENCES {schema}.encounter (encounter_id),
    site_id          text NOT NULL,
    provider_npi     text,                 -- the provider asked (the rendering provider)
    status           text NOT NULL
        CHECK (status IN ('draft', 'sent', 'answered', 'closed', 'cancelled', 'escalated')),
    origin           text NOT NULL CHECK (origin IN ('coder', 'engine')),
    reason           text NOT NULL,
    question         text NOT NULL,        -- PHI possible
    indicators       jsonb NOT NULL,       -- [{text, start, end}] quoted from the note (PHI)
    options          jsonb NOT NULL,       -- [text]
    document_version int NOT NULL,         -- the documentation the query was raised on
    created_by       text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_by          text,
    sent_at          timestamptz,
    escalated_at     timestamptz,
    answer           text,                 -- the option the provider chose
    addendum         text,                 -- appended to the note (PHI)
    answered_by      text,
    answered_at      timestamptz,
    closed_by        text,
    closed_at        timestamptz,
    cancel_reason    text
);
CREATE INDEX IF NOT EXISTS provider_query_encounter ON {schema}.provider_query (encounter_id);
CREATE INDEX IF NOT EXISTS provider_query_open ON {schema}.provider_query (sent_at)
    WHERE status IN ('sent', 'escalated');
CREATE INDEX IF NOT EXISTS provider_query_site ON {schema}.provider_query (site_id, created_at);
