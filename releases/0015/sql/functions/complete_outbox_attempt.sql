-- complete_outbox_attempt: records the outcome of a claimed attempt, fenced by its attempt_no and worker.
-- Releases before 0.2 had no p_worker_id. CREATE OR REPLACE cannot add a parameter, and the two forms
-- side by side would make every call without a worker id ambiguous (42725), so the old form is
-- dropped here, in the same transaction that creates the new one: a concurrent call resolves to one
-- or the other, never to neither. Calls with six arguments reach the new form.
DROP FUNCTION IF EXISTS payment_outbox.complete_outbox_attempt(
    uuid, integer, payment_outbox.outbox_attempt_state, text, text, text
);

CREATE OR REPLACE FUNCTION payment_outbox.complete_outbox_attempt(
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
        PERFORM payment_outbox._reject_completion(p_outbox_id, p_attempt_no);
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
            p.outbox_id = p_outbox_id AND p.attempt_no = p_attempt_no
            AND (p_worker_id IS NULL OR p.worker_id = p_worker_id)
        FOR UPDATE;
        -- Retries exhausted: the budget counts from the item's latest release (attempt_base), and
        -- a machine never decides such an item FAILED: it waits in QUARANTINED for a person.
        IF v_item.outbox_id IS NOT NULL
            AND v_attempt_no - v_item.attempt_base >= payment_outbox._max_attempt_count() THEN
            v_state := 'QUARANTINED';
            v_reason := format(
                'retries exhausted: RETRYABLE%s at attempt %s, the maximum attempt count is %s',
                coalesce(' (' || p_error_code || ')', ''), v_attempt_no - v_item.attempt_base,
                payment_outbox._max_attempt_count()
            );
        END IF;
    ELSE
        DELETE FROM payment_outbox.payment_outbox_pending AS p
        WHERE
            p.outbox_id = p_outbox_id AND p.attempt_no = p_attempt_no
            AND (p_worker_id IS NULL OR p.worker_id = p_worker_id)
        RETURNING * INTO v_item;
    END IF;

    IF v_item.outbox_id IS NULL THEN
        PERFORM payment_outbox._reject_completion(p_outbox_id, p_attempt_no);
    END IF;
    v_completed_at := clock_timestamp();

    INSERT INTO payment_outbox.payment_outbox_attempts (
        outbox_id, instruction_id, participant_id, sequence_id, idempotency_key, rail_type,
        payload_sha256, item_created_at, attempt_no, state, claimed_at, completed_at, worker_id,
        error_code, error_message, rail_reference, latency_ms, reason
    )
    VALUES (
        v_item.outbox_id, v_item.instruction_id, v_item.participant_id, v_item.sequence_id,
        v_item.idempotency_key, v_item.rail_type, v_item.payload_sha256, v_item.created_at,
        v_attempt_no, v_state, v_item.claimed_at, v_completed_at, v_item.worker_id,
        p_error_code, p_error_message, p_rail_reference,
        payment_outbox._latency_ms(v_item.claimed_at, v_completed_at), v_reason
    );

    IF v_state = 'RETRYABLE' THEN
        UPDATE payment_outbox.payment_outbox_pending AS p
        SET
            attempt_no = NULL,
            worker_id = NULL,
            claimed_at = NULL,
            attempt_count = v_attempt_no,
            next_attempt_at = now() + payment_outbox._retry_delay(v_attempt_no)
        WHERE p.outbox_id = p_outbox_id;
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
        WHERE p.outbox_id = p_outbox_id;
    END IF;

    attempt_no := v_attempt_no;
    state := v_state;
    RETURN NEXT;
END;
$$;

COMMENT ON FUNCTION payment_outbox.complete_outbox_attempt(
    uuid, integer, payment_outbox.outbox_attempt_state, text, text, text, text
) IS
'Ends the claim whose DISPATCHING attempt is p_attempt_no, held by p_worker_id when given: appends '
'a DISPATCHED, FAILED or RETRYABLE attempt (attempt_no = p_attempt_no + 1). Terminal states remove '
'the item from pending; RETRYABLE makes it due again after backoff, or, at the maximum attempt '
'count since the item''s latest release, QUARANTINED (returned as the state): kept in pending, never '
'due, until release_quarantined or fail_quarantined. Any other attempt_no, or another worker, raises '
'PO002 and writes nothing.';

REVOKE ALL ON FUNCTION payment_outbox.complete_outbox_attempt(
    uuid, integer, payment_outbox.outbox_attempt_state, text, text, text, text
) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payment_outbox.complete_outbox_attempt(
    uuid, integer, payment_outbox.outbox_attempt_state, text, text, text, text
) TO outbox_executor;
