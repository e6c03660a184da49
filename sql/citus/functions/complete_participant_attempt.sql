-- complete_participant_attempt: on Citus, complete_outbox_attempt with the item's participant, delegated to its node.
CREATE OR REPLACE FUNCTION payment_outbox.complete_participant_attempt(
    p_participant_id text,
    p_outbox_id uuid,
    p_attempt_no integer,
    p_state payment_outbox.outbox_attempt_state,
    p_error_code text DEFAULT NULL,
    p_error_message text DEFAULT NULL,
    p_rail_reference text DEFAULT NULL,
    p_worker_id text DEFAULT NULL
)
RETURNS TABLE (attempt_no integer, state payment_outbox.outbox_attempt_state)
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, payment_outbox, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_item payment_outbox.payment_outbox_pending%ROWTYPE;
    v_state payment_outbox.outbox_attempt_state := p_state;
    v_attempt_no integer;
    v_completed_at timestamptz;
    v_reason text;
BEGIN
    IF p_state IS NULL OR p_state NOT IN ('DISPATCHED', 'FAILED', 'RETRYABLE') THEN
        RAISE EXCEPTION 'completion state must be DISPATCHED, FAILED or RETRYABLE, got %',
            coalesce(p_state::text, 'null')
            USING ERRCODE = 'PO014';
    END IF;
    IF p_worker_id IS NOT NULL THEN
        PERFORM payment_outbox._require_argument('worker_id', p_worker_id);
    END IF;
    PERFORM payment_outbox._limit_argument('error_code', p_error_code);
    PERFORM payment_outbox._limit_argument('error_message', p_error_message);
    PERFORM payment_outbox._limit_argument('rail_reference', p_rail_reference);
    -- No claim ever has such a number; refused before p_attempt_no + 1 could overflow.
    IF p_attempt_no IS NULL OR p_attempt_no NOT BETWEEN 1 AND 2147483646 THEN
        PERFORM payment_outbox._reject_participant_completion(p_participant_id, p_outbox_id, p_attempt_no);
    END IF;

    v_attempt_no := p_attempt_no + 1;

    -- Only the current claim matches, and with a worker id only the worker holding it: a
    -- completion, retry or repair that got to the row first changed or removed it, and this
    -- statement waits for it and then finds nothing. The row lock orders this completion against
    -- other completions and against repair. Attempt numbers are small and guessable; the worker
    -- id is what keeps a stale worker from completing a claim that is not its own.
    IF v_state = 'RETRYABLE' THEN
        SELECT * INTO v_item
        FROM payment_outbox.payment_outbox_pending AS p
        WHERE
            p.participant_id = p_participant_id AND p.outbox_id = p_outbox_id AND p.attempt_no = p_attempt_no
            AND (p_worker_id IS NULL OR p.worker_id = p_worker_id)
        FOR UPDATE;
        -- Retries exhausted: QUARANTINED, for a person to decide, never FAILED by a machine.
        IF v_item.outbox_id IS NOT NULL THEN
            SELECT l.state, l.reason INTO v_state, v_reason
            FROM payment_outbox._state_at_limit(p_state, v_attempt_no, v_item.attempt_base, p_error_code, NULL) AS l;
        END IF;
    ELSE
        DELETE FROM payment_outbox.payment_outbox_pending AS p
        WHERE
            p.participant_id = p_participant_id AND p.outbox_id = p_outbox_id AND p.attempt_no = p_attempt_no
            AND (p_worker_id IS NULL OR p.worker_id = p_worker_id)
        RETURNING * INTO v_item;
    END IF;

    IF v_item.outbox_id IS NULL THEN
        PERFORM payment_outbox._reject_participant_completion(p_participant_id, p_outbox_id, p_attempt_no);
    END IF;
    v_completed_at := clock_timestamp();

    INSERT INTO payment_outbox.payment_outbox_attempts
    SELECT l.*
    FROM payment_outbox._ledger_row(
        v_item, v_attempt_no, v_state, v_completed_at, p_error_code, p_error_message, p_rail_reference,
        p_reason => v_reason
    ) AS l;

    IF v_state = 'RETRYABLE' THEN
        UPDATE payment_outbox.payment_outbox_pending AS p
        SET
            attempt_no = NULL,
            worker_id = NULL,
            claimed_at = NULL,
            attempt_count = v_attempt_no,
            next_attempt_at = now() + payment_outbox._retry_delay(v_attempt_no)
        WHERE p.participant_id = p_participant_id AND p.outbox_id = p_outbox_id;
    ELSIF v_state = 'QUARANTINED' THEN
        UPDATE payment_outbox.payment_outbox_pending AS p
        SET
            attempt_no = NULL,
            worker_id = NULL,
            claimed_at = NULL,
            attempt_count = v_attempt_no,
            next_attempt_at = 'infinity',
            quarantined_at = v_completed_at,
            quarantine_reason = v_reason
        WHERE p.participant_id = p_participant_id AND p.outbox_id = p_outbox_id;
    END IF;

    attempt_no := v_attempt_no;
    state := v_state;
    RETURN NEXT;
END;
$$;

COMMENT ON FUNCTION payment_outbox.complete_participant_attempt(text, uuid, integer, payment_outbox.outbox_attempt_state, text, text, text, text) IS
'On Citus: complete_outbox_attempt for an item of p_participant_id (as claim_outbox_bucket returned '
'it), delegated to the node holding the participant; every statement is routed to its shard group. '
'Same fencing (attempt_no, worker), states and errors: PO002 stale, PO003 unknown (also for an item '
'of another participant), PO014 bad state.';

REVOKE ALL ON FUNCTION payment_outbox.complete_participant_attempt(text, uuid, integer, payment_outbox.outbox_attempt_state, text, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payment_outbox.complete_participant_attempt(text, uuid, integer, payment_outbox.outbox_attempt_state, text, text, text, text) TO outbox_executor;
