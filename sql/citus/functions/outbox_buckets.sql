-- outbox_buckets: on Citus, the claim buckets and their routing keys, for workers and repair.
CREATE OR REPLACE FUNCTION payment_outbox.outbox_buckets()
RETURNS TABLE (bucket integer, bucket_key text)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, payment_outbox, pg_temp
BEGIN ATOMIC
    SELECT
        b.bucket,
        b.bucket_key
    FROM payment_outbox.payment_outbox_buckets AS b
    ORDER BY b.bucket;
END;

COMMENT ON FUNCTION payment_outbox.outbox_buckets() IS
'On Citus: every claim bucket (one per shard) with the key claim_outbox_bucket and '
'repair_zombie_bucket are called with; a worker process covers the buckets it is given.';

REVOKE ALL ON FUNCTION payment_outbox.outbox_buckets() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payment_outbox.outbox_buckets() TO outbox_executor, outbox_repair, outbox_readonly, outbox_auditor;
