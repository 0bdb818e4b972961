-- intake: scheduled visits (FHIR Appointments) whose coverages are asked about before the
-- visit: by the batch pass N days ahead and at check-in (docs/eligibility.md).
CREATE TABLE IF NOT EXISTS {schema}.appointment (
    appointment_id   text PRIMARY KEY,
    site_id          text NOT NULL,
    status           text NOT NULL,           -- the Appointment's (booked, arrived, ...)
    service_date     date NOT NULL,
    coverage_keys    jsonb NOT NULL,          -- {"primary": key, ...}: how its checks are found
    visit            jsonb NOT NULL,          -- the visit as an encounter (PHI)
    received_at      timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    batch_checked_at timestamptz,             -- the batch pass looked at it (null: not yet)
    checked_in_at    timestamptz
);
-- What the batch pass looks for: visits not looked at yet, by date.
CREATE INDEX IF NOT EXISTS appointment_batch
    ON {schema}.appointment (service_date) WHERE batch_checked_at IS NULL;
