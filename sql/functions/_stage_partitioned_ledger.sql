-- _stage_partitioned_ledger: the conversion's first step: the partitioned ledger beside the old one, empty, under a staging name.
CREATE OR REPLACE FUNCTION payment_outbox._stage_partitioned_ledger(p_legacy_until timestamptz)
RETURNS timestamptz
LANGUAGE plpgsql
SET search_path = pg_catalog, payment_outbox, pg_temp
SET timezone = 'UTC'
AS $$
DECLARE
    v_until timestamptz;
BEGIN
    -- A re-run keeps the bound the first run chose: the CHECK on the old table names it.
    SELECT r.range_to INTO v_until
    FROM payment_outbox.payment_outbox_attempt_partitions AS r
    WHERE r.partition_name = 'payment_outbox_attempts_legacy';
    IF FOUND THEN
        RETURN v_until;
    END IF;
    IF to_regclass('payment_outbox.payment_outbox_attempts_new') IS NULL THEN
        -- LIKE copies the columns (those other migrations added too), their comments, defaults,
        -- NOT NULL and CHECK constraints under their names, which ATTACH requires of the old table.
        CREATE TABLE payment_outbox.payment_outbox_attempts_new (
            LIKE payment_outbox.payment_outbox_attempts
            INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING COMMENTS INCLUDING STORAGE
        ) PARTITION BY RANGE (item_created_at);
        -- Every unique index holds the partition key. An item's rows all carry its creation
        -- time, so two still mean what they meant: attempt_no unique per item, one terminal
        -- attempt per item. The third no longer refuses a second terminal item under one key
        -- (two items of one key differ in item_created_at): the key register's primary key
        -- keeps a key to one item, and check_invariants() names the damage of before tables/0010.
        ALTER TABLE payment_outbox.payment_outbox_attempts_new
        ADD CONSTRAINT payment_outbox_attempts_new_pkey PRIMARY KEY (outbox_id, attempt_no, item_created_at);
        CREATE UNIQUE INDEX payment_outbox_attempts_new_outbox_id_terminal_key
        ON payment_outbox.payment_outbox_attempts_new (outbox_id, item_created_at)
        WHERE state IN ('DISPATCHED', 'FAILED');
        CREATE UNIQUE INDEX payment_outbox_attempts_new_idempotency_terminal_key
        ON payment_outbox.payment_outbox_attempts_new (instruction_id, idempotency_key, item_created_at)
        WHERE state IN ('DISPATCHED', 'FAILED');
        -- A statement trigger on the ledger refuses even an UPDATE or DELETE of no rows; the row
        -- trigger is cloned into every partition, present and future, so a statement naming a
        -- partition directly is refused too (statement triggers are not inherited).
        CREATE TRIGGER payment_outbox_attempts_append_only
        BEFORE UPDATE OR DELETE ON payment_outbox.payment_outbox_attempts_new
        FOR EACH STATEMENT EXECUTE FUNCTION payment_outbox._reject_update_or_delete(
            'Record a new attempt through the payment_outbox API instead.'
        );
        CREATE TRIGGER payment_outbox_attempts_rows_append_only
        BEFORE UPDATE OR DELETE ON payment_outbox.payment_outbox_attempts_new
        FOR EACH ROW EXECUTE FUNCTION payment_outbox._reject_update_or_delete(
            'Record a new attempt through the payment_outbox API instead.'
        );
        COMMENT ON TABLE payment_outbox.payment_outbox_attempts_new IS
        'Append-only ledger: one row per state change of an outbox item (DISPATCHING, DISPATCHED, '
        'RETRYABLE, FAILED, ZOMBIE_REQUEUE), attempt_no strictly increasing per item. UPDATE and DELETE '
        'are refused for everyone, on the ledger and on each partition; runtime roles have no TRUNCATE. '
        'Partitioned by item_created_at (monthly, payment_outbox_attempt_partitions lists them), so an '
        'item''s whole history lives in one partition and outbox retention can drop a month whose items '
        'are all terminal.';
        COMMENT ON INDEX payment_outbox.payment_outbox_attempts_new_pkey IS
        'attempt_no is unique per item (item_created_at is the same on every row of an item): two '
        'writers of the same attempt cannot both succeed.';
        COMMENT ON INDEX payment_outbox.payment_outbox_attempts_new_outbox_id_terminal_key IS
        'At most one terminal attempt (DISPATCHED or FAILED) per item: no payment completes twice.';
        COMMENT ON INDEX payment_outbox.payment_outbox_attempts_new_idempotency_terminal_key IS
        'Idempotency lookups for items that have left pending. Unique with item_created_at (a partitioned '
        'table''s unique index holds its partition key), so it does not refuse a second terminal item under '
        'one key: the key register keeps a key to one item; check_invariants() names the damage of before 0010.';
        COMMENT ON TRIGGER payment_outbox_attempts_append_only ON payment_outbox.payment_outbox_attempts_new IS
        'Refuses UPDATE and DELETE on the ledger for everyone.';
        COMMENT ON TRIGGER payment_outbox_attempts_rows_append_only ON payment_outbox.payment_outbox_attempts_new IS
        'Refuses UPDATE and DELETE of any row, in every partition, for everyone.';
        REVOKE ALL ON payment_outbox.payment_outbox_attempts_new FROM PUBLIC;
        GRANT SELECT ON payment_outbox.payment_outbox_attempts_new TO outbox_auditor;
    END IF;
    INSERT INTO payment_outbox.payment_outbox_attempt_partitions (partition_name, range_from, range_to, state)
    VALUES ('payment_outbox_attempts_legacy', NULL, p_legacy_until, 'converting');
    RETURN p_legacy_until;
END;
$$;

COMMENT ON FUNCTION payment_outbox._stage_partitioned_ledger(timestamptz) IS
'The conversion''s first step (runner/ledger_conversion.py): creates the partitioned ledger, empty, '
'as payment_outbox_attempts_new, and records the bound below which the '
'old table will hold rows (p_legacy_until). Re-run, returns the bound recorded first. Owner only.';

REVOKE ALL ON FUNCTION payment_outbox._stage_partitioned_ledger(timestamptz) FROM PUBLIC;
