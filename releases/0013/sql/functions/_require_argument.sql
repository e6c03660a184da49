-- Refuses a null or blank required text argument (PO010), or one over its documented length (PO015).
CREATE OR REPLACE FUNCTION payment_outbox._require_argument(p_name text, p_value text)
RETURNS void
LANGUAGE plpgsql
IMMUTABLE
SET search_path = pg_catalog, payment_outbox, pg_temp
AS $$
BEGIN
    IF p_value IS NULL OR btrim(p_value, payment_outbox._space_characters()) = '' THEN
        RAISE EXCEPTION 'argument % must not be null, empty or blank', p_name
            USING ERRCODE = 'PO010', COLUMN = p_name,
                  HINT = format('Pass a %s with at least one character that is not white space.', p_name);
    END IF;
    PERFORM payment_outbox._limit_argument(p_name, p_value);
END;
$$;

COMMENT ON FUNCTION payment_outbox._require_argument(text, text) IS
'Raises PO010 when a required text argument is null, empty or made only of Unicode white space '
'(_space_characters()), PO015 when it is longer than its limit (_max_length()).';

REVOKE ALL ON FUNCTION payment_outbox._require_argument(text, text) FROM PUBLIC;
