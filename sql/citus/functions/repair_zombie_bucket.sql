-- repair_zombie_bucket: on Citus, repair_zombie_attempts for one bucket: stale claims of one shard, on the node holding it.
CREATE OR REPLACE FUNCTION payment_outbox.repair_zombie_bucket(
    p_bucket_key text,
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
-- The statement of repair_zombie_attempts, over the bucket's shard of the queue and of the ledger
-- (claim_outbox_bucket says why a bucket's shards, and how the call gets to their node).
DECLARE
    v_max_attempt_count integer := payment_outbox._max_attempt_count();
    v_shards record;
BEGIN
    PERFORM payment_outbox._require_threshold(p_threshold_seconds);
    PERFORM payment_outbox._require_batch_size(p_batch_size);
    v_shards := payment_outbox._bucket_shards(p_bucket_key);

    RETURN QUERY EXECUTE format(
        $repair$
    WITH zombie AS (
        -- SKIP LOCKED: an item locked by a completion or another repairer is theirs to decide.
        SELECT
            z.*,
            greatest(z.attempt_count, z.attempt_no) + 1 AS new_attempt_no
        FROM payment_outbox.%1$I AS z
        WHERE z.attempt_no IS NOT NULL AND z.claimed_at < now() - make_interval(secs => $1)
        ORDER BY z.claimed_at
        LIMIT $2
        FOR UPDATE SKIP LOCKED
    ),

    decided AS (
        -- At the maximum attempt count (counted from the item's latest release) the zombie's
        -- payment may or may not have gone out: never FAILED by a machine, QUARANTINED for a person.
        SELECT
            z.*,
            CASE
                WHEN z.new_attempt_no - z.attempt_base >= $3 THEN 'QUARANTINED'
                ELSE 'ZOMBIE_REQUEUE'
            END::payment_outbox.outbox_attempt_state AS new_state,
            pg_catalog.format(
                'DISPATCHING attempt %%s had no completion after %%s seconds', z.attempt_no, $1
            ) AS error_message,
            clock_timestamp() AS completed_at
        FROM zombie AS z
    ),

    reasoned AS (
        SELECT
            d.*,
            CASE
                WHEN d.new_state = 'QUARANTINED' THEN pg_catalog.format(
                    'outcome unknown: %%s, at the maximum attempt count %%s', d.error_message, $3
                )
            END AS reason
        FROM decided AS d
    ),

    requeued AS (
        UPDATE payment_outbox.%1$I AS p
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
        INSERT INTO payment_outbox.%2$I (
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
    ORDER BY d.claimed_at
        $repair$,
        v_shards.pending_shard, v_shards.attempts_shard
    ) USING p_threshold_seconds, p_batch_size, v_max_attempt_count;
END;
$$;

COMMENT ON FUNCTION payment_outbox.repair_zombie_bucket(text, integer, integer) IS
'On Citus: repair_zombie_attempts for one bucket (p_bucket_key from outbox_buckets(); another value '
'raises PO050): up to p_batch_size claims of the bucket older than p_threshold_seconds get one '
'ZOMBIE_REQUEUE (or QUARANTINED) attempt and are due again. Delegated to the node holding the bucket.';

REVOKE ALL ON FUNCTION payment_outbox.repair_zombie_bucket(text, integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payment_outbox.repair_zombie_bucket(text, integer, integer) TO outbox_repair;
