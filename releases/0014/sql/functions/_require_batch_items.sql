-- Refuses a payment file that is not a JSON array (PO017) or holds more items than the limit (PO018).
CREATE OR REPLACE FUNCTION payment_outbox._require_batch_items(p_name text, p_items jsonb)
RETURNS void
LANGUAGE plpgsql
IMMUTABLE
SET search_path = pg_catalog, payment_outbox, pg_temp
AS $$
BEGIN
    IF p_items IS NULL OR jsonb_typeof(p_items) <> 'array' THEN
        RAISE EXCEPTION 'argument % must be a JSON array, got %', p_name, coalesce(jsonb_typeof(p_items), 'null')
            USING ERRCODE = 'PO017',
                  HINT = 'Pass the items as a JSON array of objects.';
    END IF;
    PERFORM payment_outbox._limit_batch(p_name, jsonb_array_length(p_items));
END;
$$;

COMMENT ON FUNCTION payment_outbox._require_batch_items(text, jsonb) IS
'Raises PO017 when a batch argument is not a JSON array, PO018 when it holds more than '
'_max_batch_items() items.';

REVOKE ALL ON FUNCTION payment_outbox._require_batch_items(text, jsonb) FROM PUBLIC;
