-- Refuses a null or blank required text argument with SQLSTATE PO010.
CREATE OR REPLACE FUNCTION payment_outbox._require_argument(p_name text, p_value text)
RETURNS void
LANGUAGE plpgsql
IMMUTABLE
SET search_path = pg_catalog, payment_outbox, pg_temp
AS $$
BEGIN
    IF p_value IS NULL OR btrim(p_value) = '' THEN
        RAISE EXCEPTION 'argument % must not be null or empty', p_name
            USING ERRCODE = 'PO010',
                  HINT = format('Pass a non-empty %s.', p_name);
    END IF;
END;
$$;

COMMENT ON FUNCTION payment_outbox._require_argument(text, text) IS
'Raises PO010 when a required text argument is null, empty or blank.';

REVOKE ALL ON FUNCTION payment_outbox._require_argument(text, text) FROM PUBLIC;
