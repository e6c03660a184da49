-- Raises the error of one refused item of a payment file, its message naming the item's position.
CREATE OR REPLACE FUNCTION payment_outbox._reject_enqueue_batch_item(
    p_item_no integer,
    p_item jsonb,
    p_first_item jsonb
)
RETURNS void
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, payment_outbox, pg_temp
AS $$
-- Called only on the error path, once, for the first refused item: it tells the fault with the
-- single call's own checks (the same helpers, the same SQLSTATE) and adds the position.
DECLARE
    v_field text;
    v_stored record;
    v_payload_sha256 bytea;
    v_same_payload boolean;
    v_sqlstate text;
    v_message text;
    v_detail text;
    v_hint text;
BEGIN
    BEGIN
        IF jsonb_typeof(p_item) IS DISTINCT FROM 'object'
            OR p_item - ARRAY['instruction_id', 'participant_id', 'idempotency_key', 'rail_type', 'payload'] <> '{}' THEN
            RAISE EXCEPTION 'an item must be a JSON object with no keys but instruction_id, participant_id, '
                'idempotency_key, rail_type and payload'
                USING ERRCODE = 'PO017',
                      HINT = 'Put everything sent to the rail inside payload.';
        END IF;
        FOREACH v_field IN ARRAY ARRAY['instruction_id', 'participant_id', 'idempotency_key', 'rail_type'] LOOP
            IF coalesce(jsonb_typeof(p_item -> v_field), 'null') NOT IN ('string', 'null') THEN
                RAISE EXCEPTION 'argument % must be a JSON string, got %', v_field, jsonb_typeof(p_item -> v_field)
                    USING ERRCODE = 'PO017';
            END IF;
            PERFORM payment_outbox._require_argument(v_field, p_item ->> v_field);
        END LOOP;
        PERFORM payment_outbox._require_payload(p_item -> 'payload');
        v_payload_sha256 := payment_outbox._payload_sha256(p_item -> 'payload');

        -- A key repeated in the file is one item: the later occurrence must match the first.
        IF p_first_item IS NOT NULL THEN
            PERFORM payment_outbox._require_same_item(
                p_item ->> 'idempotency_key', p_first_item ->> 'participant_id', p_first_item ->> 'rail_type',
                payment_outbox._payload_sha256(p_first_item -> 'payload'),
                p_item ->> 'participant_id', p_item ->> 'rail_type',
                CASE
                    WHEN p_first_item -> 'payload' = p_item -> 'payload'
                        THEN payment_outbox._payload_sha256(p_first_item -> 'payload')
                    ELSE v_payload_sha256
                END
            );
        END IF;

        SELECT * INTO v_stored
        FROM payment_outbox._find_outbox_item(p_item ->> 'instruction_id', p_item ->> 'idempotency_key');
        IF FOUND THEN
            -- The payload judged as the file's statement judged it, so the detail names only what differs.
            SELECT s.same_payload INTO v_same_payload
            FROM payment_outbox._same_payload(
                v_stored.outbox_id, v_stored.payload_sha256, p_item -> 'payload', v_payload_sha256
            ) AS s;
            PERFORM payment_outbox._require_same_item(
                p_item ->> 'idempotency_key', v_stored.participant_id, v_stored.rail_type, v_stored.payload_sha256,
                p_item ->> 'participant_id', p_item ->> 'rail_type',
                CASE WHEN v_same_payload THEN v_stored.payload_sha256 ELSE v_payload_sha256 END
            );
        ELSIF EXISTS (
            SELECT FROM payment_outbox.payment_outbox_idempotency_keys AS k
            WHERE k.instruction_id = p_item ->> 'instruction_id' AND k.idempotency_key = p_item ->> 'idempotency_key'
        ) THEN
            PERFORM payment_outbox._reject_missing_item(p_item ->> 'instruction_id', p_item ->> 'idempotency_key');
        ELSE
            PERFORM payment_outbox._require_nfc_key(p_item ->> 'instruction_id', p_item ->> 'idempotency_key');
        END IF;
        RAISE EXCEPTION 'the item was refused, but no check names its fault'
            USING ERRCODE = 'XX000';
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS
            v_sqlstate = RETURNED_SQLSTATE,
            v_message = MESSAGE_TEXT,
            v_detail = PG_EXCEPTION_DETAIL,
            v_hint = PG_EXCEPTION_HINT;
        RAISE EXCEPTION 'payment file item %: %', p_item_no, v_message
            USING ERRCODE = v_sqlstate, DETAIL = v_detail, HINT = v_hint;
    END;
END;
$$;

COMMENT ON FUNCTION payment_outbox._reject_enqueue_batch_item(integer, jsonb, jsonb) IS
'Raises the error of item p_item_no (1-based) of a payment file, as enqueue_payment_outbox would '
'for the same arguments (PO010, PO011, PO001, ...) or PO017 for an item that is not an object of '
'strings and a payload, with "payment file item N: " before the message. p_first_item is the '
'earlier item with the same key, if any.';

REVOKE ALL ON FUNCTION payment_outbox._reject_enqueue_batch_item(integer, jsonb, jsonb) FROM PUBLIC;
