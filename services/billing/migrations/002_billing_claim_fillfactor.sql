-- A claim row is updated about six times in its first minute (scrubbed, filed, acknowledged,
-- accepted, paid). Room left on each page lets most of those be HOT updates: no new index
-- entries, less WAL. The coded encounter is stored out of line (003), so a new row version
-- does not copy it.
ALTER TABLE {schema}.claim SET (fillfactor = 70);
