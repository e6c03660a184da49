-- attempt_partition_retention: what outbox retention would do with each ledger partition older than the window, and why.
CREATE OR REPLACE FUNCTION payment_outbox.attempt_partition_retention(p_window interval)
RETURNS TABLE (
    partition_name text,
    range_from timestamptz,
    range_to timestamptz,
    action text,
    unfinished_items bigint,
    unfinished_outbox_ids uuid[]
)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, payment_outbox, pg_temp
AS $$
#variable_conflict use_column
BEGIN
    -- Bounded above too: now() - p_window must be a date (300000 years was 22008, an overflow).
    IF p_window IS NULL OR p_window < interval '1 day' OR p_window > interval '1000 years' THEN
        RAISE EXCEPTION 'the retention window must be from 1 day to 1000 years, got %', coalesce(p_window::text, 'NULL')
            USING ERRCODE = 'PO031',
                  HINT = 'Keep at least as long as a payment can stay unfinished and an auditor may ask; see the README''s DBA section.';
    END IF;
    -- An item is unfinished while it is in pending (waiting, in flight, or held for an
    -- operator): its partition is kept, whatever its age. A partition retention already began
    -- on is finished (its items were all terminal when it began; none can be created in its
    -- range since).
    RETURN QUERY
    SELECT
        r.partition_name,
        r.range_from,
        r.range_to,
        CASE
            WHEN r.state = 'detaching' THEN 'finish'
            WHEN u.items > 0 THEN 'keep'
            ELSE 'retire'
        END AS action,
        u.items AS unfinished_items,
        u.outbox_ids AS unfinished_outbox_ids
    FROM payment_outbox.payment_outbox_attempt_partitions AS r
    CROSS JOIN LATERAL (
        SELECT
            count(*) AS items,
            (array_agg(p.outbox_id ORDER BY p.created_at, p.outbox_id))[1:100] AS outbox_ids
        FROM payment_outbox.payment_outbox_pending AS p
        WHERE p.created_at >= coalesce(r.range_from, '-infinity') AND p.created_at < r.range_to
    ) AS u
    WHERE r.state IN ('attached', 'detaching') AND r.range_to <= pg_catalog.now() - p_window
    ORDER BY r.range_to;
END;
$$;

COMMENT ON FUNCTION payment_outbox.attempt_partition_retention(interval) IS
'For each ledger partition wholly older than p_window (1 day to 1000 years, PO031 otherwise): retire (every '
'item created in its range is terminal), keep (it holds unfinished items: their count and the first '
'100 outbox ids, oldest first), or finish (a retention run began retiring it). Changes nothing: '
'outbox retention --dry-run prints it.';

REVOKE ALL ON FUNCTION payment_outbox.attempt_partition_retention(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payment_outbox.attempt_partition_retention(interval) TO outbox_operator;
