-- An inbound file is a duplicate if its bytes or its sender's interchange control number
-- were processed before. Without this index the second test read every file ever taken,
-- for every new file.
CREATE INDEX IF NOT EXISTS mailbox_file_processed_icn ON {schema}.mailbox_file (interchange_control_number)
    WHERE status = 'processed';
