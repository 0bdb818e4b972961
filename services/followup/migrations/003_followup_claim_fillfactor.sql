-- Followup's claim row changes on every acknowledgement and remittance; room on the page
-- makes those HOT updates where no indexed column changes.
ALTER TABLE {schema}.claim SET (fillfactor = 70);
