-- Refuses a text argument longer than its documented limit with SQLSTATE PO015.
CREATE OR REPLACE FUNCTION payment_outbox._limit_argument(p_name text, p_value text)
RETURNS void
LANGUAGE plpgsql
IMMUTABLE
SET search_path = pg_catalog, payment_outbox, pg_temp
AS $$
BEGIN
    IF length(p_value) > payment_outbox._max_length(p_name) THEN
        RAISE EXCEPTION 'argument % is % characters long; the limit is %',
            p_name, length(p_value), payment_outbox._max_length(p_name)
            USING ERRCODE = 'PO015', COLUMN = p_name,
                  HINT = format('Pass a %s of at most %s characters.', p_name, payment_outbox._max_length(p_name));
    END IF;
END;
$$;

COMMENT ON FUNCTION payment_outbox._limit_argument(text, text) IS
'Raises PO015 when a text argument is longer than its limit (_max_length()); NULL passes.';

REVOKE ALL ON FUNCTION payment_outbox._limit_argument(text, text) FROM PUBLIC;
