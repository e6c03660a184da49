-- _bucket_shards: on Citus, the local shard tables of a bucket's queue and ledger, or PO050/PO052.
CREATE OR REPLACE FUNCTION payment_outbox._bucket_shards(
    p_bucket_key text,
    OUT pending_shard text,
    OUT attempts_shard text
)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, payment_outbox, pg_temp
AS $$
BEGIN
    IF p_bucket_key IS NULL OR NOT EXISTS (
        SELECT FROM payment_outbox.payment_outbox_buckets AS b WHERE b.bucket_key = p_bucket_key
    ) THEN
        RAISE EXCEPTION 'no claim bucket has the key %', coalesce(quote_literal(p_bucket_key), 'NULL')
            USING ERRCODE = 'PO050',
                  HINT = 'Take the bucket keys from payment_outbox.outbox_buckets().';
    END IF;
    pending_shard := 'payment_outbox_pending_'
        || pg_catalog.get_shard_id_for_distribution_column('payment_outbox.payment_outbox_pending', p_bucket_key);
    attempts_shard := 'payment_outbox_attempts_'
        || pg_catalog.get_shard_id_for_distribution_column('payment_outbox.payment_outbox_attempts', p_bucket_key);
    -- The shards are tables of this node only where Citus delegated the call to: a call it ran on
    -- the coordinator (a shard being moved, a function not distributed) finds none.
    IF to_regclass('payment_outbox.' || pending_shard) IS NULL
        OR to_regclass('payment_outbox.' || attempts_shard) IS NULL THEN
        RAISE EXCEPTION 'bucket % is not on this node: the call was not delegated to the node holding its shard',
            p_bucket_key
            USING ERRCODE = 'PO052',
                  HINT = 'Call it as SELECT ... FROM payment_outbox.claim_outbox_bucket(...) with a constant key, '
                  'on the coordinator, after outbox migrate --citus; retry after a shard move.';
    END IF;
END;
$$;

COMMENT ON FUNCTION payment_outbox._bucket_shards(text) IS
'On Citus: the names of the queue''s and the ledger''s shards the bucket key routes to, on the node '
'the call runs on; PO050 for a key that is no bucket''s, PO052 when the shards are not on this node.';

REVOKE ALL ON FUNCTION payment_outbox._bucket_shards(text) FROM PUBLIC;
