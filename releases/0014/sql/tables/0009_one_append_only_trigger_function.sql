-- One trigger function refuses UPDATE and DELETE on both append-only tables; the two it replaces
-- differed only in their message.
CREATE FUNCTION payment_outbox._reject_update_or_delete()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, payment_outbox, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % is not allowed', tg_table_name, tg_op
        USING ERRCODE = 'PO020',
              HINT = tg_argv[0];
END;
$$;

COMMENT ON FUNCTION payment_outbox._reject_update_or_delete() IS
'Trigger function that refuses every UPDATE and DELETE on an append-only table (PO020); the '
'trigger''s one argument is the hint that says what to do instead.';

REVOKE ALL ON FUNCTION payment_outbox._reject_update_or_delete() FROM PUBLIC;

-- CREATE OR REPLACE TRIGGER swaps the function in one statement: the tables are never without one.
CREATE OR REPLACE TRIGGER payment_outbox_attempts_append_only
BEFORE UPDATE OR DELETE ON payment_outbox.payment_outbox_attempts
FOR EACH STATEMENT EXECUTE FUNCTION payment_outbox._reject_update_or_delete(
    'Record a new attempt through the payment_outbox API instead.'
);

COMMENT ON TRIGGER payment_outbox_attempts_append_only ON payment_outbox.payment_outbox_attempts IS
'Refuses UPDATE and DELETE on the ledger for everyone.';

CREATE OR REPLACE TRIGGER payment_outbox_idempotency_keys_append_only
BEFORE UPDATE OR DELETE ON payment_outbox.payment_outbox_idempotency_keys
FOR EACH STATEMENT EXECUTE FUNCTION payment_outbox._reject_update_or_delete(
    'An idempotency key, once used, belongs to its item for good.'
);

COMMENT ON TRIGGER payment_outbox_idempotency_keys_append_only ON payment_outbox.payment_outbox_idempotency_keys IS
'Refuses UPDATE and DELETE on the key register for everyone.';

DROP FUNCTION payment_outbox._reject_ledger_change();
DROP FUNCTION payment_outbox._reject_key_register_change();
