-- enqueue_payment_outbox_batch on Citus: refused (PO053) until a file is split by participant; enqueue_payment_outbox per item.
CREATE OR REPLACE FUNCTION payment_outbox.enqueue_payment_outbox_batch(p_items jsonb)
RETURNS TABLE (item_no integer, outbox_id uuid, sequence_id bigint, created_at timestamptz, state text)
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, payment_outbox, pg_temp
AS $$
-- A file spans participants, so its statements would span shards and nodes: one distributed
-- transaction holding every participant's allocator on every node at once. Refused, with
-- nothing written, rather than run as that; each item goes through enqueue_payment_outbox,
-- delegated to its participant's node.
BEGIN
    RAISE EXCEPTION 'enqueue_payment_outbox_batch is not available on a Citus install (% items refused)',
        CASE WHEN jsonb_typeof(p_items) = 'array' THEN jsonb_array_length(p_items)::text ELSE 'no' END
        USING ERRCODE = 'PO053',
              HINT = 'Enqueue each item with enqueue_payment_outbox (delegated to its participant''s node); '
              'docs/scale-out.md says why.';
END;
$$;

COMMENT ON FUNCTION payment_outbox.enqueue_payment_outbox_batch(jsonb) IS
'On Citus: refused with PO053, nothing written: a file spans participants and so shards; enqueue '
'each item with enqueue_payment_outbox instead.';
