-- check_invariants on Citus: refused (PO054) with nothing read; check_bucket_invariants() for every bucket instead.
CREATE OR REPLACE FUNCTION payment_outbox.check_invariants()
RETURNS TABLE (invariant text, outbox_id uuid, participant_id text, detail text)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, payment_outbox, pg_temp
AS $$
-- The single-node statement joins the queue, the ledger and the key register across
-- participants: on Citus that is a join across shards and nodes, which Citus refuses. The same
-- statement runs per bucket, on the node holding it (check_bucket_invariants); a function on the
-- coordinator cannot delegate one call per bucket, so the caller makes them.
BEGIN
    RAISE EXCEPTION 'check_invariants() reads across shards: on Citus, call check_bucket_invariants() for each bucket'
        USING ERRCODE = 'PO054',
              HINT = 'SELECT bucket_key FROM payment_outbox.outbox_buckets(), then '
              'SELECT * FROM payment_outbox.check_bucket_invariants(bucket_key) for each (outbox on Citus does).';
END;
$$;

COMMENT ON FUNCTION payment_outbox.check_invariants() IS
'On Citus: refused with PO054; check_bucket_invariants(bucket_key) for every bucket of '
'outbox_buckets() returns what the single-node check_invariants() does.';
