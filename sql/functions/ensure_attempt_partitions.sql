-- ensure_attempt_partitions: the ledger's monthly partitions from this month to p_ahead ahead, created before rows need them.
CREATE OR REPLACE FUNCTION payment_outbox.ensure_attempt_partitions(p_ahead interval DEFAULT '3 months')
RETURNS TABLE (partition_name text, range_from timestamptz, range_to timestamptz)
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, payment_outbox, pg_temp
SET timezone = 'UTC'
-- Attaching waits for the ledger's SHARE UPDATE EXCLUSIVE lock (no reader or writer holds a
-- conflicting one); never longer than this.
SET lock_timeout = '5s'
AS $$
#variable_conflict use_column
DECLARE
    v_month timestamptz;
    v_name text;
BEGIN
    IF p_ahead IS NULL OR p_ahead < interval '0' OR p_ahead > interval '5 years' THEN
        RAISE EXCEPTION 'partitions ahead must be an interval from 0 to 5 years, got %', coalesce(p_ahead::text, 'NULL')
            USING ERRCODE = 'PO031',
                  HINT = 'Three months ahead (the default) leaves a quarter for a missed run to be noticed.';
    END IF;
    IF (SELECT c.relkind FROM pg_catalog.pg_class AS c
        WHERE c.oid = 'payment_outbox.payment_outbox_attempts'::regclass) <> 'p' THEN
        RAISE EXCEPTION 'the ledger is not partitioned yet'
            USING ERRCODE = 'PO032',
                  HINT = 'Run outbox migrate (or outbox convert-ledger) as the package owner first.';
    END IF;
    -- One run at a time: two would both find a month missing. A row only the package can lock
    -- (an advisory key any login could take); PO036 names the holder after 5 s.
    PERFORM payment_outbox._lock_package('ensure_attempt_partitions');

    FOR v_month IN
        SELECT m
        FROM pg_catalog.generate_series(
            date_trunc('month', pg_catalog.now() - interval '1 month'), pg_catalog.now() + p_ahead, interval '1 month'
        ) AS m
        WHERE NOT EXISTS (
            -- A month some partition holds, or held (retired months are not created again for
            -- nothing), is skipped.
            SELECT FROM payment_outbox.payment_outbox_attempt_partitions AS r
            WHERE
                coalesce(r.range_from, '-infinity') < m + interval '1 month'
                AND r.range_to > m
        )
        UNION
        -- The month of a pending item no partition holds, however old, retired or never created:
        -- its claim would fail until the month has a partition again.
        SELECT date_trunc('month', p.created_at)
        FROM payment_outbox.payment_outbox_pending AS p
        WHERE NOT coalesce(payment_outbox._ledger_coverage() @> p.created_at, TRUE)
        ORDER BY 1
    LOOP
        v_name := 'payment_outbox_attempts_' || to_char(v_month, 'YYYY_MM');
        -- A retired month keeps its registry row (its name, what it held, where it was exported):
        -- the month created again takes the next free name, payment_outbox_attempts_YYYY_MM_2, ...
        v_name := v_name || coalesce((
            SELECT '_' || min(n)
            FROM pg_catalog.generate_series(2, 1000) AS n
            WHERE NOT EXISTS (
                SELECT FROM payment_outbox.payment_outbox_attempt_partitions AS r
                WHERE r.partition_name = v_name || '_' || n
            )
            HAVING EXISTS (
                SELECT FROM payment_outbox.payment_outbox_attempt_partitions AS r WHERE r.partition_name = v_name
            )
        ), '');
        PERFORM payment_outbox._create_attempt_partition(
            'payment_outbox_attempts', v_name, v_month, v_month + interval '1 month'
        );
        partition_name := v_name;
        range_from := v_month;
        range_to := v_month + interval '1 month';
        RETURN NEXT;
    END LOOP;
END;
$$;

COMMENT ON FUNCTION payment_outbox.ensure_attempt_partitions(interval) IS
'Creates the ledger''s missing monthly partitions (UTC months) from the previous month to p_ahead '
'ahead (a month some partition holds or held, retired included, is skipped), and the month of any '
'pending item no partition holds (a retired month again as payment_outbox_attempts_YYYY_MM_2, ...) (0 to 5 years, PO031 otherwise; PO032 before the ledger is partitioned; PO036 naming the holder when another run holds it 5 s), each attached '
'under SHARE UPDATE EXCLUSIVE. Returns the partitions created. outbox migrate and outbox retention '
'call it; run it from cron as outbox_operator if neither runs monthly. The ledger has no DEFAULT '
'partition (PostgreSQL refuses DETACH ... CONCURRENTLY beside one): check_invariants() names '
'ledger_partition_missing a month before a claim could find no partition.';

REVOKE ALL ON FUNCTION payment_outbox.ensure_attempt_partitions(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payment_outbox.ensure_attempt_partitions(interval) TO outbox_operator;
