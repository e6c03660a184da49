-- _require_ledger_partition: refuses (PO035) an item created at a time no ledger partition holds, or one retention is retiring.
CREATE OR REPLACE FUNCTION payment_outbox._require_ledger_partition(p_created_at timestamptz)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, payment_outbox, pg_temp
AS $$
BEGIN
    -- Called after the item's INSERT into pending: the insert holds ROW EXCLUSIVE on pending to
    -- commit, and retention's first step takes SHARE on pending before it looks for unfinished
    -- items. So either this check runs after retention marked the month detaching (and refuses),
    -- or retention waits for this transaction and then sees its item (and keeps the month).
    -- One look at the registry (a few rows) in the common case: a partition holds the time.
    IF current_setting('transaction_isolation') = 'read committed' THEN
        IF EXISTS (
            SELECT FROM payment_outbox.payment_outbox_attempt_partitions AS r
            WHERE
                r.state IN ('attached', 'converting')
                AND coalesce(r.range_from, '-infinity') <= p_created_at AND r.range_to > p_created_at
        ) THEN
            RETURN;
        END IF;
    -- Under REPEATABLE READ or SERIALIZABLE the snapshot may predate retention's mark: the row
    -- lock reads the latest version (a concurrent update is 40001, which the caller retries).
    ELSIF EXISTS (
        SELECT FROM payment_outbox.payment_outbox_attempt_partitions AS r
        WHERE
            r.state IN ('attached', 'converting')
            AND coalesce(r.range_from, '-infinity') <= p_created_at AND r.range_to > p_created_at
        FOR SHARE
    ) THEN
        RETURN;
    END IF;
    -- Before the conversion the ledger is one plain table, which holds any time.
    IF payment_outbox._ledger_coverage() IS NULL THEN
        RETURN;
    END IF;
    RAISE EXCEPTION 'no ledger partition holds items created at % (the month has none, or retention is retiring it)', p_created_at
        USING ERRCODE = 'PO035',
              HINT = 'An operator runs payment_outbox.ensure_attempt_partitions() (outbox retention and outbox migrate do too); check_invariants() names ledger_partition_missing.';
END;
$$;

COMMENT ON FUNCTION payment_outbox._require_ledger_partition(timestamptz) IS
'Raises PO035 unless an attached ledger partition (or the converting old table) holds items created '
'at p_created_at; called by enqueue after its INSERT (see the body for why after). Owner only.';

REVOKE ALL ON FUNCTION payment_outbox._require_ledger_partition(timestamptz) FROM PUBLIC;
