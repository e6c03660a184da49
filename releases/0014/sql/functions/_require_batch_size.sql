-- Refuses a batch size below 1 (or null) with SQLSTATE PO012.
CREATE OR REPLACE FUNCTION payment_outbox._require_batch_size(p_batch_size integer)
RETURNS void
LANGUAGE plpgsql
IMMUTABLE
SET search_path = pg_catalog, payment_outbox, pg_temp
AS $$
BEGIN
    IF p_batch_size IS NULL OR p_batch_size < 1 THEN
        RAISE EXCEPTION 'batch size must be at least 1, got %', coalesce(p_batch_size::text, 'null')
            USING ERRCODE = 'PO012';
    END IF;
END;
$$;

COMMENT ON FUNCTION payment_outbox._require_batch_size(integer) IS
'Raises PO012 when a batch size is null or below 1 (claim_outbox_batch, repair_zombie_attempts).';

REVOKE ALL ON FUNCTION payment_outbox._require_batch_size(integer) FROM PUBLIC;
