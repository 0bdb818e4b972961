-- Dead letters keep the original bytes of the messages they hold (PHI: names, member ids,
-- notes), so that they can be inspected and replayed: only the role that owns this schema
-- may read them (docs/security.md, "PHI at rest in rcm's own places"). A role granted
-- reads on the service's other tables gets nothing here unless granted it by name.
REVOKE ALL ON {schema}.dead_letter FROM PUBLIC;
REVOKE ALL ON SEQUENCE {schema}.dead_letter_id_seq FROM PUBLIC;
