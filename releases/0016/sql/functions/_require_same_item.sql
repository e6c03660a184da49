-- Refuses a repeated enqueue whose arguments differ from the item its key already holds.
CREATE OR REPLACE FUNCTION payment_outbox._require_same_item(
    p_idempotency_key text,
    p_existing_participant_id text,
    p_existing_rail_type text,
    p_existing_payload_sha256 bytea,
    p_participant_id text,
    p_rail_type text,
    p_payload_sha256 bytea
)
RETURNS void
LANGUAGE plpgsql
IMMUTABLE
SET search_path = pg_catalog, payment_outbox, pg_temp
AS $$
DECLARE
    v_differs text[] := ARRAY[]::text[];
BEGIN
    IF p_existing_participant_id IS DISTINCT FROM p_participant_id THEN
        v_differs := v_differs || 'participant_id'::text;
    END IF;
    IF p_existing_rail_type IS DISTINCT FROM p_rail_type THEN
        v_differs := v_differs || 'rail_type'::text;
    END IF;
    IF p_existing_payload_sha256 IS DISTINCT FROM p_payload_sha256 THEN
        v_differs := v_differs || 'payload'::text;
    END IF;
    IF cardinality(v_differs) > 0 THEN
        RAISE EXCEPTION 'idempotency key % reused with different arguments', p_idempotency_key
            USING ERRCODE = 'PO001',
                  DETAIL = format('Differs from the original item in: %s.', array_to_string(v_differs, ', ')),
                  HINT = 'Use a new idempotency key for a new payment.';
    END IF;
END;
$$;

COMMENT ON FUNCTION payment_outbox._require_same_item(text, text, text, bytea, text, text, bytea) IS
'Raises PO001 when participant, rail type or payload differ from the item the key already holds.';

REVOKE ALL ON FUNCTION payment_outbox._require_same_item(text, text, text, bytea, text, text, bytea)
FROM PUBLIC;
