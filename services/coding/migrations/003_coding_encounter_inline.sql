-- An encounter row (document, suggestions, coded result) is 3-4 kB and written once.
-- Kept inline, it skips TOAST's compression attempt (jsonb barely compresses) and the
-- out-of-line toast rows and index entries: about half the cost of the insert.
ALTER TABLE {schema}.encounter SET (toast_tuple_target = 8160);
