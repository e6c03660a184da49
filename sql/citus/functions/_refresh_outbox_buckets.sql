-- _refresh_outbox_buckets: on Citus, one bucket per shard of the participants' co-location group, each with a routing key.
CREATE OR REPLACE FUNCTION payment_outbox._refresh_outbox_buckets()
RETURNS integer
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, payment_outbox, pg_temp
AS $$
DECLARE
    v_buckets integer;
BEGIN
    DELETE FROM payment_outbox.payment_outbox_buckets;
    -- For each shard, the first of 'bucket-0', 'bucket-1', ... whose hash falls in its range.
    INSERT INTO payment_outbox.payment_outbox_buckets (bucket, bucket_key, shard_index)
    SELECT
        (row_number() OVER (ORDER BY s.shardminvalue::integer) - 1)::integer,
        (
            SELECT 'bucket-' || n
            FROM pg_catalog.generate_series(0, 1000000) AS n
            WHERE pg_catalog.worker_hash('bucket-' || n) BETWEEN s.shardminvalue::integer AND s.shardmaxvalue::integer
            LIMIT 1
        ),
        (row_number() OVER (ORDER BY s.shardminvalue::integer) - 1)::integer
    FROM pg_catalog.pg_dist_shard AS s
    WHERE s.logicalrelid = 'payment_outbox.participant_outbox_sequences'::regclass;
    GET DIAGNOSTICS v_buckets = ROW_COUNT;
    RETURN v_buckets;
END;
$$;

COMMENT ON FUNCTION payment_outbox._refresh_outbox_buckets() IS
'On Citus, run by the owner (outbox migrate --citus) after the shards change: refills '
'payment_outbox_buckets with one bucket per shard and a key hashing into it. Returns the bucket count.';

REVOKE ALL ON FUNCTION payment_outbox._refresh_outbox_buckets() FROM PUBLIC;
