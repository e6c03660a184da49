-- Refuses a negative (or null) zombie threshold with SQLSTATE PO013.
CREATE OR REPLACE FUNCTION payment_outbox._require_threshold(p_threshold_seconds integer)
RETURNS void
LANGUAGE plpgsql
IMMUTABLE
SET search_path = pg_catalog, payment_outbox, pg_temp
AS $$
BEGIN
    IF p_threshold_seconds IS NULL OR p_threshold_seconds < 0 THEN
        RAISE EXCEPTION 'threshold must be a non-negative number of seconds, got %',
            coalesce(p_threshold_seconds::text, 'null')
            USING ERRCODE = 'PO013';
    END IF;
END;
$$;

COMMENT ON FUNCTION payment_outbox._require_threshold(integer) IS
'Raises PO013 when a zombie threshold is null or negative (repair_zombie_attempts, list_stuck_dispatching).';

REVOKE ALL ON FUNCTION payment_outbox._require_threshold(integer) FROM PUBLIC;
