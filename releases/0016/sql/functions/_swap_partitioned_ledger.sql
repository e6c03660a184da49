-- _swap_partitioned_ledger: the conversion's last step: the partitioned ledger takes the ledger's name; the old table becomes its first partition.
CREATE OR REPLACE FUNCTION payment_outbox._swap_partitioned_ledger()
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, payment_outbox, pg_temp
SET timezone = 'UTC'
AS $$
DECLARE
    v_until timestamptz;
    v_keep boolean;
BEGIN
    -- The caller's transaction runs under a short lock_timeout and is retried: these two locks
    -- are the only ACCESS EXCLUSIVE the conversion takes on a table with rows, and every
    -- statement after them changes the catalog only (the CHECK validated before spares ATTACH
    -- its scan; the indexes it adopts were built CONCURRENTLY before).
    LOCK TABLE payment_outbox.payment_outbox_attempts IN ACCESS EXCLUSIVE MODE;
    LOCK TABLE payment_outbox.payment_outbox_attempts_new IN ACCESS EXCLUSIVE MODE;
    SELECT r.range_to INTO STRICT v_until
    FROM payment_outbox.payment_outbox_attempt_partitions AS r
    WHERE r.partition_name = 'payment_outbox_attempts_legacy' AND r.state = 'converting';
    v_keep := EXISTS (SELECT FROM payment_outbox.payment_outbox_attempts);

    ALTER TABLE payment_outbox.payment_outbox_attempts DROP CONSTRAINT payment_outbox_attempts_pkey;
    DROP INDEX payment_outbox.payment_outbox_attempts_outbox_id_terminal_key;
    DROP INDEX payment_outbox.payment_outbox_attempts_idempotency_terminal_key;
    DROP TRIGGER payment_outbox_attempts_append_only ON payment_outbox.payment_outbox_attempts;
    ALTER TABLE payment_outbox.payment_outbox_attempts RENAME TO payment_outbox_attempts_legacy;
    ALTER TABLE payment_outbox.payment_outbox_attempts_new RENAME TO payment_outbox_attempts;
    ALTER INDEX payment_outbox.payment_outbox_attempts_new_pkey RENAME TO payment_outbox_attempts_pkey;
    ALTER INDEX payment_outbox.payment_outbox_attempts_new_outbox_id_terminal_key
    RENAME TO payment_outbox_attempts_outbox_id_terminal_key;
    ALTER INDEX payment_outbox.payment_outbox_attempts_new_idempotency_terminal_key
    RENAME TO payment_outbox_attempts_idempotency_terminal_key;

    IF NOT v_keep THEN
        -- An empty ledger (a fresh install) is not kept as a partition: the caller drops it once
        -- the functions that named it by oid name the new ledger.
        DELETE FROM payment_outbox.payment_outbox_attempt_partitions AS r
        WHERE r.partition_name = 'payment_outbox_attempts_legacy';
        RETURN FALSE;
    END IF;

    ALTER TABLE payment_outbox.payment_outbox_attempts_legacy
    ADD CONSTRAINT payment_outbox_attempts_legacy_pkey PRIMARY KEY USING INDEX payment_outbox_attempts_legacy_pkey;
    REVOKE ALL ON payment_outbox.payment_outbox_attempts_legacy FROM outbox_auditor;
    EXECUTE format(
        'ALTER TABLE payment_outbox.payment_outbox_attempts ATTACH PARTITION payment_outbox.payment_outbox_attempts_legacy FOR VALUES FROM (MINVALUE) TO (%L)',
        v_until
    );
    ALTER TABLE payment_outbox.payment_outbox_attempts_legacy
    DROP CONSTRAINT payment_outbox_attempts_item_created_at_before_check;
    COMMENT ON TABLE payment_outbox.payment_outbox_attempts_legacy IS
    'Partition of payment_outbox_attempts: the ledger as it was before partitioning, attached whole '
    '(never rewritten), with every item created before its upper bound.';
    COMMENT ON INDEX payment_outbox.payment_outbox_attempts_legacy_pkey IS
    'Partition of payment_outbox_attempts_pkey.';
    COMMENT ON INDEX payment_outbox.payment_outbox_attempts_legacy_outbox_id_terminal_key IS
    'Partition of payment_outbox_attempts_outbox_id_terminal_key.';
    COMMENT ON INDEX payment_outbox.payment_outbox_attempts_legacy_idempotency_terminal_key IS
    'Partition of payment_outbox_attempts_idempotency_terminal_key.';
    UPDATE payment_outbox.payment_outbox_attempt_partitions AS r
    SET state = 'attached'
    WHERE r.partition_name = 'payment_outbox_attempts_legacy';
    RETURN TRUE;
END;
$$;

COMMENT ON FUNCTION payment_outbox._swap_partitioned_ledger() IS
'The conversion''s last step (runner/ledger_conversion.py), in one short transaction: renames the '
'old ledger to payment_outbox_attempts_legacy and the staged partitioned one to '
'payment_outbox_attempts, then attaches the old one as the partition of everything created before '
'the recorded bound (its validated CHECK spares the scan, its CONCURRENTLY built indexes are '
'adopted). Returns false when the old ledger was empty: it is then left detached for the caller to '
'drop. Owner only.';

REVOKE ALL ON FUNCTION payment_outbox._swap_partitioned_ledger() FROM PUBLIC;
