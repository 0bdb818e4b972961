-- HL7 v2 intake (MLLP listener, POST /hl7): every message acknowledged AA/AE is kept here,
-- committed before its ACK is sent; a re-sent message (same sending facility and MSH-10)
-- finds its row and is acknowledged again without being applied twice.

-- One row per visit (VisitAssembler key): locked while a message of the visit is applied, so
-- a visit's messages get their order (visit_seq) one at a time across intake instances.
CREATE TABLE IF NOT EXISTS {schema}.hl7_visit (
    visit_key     text PRIMARY KEY,          -- site|fields|values
    site_id       text NOT NULL,
    encounter_id  text,                      -- once the visit has a date of service
    message_count int NOT NULL DEFAULT 0,    -- messages applied (the last visit_seq)
    released      boolean NOT NULL DEFAULT false,  -- an encounter version was emitted
    awaiting      text[] NOT NULL DEFAULT '{}',     -- readiness conditions still missing
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- The messages themselves (PHI: this table and encounter_document are its places). ``message``
-- is the MLLP frame as received (``text_form`` false: decoded by its MSH-18 when read again),
-- or the message's text in UTF-8 when it came from a file of several (``text_form`` true).
CREATE TABLE IF NOT EXISTS {schema}.hl7_message (
    facility     text NOT NULL,              -- MSH-4.1, the namespace of MSH-10
    control_id   text NOT NULL,              -- MSH-10
    message_type text NOT NULL,              -- MSH-9.1^MSH-9.2
    version      text NOT NULL,              -- MSH-12
    source       text NOT NULL,              -- mllp, http
    visit_key    text,                       -- null: a type intake does not use
    visit_seq    int,                        -- its place among the visit's messages
    status       text NOT NULL,              -- waiting, ready, update, unchanged, ignored
    ack_code     text NOT NULL,              -- AA or AE: what a re-send is answered
    errors       jsonb NOT NULL DEFAULT '[]', -- application errors of the ACK (no values)
    text_form    boolean NOT NULL DEFAULT false,
    message      bytea NOT NULL,
    digest       text NOT NULL,              -- SHA-256 of the message's text (segments CR-joined)
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (facility, control_id)
);
CREATE UNIQUE INDEX IF NOT EXISTS hl7_message_visit
    ON {schema}.hl7_message (visit_key, visit_seq) WHERE visit_key IS NOT NULL;
ALTER TABLE {schema}.hl7_message SET (toast_tuple_target = 8160);

-- Messages refused (AR/AE before storage: unreadable, no visit, unknown sender): what was
-- wrong (segment and field, never a value), for the interface analyst. Not the message.
CREATE TABLE IF NOT EXISTS {schema}.hl7_rejection (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    facility    text,
    control_id  text,
    source      text NOT NULL,
    ack_code    text NOT NULL,
    errors      jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS hl7_rejection_received ON {schema}.hl7_rejection (received_at);
