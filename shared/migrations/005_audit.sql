-- Audit records (HIPAA 164.312(b)): who read or changed which PHI, when, from where.
-- Append-only and hash-chained (shared/audit.py): each record's hash is SHA-256 over its
-- canonical serialisation, which includes the previous record's hash. audit_head holds the
-- chain's last position and hash; appends lock it, so concurrent writers never fork the
-- chain, and `rcm audit verify` finds a deleted tail by it.

CREATE TABLE IF NOT EXISTS {schema}.audit_record (
    seq            bigint PRIMARY KEY CHECK (seq > 0),
    recorded_at    timestamptz NOT NULL,
    actor          text NOT NULL,          -- the token's sub
    role           text NOT NULL,
    action         text NOT NULL CHECK (action IN ('read', 'create', 'update', 'delete', 'job')),
    resource_type  text NOT NULL,
    resource_ids   text[] NOT NULL,
    account_key    text,                   -- patient/account key (an id, never PHI)
    site_id        text,
    client_address text,
    request_id     text,
    prev_hash      text NOT NULL,
    hash           text NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_record_actor ON {schema}.audit_record (actor, recorded_at);
CREATE INDEX IF NOT EXISTS audit_record_account ON {schema}.audit_record (account_key, recorded_at)
    WHERE account_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS audit_record_recorded ON {schema}.audit_record USING brin (recorded_at);

CREATE TABLE IF NOT EXISTS {schema}.audit_head (
    id   boolean PRIMARY KEY DEFAULT true CHECK (id),
    seq  bigint NOT NULL,
    hash text NOT NULL
);
-- The chain starts from a hash of the schema's name, so a record copied into another
-- schema's chain does not verify there.
INSERT INTO {schema}.audit_head (id, seq, hash)
    VALUES (true, 0, encode(sha256(convert_to('rcm-audit-genesis:{schema}', 'UTF8')), 'hex'))
    ON CONFLICT (id) DO NOTHING;

-- Refuses every UPDATE, DELETE and TRUNCATE, the owner's and a superuser's included, until
-- someone with the right to (the table's owner or a superuser) disables the trigger.
CREATE OR REPLACE FUNCTION {schema}.audit_refuse_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit records are append-only (% refused on %.%)',
        TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;

DROP TRIGGER IF EXISTS audit_append_only ON {schema}.audit_record;
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON {schema}.audit_record
    FOR EACH ROW EXECUTE FUNCTION {schema}.audit_refuse_change();
DROP TRIGGER IF EXISTS audit_no_truncate ON {schema}.audit_record;
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON {schema}.audit_record
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.audit_refuse_change();

-- The owning (migrating) role keeps INSERT and SELECT only; so does everyone else.
REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON {schema}.audit_record FROM PUBLIC;
REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON {schema}.audit_record FROM CURRENT_USER;
REVOKE DELETE, TRUNCATE, REFERENCES, TRIGGER ON {schema}.audit_head FROM PUBLIC;
REVOKE DELETE, TRUNCATE, REFERENCES, TRIGGER ON {schema}.audit_head FROM CURRENT_USER;
