-- Makes the ledger append-only: UPDATE and DELETE fail for every role, the owner included.
CREATE FUNCTION payment_outbox._reject_ledger_change()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, payment_outbox, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'payment_outbox_attempts is append-only: % is not allowed', tg_op
        USING ERRCODE = 'PO020',
              HINT = 'Record a new attempt through the payment_outbox API instead.';
END;
$$;

COMMENT ON FUNCTION payment_outbox._reject_ledger_change() IS
'Trigger function that refuses every UPDATE and DELETE on payment_outbox_attempts.';

-- A statement trigger fires even when no row matches, so the refusal does not depend on data.
CREATE TRIGGER payment_outbox_attempts_append_only
BEFORE UPDATE OR DELETE ON payment_outbox.payment_outbox_attempts
FOR EACH STATEMENT EXECUTE FUNCTION payment_outbox._reject_ledger_change();

COMMENT ON TRIGGER payment_outbox_attempts_append_only ON payment_outbox.payment_outbox_attempts IS
'Refuses UPDATE and DELETE on the ledger for everyone.';

REVOKE ALL ON FUNCTION payment_outbox._reject_ledger_change() FROM PUBLIC;
REVOKE ALL ON payment_outbox.payment_outbox_attempts FROM PUBLIC;
GRANT SELECT ON payment_outbox.payment_outbox_attempts TO outbox_auditor;
