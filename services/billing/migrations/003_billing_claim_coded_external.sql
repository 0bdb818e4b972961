-- The coded encounter (4 kB of jsonb) stays out of line, so claim updates do not copy it,
-- but uncompressed: jsonb gains little from pglz and the attempt was a third of the insert.
ALTER TABLE {schema}.claim ALTER COLUMN coded SET STORAGE EXTERNAL;
