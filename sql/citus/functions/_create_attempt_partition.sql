-- _create_attempt_partition on Citus: one partition (its keys hold participant_id, the distribution column) of the ledger, named, commented and attached without an ACCESS EXCLUSIVE lock on the ledger.
CREATE OR REPLACE FUNCTION payment_outbox._create_attempt_partition(
    p_parent text,
    p_name text,
    p_from timestamptz,
    p_to timestamptz
)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, payment_outbox, pg_temp
SET timezone = 'UTC'
AS $$
BEGIN
    -- Created apart, then attached: ATTACH PARTITION takes SHARE UPDATE EXCLUSIVE on the ledger,
    -- which no reader or writer conflicts with; CREATE TABLE ... PARTITION OF would take ACCESS
    -- EXCLUSIVE. The indexes exist before the attach, with the package's names, so the attach
    -- adopts them instead of building its own under generated names.
    EXECUTE format(
        'CREATE TABLE payment_outbox.%I (LIKE payment_outbox.%I INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING COMMENTS INCLUDING STORAGE)',
        p_name, p_parent
    );
    EXECUTE format(
        'ALTER TABLE payment_outbox.%I ADD CONSTRAINT %I PRIMARY KEY (outbox_id, attempt_no, item_created_at, participant_id)',
        p_name, p_name || '_pkey'
    );
    EXECUTE format(
        'CREATE UNIQUE INDEX %I ON payment_outbox.%I (outbox_id, item_created_at, participant_id) WHERE state IN (''DISPATCHED'', ''FAILED'')',
        p_name || '_outbox_id_terminal_key', p_name
    );
    EXECUTE format(
        'CREATE UNIQUE INDEX %I ON payment_outbox.%I (participant_id, instruction_id, idempotency_key, item_created_at) WHERE state IN (''DISPATCHED'', ''FAILED'')',
        p_name || '_idempotency_terminal_key', p_name
    );
    EXECUTE format(
        'COMMENT ON TABLE payment_outbox.%I IS %L', p_name,
        format('Partition of payment_outbox_attempts: items created from %s to %s (UTC).', p_from, p_to)
    );
    EXECUTE format('COMMENT ON INDEX payment_outbox.%I IS %L', p_name || '_pkey',
        'Partition of payment_outbox_attempts_pkey.');
    EXECUTE format('COMMENT ON INDEX payment_outbox.%I IS %L', p_name || '_outbox_id_terminal_key',
        'Partition of payment_outbox_attempts_outbox_id_terminal_key.');
    EXECUTE format('COMMENT ON INDEX payment_outbox.%I IS %L', p_name || '_idempotency_terminal_key',
        'Partition of payment_outbox_attempts_idempotency_terminal_key.');
    EXECUTE format('REVOKE ALL ON payment_outbox.%I FROM PUBLIC', p_name);
    EXECUTE format(
        'ALTER TABLE payment_outbox.%I ATTACH PARTITION payment_outbox.%I FOR VALUES FROM (%L) TO (%L)',
        p_parent, p_name, p_from, p_to
    );
    INSERT INTO payment_outbox.payment_outbox_attempt_partitions (partition_name, range_from, range_to)
    VALUES (p_name, p_from, p_to);
END;
$$;

COMMENT ON FUNCTION payment_outbox._create_attempt_partition(text, text, timestamptz, timestamptz) IS
'Creates the ledger partition p_name for item_created_at in [p_from, p_to), with the package''s '
'index names and comments, attaches it to p_parent (SHARE UPDATE EXCLUSIVE on the ledger) and '
'records it in payment_outbox_attempt_partitions. On Citus the keys hold participant_id and the attach distributes the partition. '
'Run by the owner only (the conversion, ensure_attempt_partitions()).';

REVOKE ALL ON FUNCTION payment_outbox._create_attempt_partition(text, text, timestamptz, timestamptz) FROM PUBLIC;
