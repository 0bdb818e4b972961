-- Browser sessions and sign-in transactions of the workbench. The cookie holds a random id;
-- only its SHA-256 is stored, so a copy of this table opens no session.
CREATE TABLE IF NOT EXISTS {schema}.session (
    id_hash    text PRIMARY KEY,
    kind       text NOT NULL CHECK (kind IN ('login', 'user')),
    data       jsonb NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS session_expires_at ON {schema}.session (expires_at);
