-- repair_zombie_attempts: requeues items whose DISPATCHING claim is older than the threshold.
CREATE OR REPLACE FUNCTION payment_outbox.repair_zombie_attempts(
    p_threshold_seconds integer,
    p_batch_size integer DEFAULT 100
)
RETURNS TABLE (
    outbox_id uuid,
    attempt_no integer,
    previous_state text,
    new_state text,
    stale_seconds numeric,
    worker_id text
)
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, payment_outbox, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_max_attempt_count integer := payment_outbox._max_attempt_count();
BEGIN
    PERFORM payment_outbox._require_threshold(p_threshold_seconds);
    PERFORM payment_outbox._require_batch_size(p_batch_size);

    RETURN QUERY
    WITH zombie AS (
        -- SKIP LOCKED: an item locked by a completion or another repairer is theirs to decide.
        SELECT
            z.*,
            greatest(z.attempt_count, z.attempt_no) + 1 AS new_attempt_no
        FROM payment_outbox.payment_outbox_pending AS z
        WHERE z.attempt_no IS NOT NULL AND z.claimed_at < now() - make_interval(secs => p_threshold_seconds)
        ORDER BY z.claimed_at
        LIMIT p_batch_size
        FOR UPDATE SKIP LOCKED
    ),

    decided AS (
        -- At the maximum attempt count (counted from the item's latest release) the zombie's
        -- payment may or may not have gone out: never FAILED by a machine, QUARANTINED for a person.
        SELECT
            z.*,
            CASE
                WHEN z.new_attempt_no - z.attempt_base >= v_max_attempt_count THEN 'QUARANTINED'
                ELSE 'ZOMBIE_REQUEUE'
            END::payment_outbox.outbox_attempt_state AS new_state,
            format(
                'DISPATCHING attempt %s had no completion after %s seconds', z.attempt_no, p_threshold_seconds
            ) AS error_message,
            clock_timestamp() AS completed_at
        FROM zombie AS z
    ),

    reasoned AS (
        SELECT
            d.*,
            CASE
                WHEN d.new_state = 'QUARANTINED' THEN format(
                    'outcome unknown: %s, at the maximum attempt count %s', d.error_message, v_max_attempt_count
                )
            END AS reason
        FROM decided AS d
    ),

    requeued AS (
        UPDATE payment_outbox.payment_outbox_pending AS p
        SET
            attempt_no = NULL,
            worker_id = NULL,
            claimed_at = NULL,
            attempt_count = greatest(p.attempt_count, d.new_attempt_no),
            next_attempt_at = CASE WHEN d.reason IS NULL THEN now() ELSE 'infinity' END,
            quarantined_at = CASE WHEN d.reason IS NULL THEN NULL ELSE d.completed_at END,
            quarantine_reason = d.reason
        FROM reasoned AS d
        WHERE p.outbox_id = d.outbox_id
        RETURNING p.outbox_id
    ),

    recorded AS (
        INSERT INTO payment_outbox.payment_outbox_attempts (
            outbox_id, instruction_id, participant_id, sequence_id, idempotency_key, rail_type,
            payload_sha256, item_created_at, attempt_no, state, claimed_at, completed_at, worker_id,
            error_code, error_message, latency_ms, reason
        )
        SELECT
            d.outbox_id, d.instruction_id, d.participant_id, d.sequence_id, d.idempotency_key,
            d.rail_type, d.payload_sha256, d.created_at, d.new_attempt_no, d.new_state, d.claimed_at,
            d.completed_at, d.worker_id, 'ZOMBIE', d.error_message,
            payment_outbox._latency_ms(d.claimed_at, d.completed_at), d.reason
        FROM reasoned AS d
    )

    SELECT
        d.outbox_id,
        d.new_attempt_no,
        'DISPATCHING'::text,
        d.new_state::text,
        round(extract(EPOCH FROM now() - d.claimed_at), 3),
        d.worker_id
    FROM decided AS d
    ORDER BY d.claimed_at;
END;
$$;

COMMENT ON FUNCTION payment_outbox.repair_zombie_attempts(integer, integer) IS
'For up to p_batch_size in-flight items whose DISPATCHING claim is older than p_threshold_seconds: '
'appends one ZOMBIE_REQUEUE attempt (attempt_no = last + 1), clears the claim and makes the item '
'due now with attempt_count = that attempt_no; at the maximum attempt count (since the item''s '
'latest release) appends QUARANTINED instead and keeps the item in pending, never due, for an '
'operator: its outcome is unknown, so it is never recorded FAILED by repair. Returns one row per '
'item, with the worker that held the claim. A second call changes nothing.';

REVOKE ALL ON FUNCTION payment_outbox.repair_zombie_attempts(integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payment_outbox.repair_zombie_attempts(integer, integer) TO outbox_repair;
