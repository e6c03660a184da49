-- claim_outbox_bucket: on Citus, claim_outbox_batch for one bucket: due items of one shard, on the node holding it.
CREATE OR REPLACE FUNCTION payment_outbox.claim_outbox_bucket(
    p_bucket_key text,
    p_worker_id text,
    p_batch_size integer
)
RETURNS TABLE (
    outbox_id uuid,
    attempt_no integer,
    instruction_id text,
    participant_id text,
    sequence_id bigint,
    idempotency_key text,
    rail_type text,
    payload jsonb,
    attempt_count integer,
    claimed_at timestamptz
)
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, payment_outbox, pg_temp
AS $$
-- Citus refuses SKIP LOCKED across shards, and a claim filtered by one participant would leave
-- the claimer to guess which participants have work. Delegated by its bucket key (distributed
-- function, co-located with the queue), the call runs on the node holding the bucket's shard and
-- claims from that shard's tables directly: the statement claim_outbox_batch runs on one node,
-- with the same predicate, order, SKIP LOCKED and DISPATCHING rows, over one shard's participants.
DECLARE
    v_shards record;
    v_paused text[];
BEGIN
    PERFORM payment_outbox._require_argument('worker_id', p_worker_id);
    PERFORM payment_outbox._require_batch_size(p_batch_size);
    v_shards := payment_outbox._bucket_shards(p_bucket_key);
    -- The paused rails, read once from the reference table (a copy on every node).
    v_paused := ARRAY(SELECT r.rail_type FROM payment_outbox.payment_outbox_rails AS r WHERE r.paused);

    -- Items left flagged on a rail that is not paused (claim_outbox_batch says why). Normally none.
    EXECUTE format(
        'UPDATE payment_outbox.%1$I AS p SET paused = FALSE WHERE p.outbox_id = ANY(ARRAY('
        'SELECT s.outbox_id FROM payment_outbox.%1$I AS s WHERE s.paused AND s.rail_type <> ALL($1) '
        'FOR UPDATE OF s SKIP LOCKED))',
        v_shards.pending_shard
    ) USING v_paused;

    RETURN QUERY EXECUTE format(
        $claim$
        WITH claimed AS (
            UPDATE payment_outbox.%1$I AS p
            SET
                attempt_no = p.attempt_count + 1,
                attempt_count = p.attempt_count + 1,
                worker_id = $1,
                claimed_at = now()
            WHERE p.outbox_id = ANY(ARRAY(
                SELECT d.outbox_id
                FROM payment_outbox.%1$I AS d
                WHERE
                    d.attempt_no IS NULL AND NOT d.paused AND d.next_attempt_at <= now()
                    AND d.rail_type <> ALL($3)
                ORDER BY d.next_attempt_at
                LIMIT $2
                FOR UPDATE OF d SKIP LOCKED
            ))
            RETURNING p.*
        ),

        recorded AS (
            -- A shard's row has the queue's columns: cast, it is the pending row _ledger_row reads.
            INSERT INTO payment_outbox.%2$I
            SELECT l.*
            FROM claimed AS c
            CROSS JOIN LATERAL payment_outbox._ledger_row(
                c::payment_outbox.payment_outbox_pending, c.attempt_no, 'DISPATCHING'
            ) AS l
        )

        SELECT
            c.outbox_id, c.attempt_no, c.instruction_id, c.participant_id, c.sequence_id,
            c.idempotency_key, c.rail_type, c.payload, c.attempt_count, c.claimed_at
        FROM claimed AS c
        ORDER BY c.next_attempt_at, c.participant_id, c.sequence_id
        $claim$,
        v_shards.pending_shard, v_shards.attempts_shard
    ) USING p_worker_id, p_batch_size, v_paused;
END;
$$;

COMMENT ON FUNCTION payment_outbox.claim_outbox_bucket(text, text, integer) IS
'On Citus: claims up to p_batch_size due items of one bucket (a shard: the participants hashing '
'into it), oldest due first, skipping locked rows and paused rails, with one DISPATCHING attempt '
'each, as claim_outbox_batch does for the whole queue. p_bucket_key comes from outbox_buckets(); '
'another value raises PO050. Delegated to the node holding the bucket.';

REVOKE ALL ON FUNCTION payment_outbox.claim_outbox_bucket(text, text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payment_outbox.claim_outbox_bucket(text, text, integer) TO outbox_executor;
