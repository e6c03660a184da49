-- _retire_partition: retention's last step on a partition: drops the detached table and records it retired.
CREATE OR REPLACE FUNCTION payment_outbox._retire_partition(p_partition text, p_exported_to text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, payment_outbox, pg_temp
AS $$
BEGIN
    PERFORM FROM payment_outbox.payment_outbox_attempt_partitions AS r
    WHERE r.partition_name = p_partition AND r.state = 'detaching'
    FOR UPDATE;
    IF NOT FOUND OR EXISTS (
        SELECT FROM pg_catalog.pg_inherits AS h
        INNER JOIN pg_catalog.pg_class AS c ON h.inhrelid = c.oid
        WHERE c.relnamespace = 'payment_outbox'::regnamespace AND c.relname = p_partition
    ) THEN
        RAISE EXCEPTION 'ledger partition % is not detached by retention', p_partition
            USING ERRCODE = 'PO033',
                  HINT = 'outbox retention detaches a partition (DETACH PARTITION ... CONCURRENTLY) before it drops it.';
    END IF;
    EXECUTE format('DROP TABLE IF EXISTS payment_outbox.%I', p_partition);
    UPDATE payment_outbox.payment_outbox_attempt_partitions AS r
    SET state = 'retired', retired_at = pg_catalog.now(), retired_by = session_user, exported_to = p_exported_to
    WHERE r.partition_name = p_partition;
END;
$$;

COMMENT ON FUNCTION payment_outbox._retire_partition(text, text) IS
'Retention''s last step on a ledger partition (as the owner): drops the partition once it is detached '
'(PO033 otherwise) and records it retired, with the file it was exported to, when, and by whom.';

REVOKE ALL ON FUNCTION payment_outbox._retire_partition(text, text) FROM PUBLIC;
