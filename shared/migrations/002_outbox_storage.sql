-- Outbox rows live for milliseconds (relayed, then deleted), and event bodies sit around
-- the 2 kB TOAST threshold: compressing each one costs CPU and saves nothing. Bodies stay
-- inline and uncompressed up to a full row of ~8 kB; larger ones move out of line, still
-- uncompressed.
ALTER TABLE {schema}.outbox ALTER COLUMN body SET STORAGE EXTERNAL;
ALTER TABLE {schema}.outbox SET (toast_tuple_target = 8160);
