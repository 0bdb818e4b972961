-- Inbox rows are kept as long as Kafka could deliver their event again (its log retention),
-- then pruned by received_at. Rows arrive in received_at order, so a BRIN index finds the
-- old ones at almost no cost per insert (a B-tree would add an index insert per event).
CREATE INDEX IF NOT EXISTS inbox_received_brin ON {schema}.inbox USING brin (received_at);
