-- The balance check reads only the statement's own lines. The first version summed
-- every stored line of each touched entry; plpgsql cached the plan it chose while the
-- ledger was empty (a sequential scan), so each posting scanned the whole ledger and
-- posting slowed down as the ledger grew. Entries are append-only (no UPDATE or DELETE,
-- see journal_line_append_only), so if every statement's new lines sum to zero per
-- entry, every entry still sums to zero.
CREATE OR REPLACE FUNCTION {schema}.journal_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE bad bigint;
BEGIN
    SELECT entry_id INTO bad FROM new_lines GROUP BY entry_id HAVING sum(amount) <> 0 LIMIT 1;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'journal entry % does not balance', bad USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;
