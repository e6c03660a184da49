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
            -- The shard's row has the queue's columns: as the pending row, _ledger_row reads it.
            ROW(z.*)::payment_outbox.payment_outbox_pending AS item,
            greatest(z.attempt_count, z.attempt_no) + 1 AS new_attempt_no,
            pg_catalog.format(
                'DISPATCHING attempt %%s had no completion after %%s seconds', z.attempt_no, $1
            ) AS error_message,
            clock_timestamp() AS completed_at
        FROM payment_outbox.%1$I AS z
        WHERE z.attempt_no IS NOT NULL AND z.claimed_at < now() - make_interval(secs => $1)
        ORDER BY z.claimed_at
        LIMIT $2
        FOR UPDATE SKIP LOCKED
    ),

    decided AS (
        -- At the attempt limit (_state_at_limit) the zombie's payment may or may not have gone
        -- out: never FAILED by a machine, QUARANTINED for a person.
        SELECT
            z.*,
            q.state AS new_state,
            q.reason
        FROM zombie AS z
        CROSS JOIN LATERAL payment_outbox._state_at_limit(
            'ZOMBIE_REQUEUE', z.new_attempt_no, z.attempt_base, NULL, z.error_message
        ) AS q
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
        FROM decided AS d
        WHERE p.outbox_id = d.outbox_id
        RETURNING p.outbox_id
    ),

    recorded AS (
        INSERT INTO payment_outbox.%2$I
        SELECT l.*
        FROM decided AS d
        CROSS JOIN LATERAL payment_outbox._ledger_row(
            d.item, d.new_attempt_no, d.new_state, d.completed_at, 'ZOMBIE', d.error_message, p_reason => d.reason
        ) AS l
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
    ) USING p_threshold_seconds, p_batch_size;
END;
$$;

COMMENT ON FUNCTION payment_outbox.repair_zombie_bucket(text, integer, integer) IS
'On Citus: repair_zombie_attempts for one bucket (p_bucket_key from outbox_buckets(); another value '
'raises PO050): up to p_batch_size claims of the bucket older than p_threshold_seconds get one '
'ZOMBIE_REQUEUE (or QUARANTINED) attempt and are due again. Delegated to the node holding the bucket.';

REVOKE ALL ON FUNCTION payment_outbox.repair_zombie_bucket(text, integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payment_outbox.repair_zombie_bucket(text, integer, integer) TO outbox_repair;
