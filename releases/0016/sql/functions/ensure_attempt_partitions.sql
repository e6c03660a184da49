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
    -- One run at a time: two would both find a month missing.
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('payment_outbox.ensure_attempt_partitions'));

    FOR v_month IN
        SELECT m
        FROM pg_catalog.generate_series(
            date_trunc('month', pg_catalog.now() - interval '1 month'), pg_catalog.now() + p_ahead, interval '1 month'
        ) AS m
    LOOP
        -- A month some partition holds, or held (retired months are never created again), is skipped.
        CONTINUE WHEN EXISTS (
            SELECT FROM payment_outbox.payment_outbox_attempt_partitions AS r
            WHERE
                coalesce(r.range_from, '-infinity') < v_month + interval '1 month'
                AND r.range_to > v_month
        );
        v_name := 'payment_outbox_attempts_' || to_char(v_month, 'YYYY_MM');
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
'ahead (a month some partition holds or held, retired included, is skipped) (0 to 5 years, PO031 otherwise; PO032 before the ledger is partitioned), each attached '
'under SHARE UPDATE EXCLUSIVE. Returns the partitions created. outbox migrate and outbox retention '
'call it; run it from cron as outbox_operator if neither runs monthly. The ledger has no DEFAULT '
'partition (PostgreSQL refuses DETACH ... CONCURRENTLY beside one): check_invariants() names '
'ledger_partition_missing a month before a claim could find no partition.';

REVOKE ALL ON FUNCTION payment_outbox.ensure_attempt_partitions(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payment_outbox.ensure_attempt_partitions(interval) TO outbox_operator;
