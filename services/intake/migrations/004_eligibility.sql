-- intake: eligibility checks (X12 270/271 through the clearinghouse mailbox), the encounters
-- whose encounter.documented waits for them, and the registration work items AAA rejections
-- open (docs/eligibility.md).

-- One 270 request for one coverage: a retry is a new row with a new trace number.
-- state: sent (waiting for its 271), retry (AAA 42 or no answer: sent again at retry_at),
-- retried (superseded by the retry), answered (active, inactive or unknown), rejected (AAA the
-- payer will answer the same way: registration or review work), gave_up (retries spent).
CREATE TABLE IF NOT EXISTS {schema}.eligibility_check (
    trace_number   text PRIMARY KEY,          -- TRN02 of the 270, echoed by the 271
    coverage_key   text NOT NULL,             -- hash of site, patient, payer, member id, date
    encounter_id   text NOT NULL,
    site_id        text NOT NULL,
    sequence       text NOT NULL,             -- primary, secondary, tertiary
    payer_id       text NOT NULL,
    payer_name     text NOT NULL,
    service_date   date NOT NULL,
    request        jsonb NOT NULL,            -- what the 270 asked (PHI: member id, names)
    attempt        int NOT NULL CHECK (attempt >= 1),
    -- The retry policy in force when the coverage was first asked about: whichever instance
    -- reads the 271 or sends the retry follows it.
    retry_seconds      double precision NOT NULL,
    retry_max_seconds  double precision NOT NULL,
    max_attempts       int NOT NULL,
    requested_by   text NOT NULL,             -- intake, on_demand (a user id), retry
    state          text NOT NULL CHECK (state IN
                       ('sent', 'retry', 'retried', 'answered', 'rejected', 'gave_up')),
    outcome        text,                      -- active, inactive, unknown, rejected, no_response
    reason_code    text,                      -- AAA03
    reason         text,                      -- AAA03 described (no PHI)
    summary        jsonb,                     -- shared.events.EligibilitySummary (no PHI)
    file_name      text,                      -- the 270 file
    answer_file    text,                      -- the 271 file
    created_at     timestamptz NOT NULL DEFAULT now(),
    answered_at    timestamptz,
    retry_at       timestamptz
);
CREATE INDEX IF NOT EXISTS eligibility_check_key
    ON {schema}.eligibility_check (coverage_key, created_at DESC);
CREATE INDEX IF NOT EXISTS eligibility_check_encounter
    ON {schema}.eligibility_check (encounter_id, created_at DESC);
CREATE INDEX IF NOT EXISTS eligibility_check_waiting
    ON {schema}.eligibility_check (state, retry_at) WHERE state IN ('sent', 'retry');

CREATE SEQUENCE IF NOT EXISTS {schema}.eligibility_trace;
CREATE SEQUENCE IF NOT EXISTS {schema}.eligibility_interchange MAXVALUE 999999999 CYCLE;

-- An encounter.documented event held until its coverages' 271s answer, or release_at.
CREATE TABLE IF NOT EXISTS {schema}.eligibility_hold (
    event_id         uuid PRIMARY KEY,
    encounter_id     text NOT NULL,
    document_version int NOT NULL,
    coverage_keys    jsonb NOT NULL,          -- {"primary": key, ...}
    event            jsonb NOT NULL,          -- the event as accepted (PHI)
    traceparent      text,
    held_at          timestamptz NOT NULL DEFAULT now(),
    release_at       timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS eligibility_hold_encounter
    ON {schema}.eligibility_hold (encounter_id, document_version);
CREATE INDEX IF NOT EXISTS eligibility_hold_release ON {schema}.eligibility_hold (release_at);

-- Work for registration staff and billers: a coverage the payer could not find or identify
-- (AAA 72, 73, 75, ...) or a request it refused. The message names the problem, never a value.
CREATE TABLE IF NOT EXISTS {schema}.eligibility_work_item (
    id            bigserial PRIMARY KEY,
    site_id       text NOT NULL,
    encounter_id  text NOT NULL,
    sequence      text NOT NULL,
    payer_id      text NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('registration', 'review')),
    reason_code   text NOT NULL,
    message       text NOT NULL,
    trace_number  text NOT NULL,
    status        text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
    opened_at     timestamptz NOT NULL DEFAULT now(),
    resolved_at   timestamptz
);
CREATE UNIQUE INDEX IF NOT EXISTS eligibility_work_item_open
    ON {schema}.eligibility_work_item (encounter_id, sequence, reason_code) WHERE status = 'open';
CREATE INDEX IF NOT EXISTS eligibility_work_item_site
    ON {schema}.eligibility_work_item (site_id, status, opened_at);
