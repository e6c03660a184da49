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
    v_completed_at timestamptz;
BEGIN
    SELECT * INTO v_item FROM payment_outbox._lock_quarantined(p_outbox_id, p_reason, p_actor);
    v_attempt_no := v_item.attempt_count + 1;
    -- A variable, not clock_timestamp() in the call: an argument that is volatile keeps the
    -- planner from inlining _ledger_row.
    v_completed_at := clock_timestamp();

    INSERT INTO payment_outbox.payment_outbox_attempts
    SELECT l.*
    FROM payment_outbox._ledger_row(
        v_item, v_attempt_no, 'FAILED', v_completed_at, p_reason => p_reason, p_actor => p_actor
    ) AS l;

    DELETE FROM payment_outbox.payment_outbox_pending AS p
    -- The participant too: on Citus it routes the statement to the item's shard (sql/citus/).
    WHERE p.participant_id = v_item.participant_id AND p.outbox_id = v_item.outbox_id;

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
