-- Refuses a payload that is not a JSON object with SQLSTATE PO011.
CREATE OR REPLACE FUNCTION payment_outbox._require_payload(p_payload jsonb)
RETURNS void
LANGUAGE plpgsql
IMMUTABLE
SET search_path = pg_catalog, payment_outbox, pg_temp
AS $$
BEGIN
    IF p_payload IS NULL OR jsonb_typeof(p_payload) <> 'object' THEN
        RAISE EXCEPTION 'payload must be a JSON object, got %', coalesce(jsonb_typeof(p_payload), 'null')
            USING ERRCODE = 'PO011',
                  HINT = 'Wrap the payment instruction in a JSON object.';
    END IF;
END;
$$;

COMMENT ON FUNCTION payment_outbox._require_payload(jsonb) IS
'Raises PO011 when a payload is null or not a JSON object.';

REVOKE ALL ON FUNCTION payment_outbox._require_payload(jsonb) FROM PUBLIC;
