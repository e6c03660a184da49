-- release_quarantined: an operator makes a quarantined item due again, with a fresh attempt budget.
CREATE OR REPLACE FUNCTION payment_outbox.release_quarantined(p_outbox_id uuid, p_reason text, p_actor text)
RETURNS TABLE (outbox_id uuid, attempt_no integer, state payment_outbox.outbox_attempt_state)
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, payment_outbox, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_item payment_outbox.payment_outbox_pending%ROWTYPE;
    v_attempt_no integer;
BEGIN
    SELECT * INTO v_item FROM payment_outbox._lock_quarantined(p_outbox_id, p_reason, p_actor);
    v_attempt_no := v_item.attempt_count + 1;

    INSERT INTO payment_outbox.payment_outbox_attempts (
        outbox_id, instruction_id, participant_id, sequence_id, idempotency_key, rail_type,
        payload_sha256, item_created_at, attempt_no, state, completed_at, actor, reason
    )
    VALUES (
        v_item.outbox_id, v_item.instruction_id, v_item.participant_id, v_item.sequence_id,
        v_item.idempotency_key, v_item.rail_type, v_item.payload_sha256, v_item.created_at,
        v_attempt_no, 'RELEASED', clock_timestamp(), p_actor, p_reason
    );

    -- Same item, same key: the rail deduplicates on the key. The attempt budget counts from this
    -- release (attempt_base); attempt numbers go on increasing, they are the fencing tokens.
    UPDATE payment_outbox.payment_outbox_pending AS p
    SET
        attempt_count = v_attempt_no,
        attempt_base = v_attempt_no,
        next_attempt_at = now(),
        quarantined_at = NULL,
        quarantine_reason = NULL
    WHERE p.outbox_id = v_item.outbox_id;

    outbox_id := v_item.outbox_id;
    attempt_no := v_attempt_no;
    state := 'RELEASED';
    RETURN NEXT;
END;
$$;

COMMENT ON FUNCTION payment_outbox.release_quarantined(uuid, text, text) IS
'An operator''s release of a QUARANTINED item: appends a RELEASED ledger row with p_actor and '
'p_reason, and makes the item due now under the same outbox id and idempotency key with a fresh '
'attempt budget (max_attempt_count counted from this row''s attempt_no). PO030 when the item is '
'not quarantined (released or failed meanwhile, or never quarantined), PO003 when unknown, PO010 '
'or PO015 for a bad reason or actor; each writes nothing.';

REVOKE ALL ON FUNCTION payment_outbox.release_quarantined(uuid, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payment_outbox.release_quarantined(uuid, text, text) TO outbox_operator;
