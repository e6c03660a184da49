-- Refuses a batch of more items than _max_batch_items() with SQLSTATE PO018.
CREATE OR REPLACE FUNCTION payment_outbox._limit_batch(p_name text, p_count integer)
RETURNS void
LANGUAGE plpgsql
IMMUTABLE
SET search_path = pg_catalog, payment_outbox, pg_temp
AS $$
BEGIN
    IF p_count > payment_outbox._max_batch_items() THEN
        RAISE EXCEPTION 'argument % holds % items; the limit is %', p_name, p_count, payment_outbox._max_batch_items()
            USING ERRCODE = 'PO018',
                  HINT = format('Split the batch into calls of at most %s items.', payment_outbox._max_batch_items());
    END IF;
END;
$$;

COMMENT ON FUNCTION payment_outbox._limit_batch(text, integer) IS
'Raises PO018 when a batch argument holds more than _max_batch_items() items.';

REVOKE ALL ON FUNCTION payment_outbox._limit_batch(text, integer) FROM PUBLIC;
