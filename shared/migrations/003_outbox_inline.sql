-- An outbox row lives for milliseconds (inserted, relayed, deleted). Event bodies of 2-4 kB
-- would otherwise go through TOAST: a compression attempt, out-of-line rows on insert and
-- their deletion after. Kept inline they cost about half as much to write.
ALTER TABLE {schema}.outbox SET (toast_tuple_target = 8160);
