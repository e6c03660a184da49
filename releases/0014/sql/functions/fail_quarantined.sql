-- fail_quarantined: an operator records a quarantined item FAILED (terminal), with actor and reason.
CREATE OR REPLACE FUNCTION payment_outbox.fail_quarantined(p_outbox_id uuid, p_reason text, p_actor text)
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
        v_attempt_no, 'FAILED', clock_timestamp(), p_actor, p_reason
    );

    DELETE FROM payment_outbox.payment_outbox_pending AS p
    WHERE p.outbox_id = v_item.outbox_id;

    outbox_id := v_item.outbox_id;
    attempt_no := v_attempt_no;
    state := 'FAILED';
    RETURN NEXT;
END;
$$;

COMMENT ON FUNCTION payment_outbox.fail_quarantined(uuid, text, text) IS
'An operator''s decision that a QUARANTINED item failed (for instance: the rail, asked by its '
'idempotency key, has no such payment): appends a terminal FAILED ledger row with p_actor and '
'p_reason and removes the item from pending. PO030 when the item is not quarantined, PO003 when '
'unknown, PO010 or PO015 for a bad reason or actor; each writes nothing.';

REVOKE ALL ON FUNCTION payment_outbox.fail_quarantined(uuid, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payment_outbox.fail_quarantined(uuid, text, text) TO outbox_operator;
